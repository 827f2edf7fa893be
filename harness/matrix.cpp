#include "harness/matrix.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <toml++/toml.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "attacks/attack.h"
#include "attacks/options.h"
#include "core/errors.h"
#include "core/input_file.h"
#include "core/options.h"
#include "core/parse.h"
#include "core/sha256.h"
#include "data/dataset.h"
#include "data/user_data.h"
#include "harness/training.h"
#include "models/family.h"
#include "models/train.h"

namespace imbench::harness {
namespace {

// Caps of the matrix's own budgets (IMBENCH_ALLOW_LARGE_BUDGET=1 lifts them to 2^31 - 1).
constexpr int64_t kMaxEotSamples = 100000;
constexpr int64_t kMaxRepeats = 10000;

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

// TOML values to JSON (attack options, training overrides, paper numbers).
nlohmann::json to_json_value(const toml::node& n) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return i->get();
  if (auto f = n.as_floating_point()) return f->get();
  if (auto b = n.as_boolean()) return b->get();
  if (auto a = n.as_array()) {
    auto j = nlohmann::json::array();
    for (const auto& e : *a) j.push_back(to_json_value(e));
    return j;
  }
  if (auto t = n.as_table()) {
    auto j = nlohmann::json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = to_json_value(v);
    return j;
  }
  return std::string("unsupported");
}

bool safe_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

// Reads one TOML table, remembering which keys were used so that unknown
// keys can be reported (with a "did you mean").
class Reader {
 public:
  Reader(const toml::table& t, std::string file, std::string where) : t_(t), file_(std::move(file)), where_(std::move(where)) {}

  [[noreturn]] void fail(const toml::node* n, const std::string& key, const std::string& problem) const {
    const int line = n ? static_cast<int>(n->source().begin.line) : static_cast<int>(t_.source().begin.line);
    throw UsageError(fmt::format("{}:{}: {}{}: {}", file_, line, where_.empty() ? "" : where_ + ".", key, problem));
  }

  /// "file:line: message" (the message names what it is about).
  [[noreturn]] void fail_with(const toml::node* n, const std::string& message) const {
    const int line = n ? static_cast<int>(n->source().begin.line) : static_cast<int>(t_.source().begin.line);
    throw UsageError(fmt::format("{}:{}: {}", file_, line, message));
  }

  const toml::node* node(const std::string& key) {
    used_.insert(key);
    return t_.get(key);
  }

  /// The key the table uses for a renamed key: `key`, or `old` (deprecated;
  /// a note goes to `warnings`). Both at once is an error.
  std::string renamed(const std::string& key, const std::string& old, std::vector<std::string>& warnings) {
    used_.insert(old);
    const auto* o = t_.get(old);
    if (!o) return key;
    if (t_.get(key)) fail(o, old, fmt::format("give {} only ('{}' is its old, deprecated name)", key, old));
    warnings.push_back(fmt::format("{}:{}: {}{}: deprecated key, renamed '{}' (same meaning; the old name still works)",
                                   file_, o->source().begin.line, where_.empty() ? "" : where_ + ".", old, key));
    return old;
  }
  int line() const { return static_cast<int>(t_.source().begin.line); }

