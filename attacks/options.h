#pragma once
/// Reading an attack's options from JSON (CLI flags and matrix files map to
/// the same keys). Unknown keys and wrong types are UsageErrors that name
/// the attack and the key.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <set>
#include <string>

#include "core/errors.h"

namespace imbench::attacks {

class OptionReader {
 public:
  OptionReader(const nlohmann::json& options, std::string attack) : options_(options), attack_(std::move(attack)) {
    if (!options_.is_object()) throw UsageError(fmt::format("{}: options must be a key-value table", attack_));
  }
  template <typename T>
  T get(const std::string& key, T fallback) {
    known_.insert(key);
    if (!options_.contains(key) || options_.at(key).is_null()) return fallback;
    try {
      return options_.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      throw UsageError(fmt::format("{}: option '{}' has the wrong type ({})", attack_, key, options_.at(key).dump()));
    }
  }
  /// Throws for keys that were never asked for.
  void finish() const {
    std::vector<std::string> known(known_.begin(), known_.end());
    for (const auto& [key, value] : options_.items())
      if (!known_.count(key)) throw_unknown_name(fmt::format("option for attack '{}'", attack_), key, known);
  }

 private:
  const nlohmann::json& options_;
  std::string attack_;
  std::set<std::string> known_;
};

}  // namespace imbench::attacks
