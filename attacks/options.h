#pragma once
/// Option tables. An options struct (PgdOptions, ...) lists each option once,
/// as a row: key, member, help and validation. Its JSON reader and writer, the
/// CLI flags, `--help` and `attack --list` all derive from the table; the
/// struct's member initialisers stay the only defaults.
///
///   static const auto table = OptionTable<PgdOptions>()
///       .integer("steps", &PgdOptions::steps, "iterations", at_least(1))
///       .boolean("early_stop", &PgdOptions::early_stop, "stop updating examples already adversarial");
///
/// Reading rejects unknown keys (with "did you mean"), values of the wrong
/// type and values out of bounds; every message names the attack and the
/// option as the user wrote it (OptionSpelling). Torch-free.
#include <fmt/format.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "attacks/option_table.h"
#include "core/errors.h"

namespace imbench::attacks {

/// A condition on a numeric option, with its words for errors and --help.
struct Bound {
  std::string text;  ///< ">= 1"
  std::function<bool(double)> holds;
};
inline Bound at_least(double v) {
  return {fmt::format(">= {}", v), [v](double x) { return x >= v; }};
}
inline Bound above(double v) {
  return {fmt::format("> {}", v), [v](double x) { return x > v; }};
}
/// The half-open interval (lo, hi].
inline Bound above_and_at_most(double lo, double hi) {
  return {fmt::format("in ({}, {}]", lo, hi), [lo, hi](double x) { return x > lo && x <= hi; }};
}

template <typename O>
class OptionTable {
 public:
  OptionTable& integer(std::string key, int64_t O::*member, std::string help, std::optional<Bound> bound = {}) {
    return add(std::move(key), OptionType::kInteger, {}, std::move(help), bound, member,
               [](const nlohmann::json& v) { return v.is_number_integer(); });
  }
  OptionTable& number(std::string key, double O::*member, std::string help, std::optional<Bound> bound = {}) {
    return add(std::move(key), OptionType::kNumber, {}, std::move(help), bound, member,
               [](const nlohmann::json& v) { return v.is_number(); });
  }
  OptionTable& boolean(std::string key, bool O::*member, std::string help) {
    return add(std::move(key), OptionType::kBool, {}, std::move(help), std::nullopt, member,
               [](const nlohmann::json& v) { return v.is_boolean(); });
  }
  /// An enum written as a name: `values` in the order --help lists them,
  /// `name` and `parse` the enum's own conversions (parse may accept aliases).
  template <typename E>
  OptionTable& choice(std::string key, E O::*member, std::string help, const std::vector<E>& values,
                      std::string (*name)(E), E (*parse)(const std::string&)) {
    std::vector<std::string> names;
    for (E e : values) names.push_back(name(e));
    const std::string expected = fmt::format("one of {}", fmt::join(names, ", "));
    Row row;
    row.description =
        describe_row(std::move(key), OptionType::kChoice, std::move(names), std::move(help), std::nullopt);
    row.read = [member, parse, expected](const nlohmann::json& v, O& o, const std::string& where) {
      if (!v.is_string()) wrong_type(where, expected, v);
      try {
        o.*member = parse(v.get<std::string>());
      } catch (const UsageError& e) {
        throw UsageError(fmt::format("{}: {}", where, e.what()));
      }
    };
    row.write = [member, name](const O& o) { return nlohmann::json(name(o.*member)); };
    rows_.push_back(std::move(row));
    return *this;
  }

  /// The options in j over the defaults `o`. `attack` and `spelling` only
  /// shape the error messages ("pgd: --steps must be >= 1, got 0").
  O from_json(const nlohmann::json& j, const std::string& attack, OptionSpelling spelling, O o = {}) const {
    if (!j.is_object()) throw UsageError(fmt::format("{}: options must be a key-value table", attack));
    std::vector<std::string> known;
    for (const auto& row : rows_) known.push_back(spell_option(row.description.key, spelling));
    for (const auto& [key, value] : j.items())
      if (!find(key))
        throw_unknown_name(fmt::format("option for attack '{}'", attack), spell_option(key, spelling), known);
    for (const auto& row : rows_) {
      const auto it = j.find(row.description.key);
      if (it == j.end() || it->is_null()) continue;
      row.read(*it, o, fmt::format("{}: {}", attack, spell_option(row.description.key, spelling)));
    }
    return o;
  }

  nlohmann::json to_json(const O& o) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& row : rows_) j[row.description.key] = row.write(o);
    return j;
  }

  /// Key, type, default (from O{}), help and bound of every row, in table order.
  std::vector<OptionDescription> describe() const {
    const O defaults{};
    std::vector<OptionDescription> out;
    for (const auto& row : rows_) {
      out.push_back(row.description);
      out.back().default_value = row.write(defaults);
    }
    return out;
  }

 private:
  struct Row {
    OptionDescription description;
    std::function<void(const nlohmann::json& value, O& o, const std::string& where)> read;
    std::function<nlohmann::json(const O& o)> write;
  };

  [[noreturn]] static void wrong_type(const std::string& where, const std::string& expected, const nlohmann::json& v) {
    throw UsageError(fmt::format("{} must be {}, got {}", where, expected, value_text(v)));
  }

  /// A value as the user wrote it: -1, not -1.0.
  static std::string value_text(const nlohmann::json& v) {
    return v.is_number_float() ? fmt::format("{}", v.get<double>()) : v.dump();
  }

  static OptionDescription describe_row(std::string key, OptionType type, std::vector<std::string> choices,
                                        std::string help, const std::optional<Bound>& bound) {
    OptionDescription d;
    d.key = std::move(key);
    d.type = type;
    d.choices = std::move(choices);
    d.help = std::move(help);
    if (bound) d.bound = bound->text;
    return d;
  }

  template <typename T, typename IsType>
  OptionTable& add(std::string key, OptionType type, std::vector<std::string> choices, std::string help,
                   std::optional<Bound> bound, T O::*member, IsType is_type) {
    Row row;
    row.description = describe_row(std::move(key), type, std::move(choices), std::move(help), bound);
    const char* expected = type == OptionType::kInteger ? "an integer"
                           : type == OptionType::kBool  ? "true or false"
                                                        : "a number";
    row.read = [member, is_type, bound, expected](const nlohmann::json& v, O& o, const std::string& where) {
      if (!is_type(v)) wrong_type(where, expected, v);
      const T value = v.get<T>();
      if (bound && !bound->holds(static_cast<double>(value)))
        throw UsageError(fmt::format("{} must be {}, got {}", where, bound->text, value_text(v)));
      o.*member = value;
    };
    row.write = [member](const O& o) { return nlohmann::json(o.*member); };
    rows_.push_back(std::move(row));
    return *this;
  }

  const Row* find(const std::string& key) const {
    for (const auto& row : rows_)
      if (row.description.key == key) return &row;
    return nullptr;
  }

  std::vector<Row> rows_;
};

}  // namespace imbench::attacks