  std::string str(const std::string& key, const std::string& def) {
    const auto* n = node(key);
    if (!n) return def;
    if (!n->is_string()) fail(n, key, "expected a string, got " + type_name(*n));
    return n->as_string()->get();
  }
  // In [min, max]; a budget (a cap a user may lift with IMBENCH_ALLOW_LARGE_BUDGET=1) says so.
  int64_t integer(const std::string& key, int64_t def, int64_t min, int64_t max = std::numeric_limits<int64_t>::max(),
                  bool budget = false) {
    const auto* n = node(key);
    if (!n) return def;
    if (!n->is_integer()) fail(n, key, "expected an integer, got " + type_name(*n));
    const int64_t v = n->as_integer()->get();
    if (budget && large_budget_allowed()) max = std::max<int64_t>(max, static_cast<int64_t>(kMaxLargeBudget));
    if (v < min) fail(n, key, fmt::format("must be >= {}, got {}", min, v));
    if (v > max)
      fail(n, key,
           fmt::format("must be <= {}{}, got {}", max,
                       budget && !large_budget_allowed() ? fmt::format(" ({}=1 allows up to {})", kAllowLargeBudgetEnv,
                                                                       static_cast<int64_t>(kMaxLargeBudget))
                                                         : "",
                       v));
    return v;
  }
  bool boolean(const std::string& key, bool def) {
    const auto* n = node(key);
    if (!n) return def;
    if (!n->is_boolean()) fail(n, key, "expected true or false, got " + type_name(*n));
    return n->as_boolean()->get();
  }
  nlohmann::json table(const std::string& key) {
    const auto* n = node(key);
    if (!n) return nlohmann::json::object();
    if (!n->is_table()) fail(n, key, "expected a table, e.g. { steps = 40 }, got " + type_name(*n));
    return to_json_value(*n);
  }
  std::vector<std::string> strings(const std::string& key) {
    const auto* n = node(key);
    if (!n) return {};
    std::vector<std::string> out;
    if (n->is_string()) return {n->as_string()->get()};
    if (!n->is_array()) fail(n, key, "expected a list of strings, got " + type_name(*n));
    for (const auto& e : *n->as_array()) {
      if (!e.is_string()) fail(&e, key, "expected a list of strings");
      out.push_back(e.as_string()->get());
    }
    return out;
  }
  // Numbers, "8/255" strings or "inf"; a single value is a list of one.
  void eps_list(const std::string& key, std::vector<double>& values, std::vector<std::string>& texts) {
    const auto* n = node(key);
    if (!n) fail(nullptr, key, "missing: give the eps list, e.g. eps = [0.1, 0.3] or eps = [\"8/255\"]");
    std::vector<const toml::node*> items;
    if (n->is_array()) {
      for (const auto& e : *n->as_array()) items.push_back(&e);
    } else {
      items.push_back(n);
    }
    if (items.empty()) fail(n, key, "empty eps list");
    for (const auto* e : items) {
      double v = NAN;
      std::string text;
      if (e->is_integer() || e->is_floating_point()) {
        v = e->is_integer() ? static_cast<double>(e->as_integer()->get()) : e->as_floating_point()->get();
        text = attacks::format_eps(v);
      } else if (e->is_string()) {
        const auto parsed = parse_eps_text(e->as_string()->get());
        if (!parsed) fail(e, key, fmt::format("'{}' is not a number, a fraction like 8/255, or inf", e->as_string()->get()));
        v = *parsed;
        text = e->as_string()->get();
      } else {
        fail(e, key, "expected numbers, fractions like \"8/255\" or \"inf\", got " + type_name(*e));
      }
      if (!(v >= 0)) fail(e, key, fmt::format("eps must be >= 0, got {}", text));
      for (double seen : values)
        if (seen == v) fail(e, key, fmt::format("eps {} is listed twice", text));
      values.push_back(v);
      texts.push_back(text);
    }
  }

  // The entry's name: letters, digits, '-' or '_', not yet in `taken`.
  std::string unique_name(std::set<std::string>& taken, const std::string& what) {
    const std::string n = str("name", "");
    if (!safe_name(n)) fail(t_.get("name"), "name", fmt::format("every {} needs a name of letters, digits, '-' or '_'", what));
    if (!taken.insert(n).second) fail(t_.get("name"), "name", fmt::format("{} name '{}' is used twice", what, n));
    return n;
  }

  void finish(const std::vector<std::string>& known) {
    for (const auto& [k, v] : t_) {
      const std::string key(k.str());
      if (used_.count(key)) continue;
      const std::string guess = closest_name(key, known);
      fail(&v, key, guess.empty() ? fmt::format("unknown key; known: {}", fmt::join(known, ", "))
                                  : fmt::format("unknown key (did you mean '{}'?)", guess));
    }
  }

