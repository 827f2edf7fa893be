#pragma once
/// The CLI's commands as plain option structs and functions (torch-free
/// header, so cli/main.cpp, which only parses options, compiles fast).
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/option_table.h"
#include "models/torchscript_options.h"

namespace imbench::cli {

/// Options every data- or model-touching command takes.
struct CommonOptions {
  std::string data_dir;     ///< "" = $IMBENCH_DATA_DIR or ~/.cache/imbench
  std::string cifar10_dir;  ///< "" = $IMBENCH_CIFAR10_DIR or <data dir>/cifar-10-batches-bin
  std::string device = "cpu";
  int threads = 0;          ///< 0 = LibTorch's default (all cores)
  uint64_t seed = 0;
};

/// How a TorchScript model is described (imbench checkpoints record this):
/// models::TorchScriptOptions, whose table gives `eval` and `attack` their flags.
using TorchScriptFlags = models::TorchScriptOptions;

struct DataFetchCommand {
  CommonOptions common;
  std::string dataset = "mnist";  ///< mnist, fashion-mnist, cifar10 or all
  std::string from;               ///< cifar10: a cifar-10-batches-bin folder to link
};

struct TrainCommand {
  CommonOptions common;            ///< its seed is unused: --seed is a training option
  std::string family = "det";
  std::string dataset = "mnist";
  std::string preset = "quick";
  std::string out;                 ///< checkpoint path ("" = models/<family>-<dataset>-<preset>.ckpt)
  bool force = false;              ///< replace an existing `out` that is not an imbench checkpoint
  /// The training, architecture and family options given, by key, as the
  /// flags' texts ({"learning_rate", "0.01"}, {"hidden", "512,512"});
  /// run_train reads them with the family's rows (train_flags()).
  std::vector<std::pair<std::string, std::string>> options;
  bool quiet = false;
  bool dry_run = false;  ///< check everything, print what would run, write nothing
};

/// A flag of `imbench train` from the option tables (models/train.h): a
/// training option, the architecture or a family's hyper-parameter, with its
/// --help text (bound and default, per preset or per family where they differ).
struct TrainFlag {
  OptionDescription option;  ///< key, flag, value name
  std::string help;
};
std::vector<TrainFlag> train_flags();

struct EvalCommand {
  CommonOptions common;
  std::string model;
  std::string dataset = "mnist";
  std::string split = "test";
  int64_t examples = 1000;          ///< first N examples; 0 = all
  int64_t repeats = 0;              ///< 0: 10 for stochastic models, 1 otherwise
  int64_t batch_size = 1000;
  TorchScriptFlags torchscript;  ///< TorchScript models only
  bool fail_on_unreliable = false;  ///< exit 3 when a model-level check fires
  bool quiet = false;               ///< no progress output
  bool dry_run = false;             ///< check everything, print what would run, write nothing
};

struct AttackCommand {
  CommonOptions common;
  std::string model;
  std::vector<std::string> transfer_to;  ///< evaluate the adversarial examples on these models too
  std::string dataset = "mnist";
  std::string split = "test";
  int64_t examples = 1000;  ///< first N examples; 0 = all
  int64_t batch_size = 1000;
  std::string attack = "pgd";
  std::string attack_options_json = "{}";  ///< the attack's own options as JSON
  /// Several attacks (--attack a,b): name and options JSON each, run as a
  /// cascade in this order; empty = just `attack`.
  std::vector<std::pair<std::string, std::string>> attacks;
  std::string norm = "linf";
  double eps = 0.3;
  std::string eps_text;  ///< eps as the user wrote it ("8/255"); "" = formatted from eps
  /// A sweep (--eps 0.05,0.1): every eps and its text; empty = just `eps`.
  std::vector<double> eps_list;
  std::vector<std::string> eps_texts;
  bool targeted = false;
  std::string target_rule = "random";
  int64_t eot_samples = 0;  ///< 0: 16 for stochastic models, 1 otherwise
  std::string eot_reduction = "prediction-rule";
  int64_t repeats = 0;   ///< 0: 10 for stochastic models, 1 otherwise
  std::string out;       ///< imbench-results HDF5 file (read by report, compare, merge)
  bool save_adversarial = false;  ///< also store the adversarial examples in `out`
  bool force = false;             ///< replace an existing `out` that is not an earlier attack's results file
  TorchScriptFlags torchscript;
  bool fail_on_unreliable = false;  ///< exit 3 when a check flags the result
  bool quiet = false;               ///< no progress output
  bool dry_run = false;             ///< check everything, print what would run, write nothing
};

struct RunCommand {
  CommonOptions common;
  bool device_given = false;  ///< --device was passed (else the matrix's)
  std::string matrix;
  std::string out;            ///< "" = results/<matrix name>.h5
  std::string report;         ///< "" = next to the .h5 file; "-" = none
  std::string shard;          ///< "" or "i/n"
  bool audit = false;
  bool quiet = false;
  bool save_adversarial = false;    ///< store every cell's adversarial examples in the results file
  bool fail_on_unreliable = false;  ///< exit 3 when a check flags a result
  bool dry_run = false;             ///< check everything, print what would run, write nothing
};

struct ReportCommand {
  std::string file;
  std::string out;  ///< "" = standard output
  bool fail_on_unreliable = false;  ///< exit 3 when the file holds a flagged result
};

struct ExportCommand {
  std::string file;
  std::string format = "csv";
  std::string out;  ///< "" = standard output
};
int run_export(const ExportCommand& cmd, std::ostream& out);

struct MergeCommand {
  std::vector<std::string> inputs;
  std::string out;
};

struct CompareCommand {
  std::string base, next;
  double tolerance = 0.0;
  double alpha = 0.05;
  bool allow_config_change = false;  ///< judge cells run with another configuration like the others
  bool allow_missing = false;        ///< pass although base cells are missing from the new file
  std::string out;  ///< also write the table here ("" = no file)
};

struct InfoCommand {
  std::string path;
};

/// imbench zoo add|verify|report.
struct ZooCommand {
  CommonOptions common;
  std::string action;                 ///< add, verify or report
  std::vector<std::string> checkpoints;  ///< add
  std::string manifest = "zoo/manifest.json";
  int64_t passes = 10;
  std::string out;                    ///< report: the Markdown file ("" = stdout)
};
int run_zoo(const ZooCommand& cmd, std::ostream& out);

int run_data_fetch(const DataFetchCommand& cmd, std::ostream& out);
int run_data_list(const CommonOptions& common, std::ostream& out);
int run_train(const TrainCommand& cmd, std::ostream& out);
int run_eval(const EvalCommand& cmd, std::ostream& out);
int run_info(const InfoCommand& cmd, std::ostream& out);
int run_attack(const AttackCommand& cmd, std::ostream& out);
int run_run(const RunCommand& cmd, std::ostream& out);
int run_report(const ReportCommand& cmd, std::ostream& out);
int run_merge(const MergeCommand& cmd, std::ostream& out);
/// 0 when no cell regresses significantly by more than the tolerance, 1 otherwise.
int run_compare(const CompareCommand& cmd, std::ostream& out);
/// `imbench attack --list`: the registry with descriptions.
int run_attack_list(std::ostream& out);

/// Names for "did you mean" in the option parser.
std::vector<std::string> dataset_names();
std::vector<std::string> family_names();
std::vector<std::string> preset_names();
/// "quick (...) or paper (...)": the presets and what they set.
std::string preset_help();

}  // namespace imbench::cli
