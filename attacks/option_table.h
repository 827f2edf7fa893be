#pragma once
/// What an option table (attacks/options.h) says about its options, as plain
/// data: the CLI builds its flags and --help from it, `attack --list` prints
/// it. Torch-free.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace imbench::attacks {

/// How the user wrote an option, so that errors name it the same way: a
/// matrix file's key ("step_size") or a command-line flag ("--step-size").
/// The flag is the key with dashes for underscores.
enum class OptionSpelling { kKey, kFlag };

/// "step_size" as a key, "--step-size" as a flag.
std::string spell_option(const std::string& key, OptionSpelling spelling);

enum class OptionType { kInteger, kNumber, kBool, kChoice };

struct OptionDescription {
  std::string key;  ///< snake_case key of JSON, TOML and recorded options
  OptionType type = OptionType::kNumber;
  std::vector<std::string> choices;  ///< kChoice: the accepted names
  nlohmann::json default_value;      ///< the options struct's member initialiser
  std::string help;
  std::string bound;  ///< ">= 1", "in (0, 1]"; "" when every value of the type is accepted

  std::string flag() const { return spell_option(key, OptionSpelling::kFlag); }
  /// "integer", "number", "bool" or "ce|margin|dlr".
  std::string type_name() const;
  /// The default as a person writes it: 40, 0.001, true, ce.
  std::string default_text() const;
};

}  // namespace imbench::attacks