 private:
  const toml::table& t_;
  std::string file_, where_;
  std::set<std::string> used_;
};

std::string id_eps(const std::string& text) {
  std::string out = text;
  for (char& c : out)
    if (c == '/') c = '_';
  return out;
}

const toml::array* array_of_tables(const toml::table& root, const std::string& key, const std::string& file) {
  const auto* n = root.get(key);
  if (!n) throw UsageError(fmt::format("{}: no [[{}]] entries", file, key));
  const auto* a = n->as_array();
  if (!a || !a->is_array_of_tables())
    throw UsageError(fmt::format("{}:{}: {}: expected [[{}]] tables", file, n->source().begin.line, key, key));
  return a;
}

}  // namespace

nlohmann::json MatrixModel::to_json() const {
  nlohmann::json j{{"name", name}, {"paper", paper}};
  if (!checkpoint.empty()) j["checkpoint"] = checkpoint;
  if (!torchscript.empty()) j["torchscript"] = torchscript;
  if (!family.empty()) j["train"] = {{"family", family}, {"preset", preset}, {"overrides", train}};
  const auto description = models::TorchScriptOptions::table().to_json(torchscript_options);
  for (const auto& [key, value] : description.items())
    if (!value.is_null()) j[key] = value;
  return j;
}

nlohmann::json MatrixAttack::to_json() const {
  nlohmann::json j{{"name", name},         {"attack", kind},     {"options", options}, {"norm", norm},
                   {"eps", eps_text},      {"targeted", targeted}, {"source_model", source}, {"models", models}};
  if (targeted) j["target_rule"] = target_rule;
  if (eot) j["eot_samples"] = *eot;
  return j;
}

nlohmann::json Matrix::to_json() const {
  nlohmann::json j{{"name", name},
                   {"description", description},
                   {"dataset", dataset},
                   {"split", split},
                   {"examples", examples},
                   {"seed", seed},
                   {"device", device},
                   {"batch_size", batch_size},
                   {"cascade", cascade},
                   {"eot_samples", eot},
                   {"eot_reduction", eot_reduction},
                   {"repeats", repeats},
                   {"audit_examples", audit_examples},
                   {"probe_examples", probe_examples},
                   {"probe_queries", probe_queries},
                   {"save_adversarial", save_adversarial}};
  j["models"] = nlohmann::json::array();
  for (const auto& m : models) j["models"].push_back(m.to_json());
  j["attacks"] = nlohmann::json::array();
  for (const auto& a : attacks) {
    j["attacks"].push_back(a.to_json());
    if (a.save_adversarial) j["attacks"].back()["save_adversarial"] = *a.save_adversarial;
  }
  return j;
}

std::string Matrix::hash() const {
  auto j = to_json();
  // How examples are batched and whether adversarial examples are saved do
  // not change the results' meaning (a run that saves them resumes one that did not).
  j.erase("batch_size");
  j.erase("save_adversarial");
  for (auto& a : j["attacks"]) a.erase("save_adversarial");
  return sha256_hex(j.dump());
}

const MatrixModel& Matrix::model(const std::string& n) const {
  for (const auto& m : models)
    if (m.name == n) return m;
  std::vector<std::string> names;
  for (const auto& m : models) names.push_back(m.name);
  throw_unknown_name("model", n, names);
}

