#pragma once
/// What an option table (core/options.h) says about its options, as plain
/// data: the CLI builds its flags and --help from it, `attack --list` prints
/// it; and how the user wrote an option, so that errors name it the same way.
/// Torch-free.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/errors.h"

namespace imbench {

/// How the user wrote an option, so that errors name it the same way: a
/// matrix file's key ("step_size") or a command-line flag ("--step-size").
/// The flag is the key with dashes for underscores unless the table gives
/// the row a flag of its own (`--lr` for learning_rate).
enum class OptionSpelling { kKey, kFlag };

/// "step_size" as a key, "--step-size" as a flag.
std::string spell_option(const std::string& key, OptionSpelling spelling);

enum class OptionType { kInteger, kNumber, kBool, kChoice, kIntegerList, kNumberList };

struct OptionDescription {
  std::string key;  ///< snake_case key of JSON, TOML and recorded options
  OptionType type = OptionType::kNumber;
  std::vector<std::string> choices;  ///< kChoice: the accepted names
  nlohmann::json default_value;      ///< the options struct's member initialiser; null: unset (std::optional)
  std::string help;
  std::string bound;      ///< ">= 1", "in (0, 1]"; "" when every value of the type is accepted (lists: each element)
  std::string flag_name;  ///< "" = the key with dashes; else the flag without "--" ("lr")

  /// "--step-size", or "--" + flag_name.
  std::string flag() const;
  /// The key or the flag.
  std::string spelled(OptionSpelling spelling) const { return spelling == OptionSpelling::kKey ? key : flag(); }
  /// "integer", "number", "bool", "ce|margin|dlr", "integer list".
  std::string type_name() const;
  /// The default as a person writes it: 40, 0.001, true, ce, 512,512; "" when unset.
  std::string default_text() const;
  /// The value name in --help: N, X, true|false, ce|margin|dlr, N,N,...
  std::string value_name() const;
};

/// Where options come from, so that errors read as the user wrote them.
struct OptionContext {
  /// The noun of "unknown <what> 'x'": "option", "option for attack 'pgd'", "training option".
  std::string what = "option";
  /// Written before an option's name in errors: "pgd: " (then "pgd: --steps must be >= 1"),
  /// "models[0].train." (then "models[0].train.epochs must be >= 1").
  std::string prefix;
  OptionSpelling spelling = OptionSpelling::kKey;

  /// The option as the user wrote it, with the prefix: "models[0].train.epochs", "--lr".
  std::string name(const OptionDescription& o) const { return prefix + o.spelled(spelling); }
};

/// A usage error about one option; key() is the option's key (not its
/// spelling), so that a caller can point at it (a matrix file's line).
class OptionError : public UsageError {
 public:
  OptionError(std::string key, const std::string& message) : UsageError(message), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

/// A command-line flag's text as the JSON value of its option ("512,512" for
/// an integer list). Only the syntax is checked here ("--epochs: expected an
/// integer, got 'x'"); bounds and names are the table's to check.
nlohmann::json option_value_from_text(const OptionDescription& o, const std::string& text);

}  // namespace imbench