Matrix parse_matrix_text(const std::string& text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    throw UsageError(fmt::format("{}:{}: {}", file, e.source().begin.line, e.description()));
  }
  Matrix m;
  m.path = file;
  Reader r(root, file, "");
  m.name = r.str("name", "");
  if (!safe_name(m.name)) r.fail(root.get("name"), "name", "give the matrix a name of letters, digits, '-' or '_'");
  m.description = r.str("description", "");
  m.dataset = r.str("dataset", m.dataset);
  m.split = r.str("split", m.split);
  if (m.split != "test" && m.split != "train") r.fail(root.get("split"), "split", "expected \"test\" or \"train\"");
  const auto datasets = data::dataset_names();
  const bool own_file = data::is_file_dataset(m.dataset);
  if (own_file) {
    try {
      data::parse_file_dataset(m.dataset);
    } catch (const UsageError& e) {
      r.fail(root.get("dataset"), "dataset", e.what());
    }
    if (m.split != "test")
      r.fail(root.get("split"), "split",
             fmt::format("dataset \"{}\" is a test set of your own; split = \"train\" applies to registered datasets "
                         "only",
                         m.dataset));
  } else if (std::find(datasets.begin(), datasets.end(), m.dataset) == datasets.end()) {
    const std::string guess = closest_name(m.dataset, datasets);
    r.fail(root.get("dataset"), "dataset",
           fmt::format("unknown dataset '{}'{}; a test set of your own is FILE.h5, FILE.npz or X.npy,Y.npy", m.dataset,
                       guess.empty() ? "" : " (did you mean '" + guess + "'?)"));
  }
  m.examples = r.integer("examples", m.examples, 0);
  m.seed = static_cast<uint64_t>(r.integer("seed", 0, 0));
  m.device = r.str("device", m.device);
  m.batch_size = r.integer("batch_size", m.batch_size, 1, 1 << 20);
  m.cascade = r.boolean("cascade", m.cascade);
  m.eot = r.integer(r.renamed("eot_samples", "eot", m.warnings), m.eot, 1, kMaxEotSamples, true);
  m.eot_reduction = r.str("eot_reduction", m.eot_reduction);
  if (m.eot_reduction != "prediction-rule" && m.eot_reduction != "mean-loss")
    r.fail(root.get("eot_reduction"), "eot_reduction", "expected \"prediction-rule\" or \"mean-loss\"");
  m.repeats = r.integer("repeats", m.repeats, 1, kMaxRepeats, true);
  m.audit_examples = r.integer("audit_examples", m.audit_examples, 1);
  m.probe_examples = r.integer("probe_examples", m.probe_examples, 0);
  m.probe_queries = r.integer("probe_queries", m.probe_queries, 0, static_cast<int64_t>(attacks::kMaxQueries), true);
  m.save_adversarial = r.boolean("save_adversarial", m.save_adversarial);

  std::set<std::string> names;
  const auto* models = array_of_tables(root, "models", file);
  r.node("models");
  for (std::size_t i = 0; i < models->size(); ++i) {
    const auto& t = *models->get(i)->as_table();
    Reader mr(t, file, fmt::format("models[{}]", i));
    MatrixModel mm;
    mm.line = mr.line();
    mm.name = mr.unique_name(names, "model");
    mm.checkpoint = mr.str("checkpoint", "");
    mm.torchscript = mr.str("torchscript", "");
    mm.family = mr.str("family", "");
    mm.preset = mr.str("preset", mm.preset);
    mm.train = mr.table("train");
    mm.paper = mr.table("paper");
    // The TorchScript description, read through its option table; errors name models[i].<key> at its line.
    const auto& torchscript_table = models::TorchScriptOptions::table();
    nlohmann::json description = nlohmann::json::object();
    for (const auto& key : torchscript_table.keys())
      if (const auto* n = mr.node(key)) description[key] = to_json_value(*n);
    try {
      torchscript_table.read(description, {"option", fmt::format("models[{}].", i), OptionSpelling::kKey},
                             mm.torchscript_options);
    } catch (const OptionError& e) {
      mr.fail_with(t.get(e.key()), e.what());
    }
    if (mm.checkpoint.empty() == mm.torchscript.empty())
      mr.fail(nullptr, "checkpoint", "give exactly one of checkpoint = \"FILE.ckpt\" or torchscript = \"FILE.pt\"");
    if (!mm.torchscript.empty() && !mm.family.empty())
      mr.fail(t.get("family"), "family", "a TorchScript model cannot be trained by imbench; drop family or use checkpoint");
    if (!mm.checkpoint.empty() && mm.torchscript_options.any())
      mr.fail(nullptr, "input_shape",
              fmt::format("{} describe TorchScript models only", fmt::join(torchscript_table.keys(), "/")));
    if (!mm.family.empty()) {
      const auto families = models::family_names();
      if (std::find(families.begin(), families.end(), mm.family) == families.end()) {
        const std::string guess = closest_name(mm.family, families);
        mr.fail(t.get("family"), "family",
                fmt::format("unknown family '{}'{}; known: {}", mm.family,
                            guess.empty() ? "" : " (did you mean '" + guess + "'?)", fmt::join(families, ", ")));
      }
      const auto presets = models::preset_names();
      if (std::find(presets.begin(), presets.end(), mm.preset) == presets.end())
        mr.fail(t.get("preset"), "preset", fmt::format("unknown preset '{}'; known: {}", mm.preset, fmt::join(presets, ", ")));
      // Keys, types, values and options that do not apply to the family: now, not when training starts.
      // Errors name the key path (models[0].train.epochs) at the key's line. With a file of your own as
      // the dataset a missing checkpoint cannot be trained (the runner says so), so there is no plan.
      try {
        if (!own_file)
          plan_training(mm.family, m.dataset, mm.preset, mm.train,
                        {"training option", fmt::format("models[{}].train.", i), OptionSpelling::kKey});
      } catch (const OptionError& e) {
        const auto* train = t.get("train");
        const auto* key = train && train->is_table() ? train->as_table()->get(e.key()) : nullptr;
        mr.fail_with(key ? key : train, e.what());
      } catch (const UsageError& e) {
        mr.fail(t.get("train"), "train", e.what());
      }
    } else if (!mm.train.empty()) {
      mr.fail(t.get("train"), "train", "training options need family = \"...\" (the model is trained when missing)");
    }
    for (const auto& [k, v] : mm.paper.items())
      if (!v.is_number()) mr.fail(t.get("paper"), "paper." + k, "paper numbers must be numbers (percent)");
    std::vector<std::string> keys{"name", "checkpoint", "torchscript", "family", "preset", "train", "paper"};
    for (const auto& key : torchscript_table.keys()) keys.push_back(key);
    mr.finish(keys);
    m.models.push_back(std::move(mm));
  }

  std::set<std::string> attack_names;
  const auto* attacks = array_of_tables(root, "attacks", file);
  r.node("attacks");
  const auto registry = attacks::attack_names();
  for (std::size_t i = 0; i < attacks->size(); ++i) {
    const auto& t = *attacks->get(i)->as_table();
    Reader ar(t, file, fmt::format("attacks[{}]", i));
    MatrixAttack a;
    a.line = ar.line();
    a.name = ar.unique_name(attack_names, "attack");
    a.kind = ar.str("attack", a.name);
    if (std::find(registry.begin(), registry.end(), a.kind) == registry.end()) {
      const std::string guess = closest_name(a.kind, registry);
      ar.fail(t.get("attack") ? t.get("attack") : t.get("name"), "attack",
              fmt::format("unknown attack '{}'{}; known: {}", a.kind, guess.empty() ? "" : " (did you mean '" + guess + "'?)",
                          fmt::join(registry, ", ")));
    }
    a.options = ar.table("options");
    a.norm = ar.str("norm", a.norm);
    if (a.norm != "linf" && a.norm != "l2") ar.fail(t.get("norm"), "norm", "expected \"linf\" or \"l2\"");
    ar.eps_list("eps", a.eps, a.eps_text);
    a.targeted = ar.boolean("targeted", false);
    a.target_rule = ar.str("target_rule", a.target_rule);
    if (t.get("target_rule") && !a.targeted) ar.fail(t.get("target_rule"), "target_rule", "needs targeted = true");
    if (a.target_rule != "random" && a.target_rule != "least-likely" && a.target_rule != "next")
      ar.fail(t.get("target_rule"), "target_rule", "expected \"random\", \"least-likely\" or \"next\"");
    const std::string eot_key = ar.renamed("eot_samples", "eot", m.warnings);
    if (t.get(eot_key)) a.eot = ar.integer(eot_key, 1, 1, kMaxEotSamples, true);
    const std::string source_key = ar.renamed("source_model", "source", m.warnings);
    a.source = ar.str(source_key, "");
    a.models = ar.strings("models");
    if (t.get("save_adversarial")) a.save_adversarial = ar.boolean("save_adversarial", false);
    // The attack must accept its options, norm and eps now, not hours into a run.
    std::unique_ptr<attacks::Attack> instance;
    try {
      instance = attacks::create_attack(a.kind, a.options);
    } catch (const UsageError& e) {
      ar.fail(t.get("options"), "options", e.what());
    }
    if (!instance->supports(attacks::parse_norm(a.norm)))
      ar.fail(t.get("norm"), "norm", fmt::format("attack '{}' does not support {}", a.kind, a.norm));
    for (std::size_t k = 0; k < a.eps.size(); ++k)
      if (std::isinf(a.eps[k]) && !instance->minimises_norm())
        ar.fail(t.get("eps"), "eps", fmt::format("attack '{}' needs a finite eps (inf is for minimum-norm attacks: cw)", a.kind));
    ar.finish({"name", "attack", "options", "norm", "eps", "targeted", "target_rule", "eot_samples", "source_model",
               "models", "save_adversarial"});
    m.attacks.push_back(std::move(a));
  }
  // Cross references.
  for (std::size_t i = 0; i < m.attacks.size(); ++i) {
    const auto& a = m.attacks[i];
    const auto* t = attacks->get(i)->as_table();
    auto check_model = [&](const std::string& n, const char* key) {
      if (names.count(n)) return;
      std::vector<std::string> known(names.begin(), names.end());
      const std::string guess = closest_name(n, known);
      throw UsageError(fmt::format("{}:{}: attacks[{}].{}: unknown model '{}'{}", file, t->get(key)->source().begin.line, i,
                                   key, n, guess.empty() ? "" : " (did you mean '" + guess + "'?)"));
    };
    if (!a.source.empty()) check_model(a.source, t->get("source_model") ? "source_model" : "source");
    for (const auto& n : a.models) check_model(n, "models");
  }
  r.finish({"name", "description", "dataset", "split", "examples", "seed", "device", "batch_size", "cascade",
            "eot_samples", "eot_reduction", "repeats", "audit_examples", "probe_examples", "probe_queries",
            "save_adversarial", "models", "attacks"});
  return m;
}

Matrix parse_matrix_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw UsageError(fmt::format("matrix file {}: cannot be read (missing or unreadable)", path));
  check_input_file(path, "matrix file (TOML)", kMaxMatrixFileBytes);  // not a directory, /dev/zero or 1 GB
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("matrix file {}: cannot be read (missing or unreadable)", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_matrix_text(ss.str(), path);
}

std::vector<JobPlan> plan_jobs(const Matrix& matrix) {
  std::vector<JobPlan> jobs;
  for (const auto& model : matrix.models) {
    std::vector<JobPlan> mine;
    for (const auto& a : matrix.attacks) {
      const bool on_model = a.models.empty() ? a.source != model.name
                                             : std::find(a.models.begin(), a.models.end(), model.name) != a.models.end();
      if (!on_model) continue;
      for (std::size_t k = 0; k < a.eps.size(); ++k) {
        const std::string rule = a.targeted ? a.target_rule : "none";
        const std::string group = fmt::format("{}.{}-{}.{}", model.name, a.norm, id_eps(a.eps_text[k]),
                                              a.targeted ? "targeted-" + a.target_rule : "untargeted");
        auto it = std::find_if(mine.begin(), mine.end(), [&](const JobPlan& j) { return j.group == group; });
        if (it == mine.end()) {
          JobPlan j;
          j.group = group;
          j.model = &model;
          j.norm = a.norm;
          j.eps = a.eps[k];
          j.eps_text = a.eps_text[k];
          j.targeted = a.targeted;
          j.target_rule = rule;
          mine.push_back(j);
          it = mine.end() - 1;
        }
        CellPlan c;
        c.id = fmt::format("{}.{}.{}-{}", model.name, a.name, a.norm, id_eps(a.eps_text[k]));
        c.attack = &a;
        c.position = static_cast<int64_t>(it->cells.size());
        it->cells.push_back(c);
      }
    }
    for (auto& j : mine) jobs.push_back(std::move(j));
  }
  return jobs;
}

std::pair<int64_t, int64_t> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument("");
    std::size_t u1 = 0, u2 = 0;
    const int64_t i = std::stoll(text.substr(0, slash), &u1), n = std::stoll(text.substr(slash + 1), &u2);
    if (u1 != slash || u2 != text.size() - slash - 1 || n < 1 || i < 1 || i > n) throw std::invalid_argument("");
    return {i, n};
  } catch (const std::exception&) {
    throw UsageError(fmt::format("--shard: '{}' is not i/n with 1 <= i <= n (e.g. 2/4)", text));
  }
}

}  // namespace imbench::harness
