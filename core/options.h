#pragma once
/// Option tables. An options struct (PgdOptions, TrainOptions, ...) lists
/// each option once, as a row: key, member, help and validation. Its JSON
/// reader and writer, its validate(), the CLI flags, `--help` and
/// `attack --list` all derive from the table; the struct's member
/// initialisers stay the only defaults.
///
///   static const auto table = OptionTable<PgdOptions>()
///       .integer("steps", &PgdOptions::steps, "iterations", at_least(1))
///       .boolean("early_stop", &PgdOptions::early_stop, "stop updating examples already adversarial");
///
/// Reading rejects unknown keys (with "did you mean"), values of the wrong
/// type and values out of bounds; every message names the option as the user
/// wrote it (OptionContext: a prefix and the key or flag spelling). Errors
/// are OptionErrors, which carry the option's key. Torch-free.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/errors.h"
#include "core/option_table.h"

namespace imbench {

/// A condition on a numeric option (each element of a list), with its words
/// for errors and --help.
struct Bound {
  std::string text;  ///< ">= 1"
  std::function<bool(double)> holds;
  /// A range's lower end: a value below it is told ">= lo" (the words a
  /// value of 0 needs), one above the range the whole text.
  std::optional<double> low = std::nullopt;
  /// The words for a value that fails.
  std::string words_for(double x) const { return low && x < *low ? fmt::format(">= {}", *low) : text; }
};
inline Bound at_least(double v) {
  return {fmt::format(">= {}", v), [v](double x) { return x >= v; }};
}
inline Bound above(double v) {
  return {fmt::format("> {}", v), [v](double x) { return x > v; }};
}
/// The closed interval [lo, hi].
inline Bound between(double lo, double hi) {
  return {fmt::format("in [{}, {}]", lo, hi), [lo, hi](double x) { return x >= lo && x <= hi; }, lo};
}
/// The environment variable that lifts every budget() cap to kMaxLargeBudget.
inline constexpr const char* kAllowLargeBudgetEnv = "IMBENCH_ALLOW_LARGE_BUDGET";
/// The ceiling of a budget option when IMBENCH_ALLOW_LARGE_BUDGET=1 (int32's maximum).
inline constexpr double kMaxLargeBudget = 2147483647;
/// True when IMBENCH_ALLOW_LARGE_BUDGET=1 is set.
bool large_budget_allowed();
/// A work budget (steps, restarts, queries, epochs): [lo, cap], so that a typo
/// of a few zeros is refused instead of running for years; a user who means
/// it sets IMBENCH_ALLOW_LARGE_BUDGET=1, which raises the cap to 2^31 - 1.
inline Bound budget(double lo, double cap) {
  const double hi = large_budget_allowed() ? kMaxLargeBudget : cap;
  return {
      fmt::format(
          "in [{}, {}]{}", lo, hi,
          hi < kMaxLargeBudget ? fmt::format(" ({}=1 allows up to {})", kAllowLargeBudgetEnv, kMaxLargeBudget) : ""),
      [lo, hi](double x) { return x >= lo && x <= hi; }, lo};
}
/// The half-open interval (lo, hi].
inline Bound above_and_at_most(double lo, double hi) {
  return {fmt::format("in ({}, {}]", lo, hi), [lo, hi](double x) { return x > lo && x <= hi; }};
}
/// A seed: an integer in [0, 2^63), so that it survives every signed 64-bit path.
inline Bound seed_range() {
  return {"in [0, 2^63)", [](double x) { return x >= 0 && x < 0x1p63; }, 0.0};
}
/// The half-open interval [lo, hi).
inline Bound at_least_and_below(double lo, double hi) {
  return {fmt::format("in [{}, {})", lo, hi), [lo, hi](double x) { return x >= lo && x < hi; }};
}

namespace detail {
/// A member's value type: T, or T of std::optional<T> (an option that may be unset).
template <typename M>
struct OptionMember {
  using type = M;
  static bool has(const M&) { return true; }
  static const M& get(const M& v) { return v; }
  static nlohmann::json json(const M& v) { return nlohmann::json(v); }
};
template <typename T>
struct OptionMember<std::optional<T>> {
  using type = T;
  static bool has(const std::optional<T>& v) { return v.has_value(); }
  static const T& get(const std::optional<T>& v) { return *v; }
  static nlohmann::json json(const std::optional<T>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
};
template <typename M>
using option_value_t = typename OptionMember<M>::type;
}  // namespace detail

/// Members may be std::optional (integer, number, bool, lists): unset is
/// written as null and described with a null default ("" in --help), and
/// validate() skips it.
template <typename O>
class OptionTable {
 public:
  /// An integer member (int64_t, uint64_t, int).
  template <typename M, typename T = detail::option_value_t<M>,
            typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>>
  OptionTable& integer(std::string key, M O::*member, std::string help, std::optional<Bound> bound = {}) {
    return scalar(std::move(key), OptionType::kInteger, std::move(help), bound, member, "an integer",
                  [](const nlohmann::json& v) { return v.is_number_integer(); });
  }
  /// A finite number.
  template <typename M, typename = std::enable_if_t<std::is_same_v<detail::option_value_t<M>, double>>>
  OptionTable& number(std::string key, M O::*member, std::string help, std::optional<Bound> bound = {}) {
    return scalar(std::move(key), OptionType::kNumber, std::move(help), bound, member, "a number",
                  [](const nlohmann::json& v) { return v.is_number(); });
  }
  template <typename M, typename = std::enable_if_t<std::is_same_v<detail::option_value_t<M>, bool>>>
  OptionTable& boolean(std::string key, M O::*member, std::string help) {
    return scalar(std::move(key), OptionType::kBool, std::move(help), std::nullopt, member, "true or false",
                  [](const nlohmann::json& v) { return v.is_boolean(); });
  }
  /// A list of integers, each within `bound` (lists are never empty).
  template <typename M, typename = std::enable_if_t<std::is_same_v<detail::option_value_t<M>, std::vector<int64_t>>>>
  OptionTable& integer_list(std::string key, M O::*member, std::string help, std::optional<Bound> bound = {}) {
    return list(std::move(key), OptionType::kIntegerList, std::move(help), bound, member, "a list of integers",
                [](const nlohmann::json& v) { return v.is_number_integer(); });
  }
  /// A list of finite numbers, each within `bound`.
  template <typename M, typename = std::enable_if_t<std::is_same_v<detail::option_value_t<M>, std::vector<double>>>>
  OptionTable& number_list(std::string key, M O::*member, std::string help, std::optional<Bound> bound = {}) {
    return list(std::move(key), OptionType::kNumberList, std::move(help), bound, member, "a list of numbers",
                [](const nlohmann::json& v) { return v.is_number(); });
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
    row.description = describe_row(std::move(key), OptionType::kChoice, std::move(names), std::move(help), std::nullopt);
    row.read = [member, parse, expected](const nlohmann::json& v, O& o, const std::string& key, const std::string& where) {
      if (!v.is_string()) wrong_type(key, where, expected, v);
      try {
        o.*member = parse(v.get<std::string>());
      } catch (const UsageError& e) {
        throw OptionError(key, fmt::format("{}: {}", where, e.what()));
      }
    };
    row.write = [member, name](const O& o) { return nlohmann::json(name(o.*member)); };
    rows_.push_back(std::move(row));
    return *this;
  }
  /// A string that must be one of `values`.
  OptionTable& choice(std::string key, std::string O::*member, std::string help, std::vector<std::string> values) {
    const std::string expected = fmt::format("one of {}", fmt::join(values, ", "));
    Row row;
    row.description = describe_row(std::move(key), OptionType::kChoice, values, std::move(help), std::nullopt);
    auto valid = [values](const std::string& s) { return std::find(values.begin(), values.end(), s) != values.end(); };
    row.read = [member, expected, valid](const nlohmann::json& v, O& o, const std::string& key, const std::string& where) {
      if (!v.is_string() || !valid(v.get<std::string>())) wrong_type(key, where, expected, v);
      o.*member = v.get<std::string>();
    };
    row.check = [member, expected, valid](const O& o, const std::string& key, const std::string& where) {
      if (!valid(o.*member)) wrong_type(key, where, expected, nlohmann::json(o.*member));
    };
    row.write = [member](const O& o) { return nlohmann::json(o.*member); };
    rows_.push_back(std::move(row));
    return *this;
  }
  /// The last row's flag, when it is not the key with dashes (a flag older than the key: "lr").
  OptionTable& flag(std::string name) {
    rows_.back().description.flag_name = std::move(name);
    return *this;
  }

  /// The options in j over `o` (by default the struct's defaults). Keys
  /// that are absent or null keep o's value.
  O from_json(const nlohmann::json& j, const OptionContext& context, O o = {}) const {
    read(j, context, o);
    return o;
  }

  /// Reads the keys of j into o; unknown keys, wrong types and values out
  /// of bounds are OptionErrors.
  void read(const nlohmann::json& j, const OptionContext& context, O& o) const {
    if (!j.is_object())
      throw UsageError(fmt::format("{}options must be a key-value table", context.prefix));
    for (const auto& [key, value] : j.items())
      if (!find(key)) throw_unknown(key, context);
    for (const auto& row : rows_) {
      const auto it = j.find(row.description.key);
      if (it == j.end() || it->is_null()) continue;
      row.read(*it, o, row.description.key, context.name(row.description));
    }
  }

  /// The bounds of every row against o's values: for structs filled in code.
  void validate(const O& o, const OptionContext& context) const {
    for (const auto& row : rows_)
      if (row.check) row.check(o, row.description.key, context.name(row.description));
  }

  [[noreturn]] void throw_unknown(const std::string& key, const OptionContext& context) const {
    std::vector<std::string> known;
    for (const auto& row : rows_) known.push_back(row.description.spelled(context.spelling));
    const std::string name = context.spelling == OptionSpelling::kKey ? key : spell_option(key, OptionSpelling::kFlag);
    const std::string guess = closest_name(name, known);
    throw OptionError(key, fmt::format("unknown {} '{}'{}; known: {}", context.what, name,
                                       guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess),
                                       fmt::join(known, ", ")));
  }

  nlohmann::json to_json(const O& o) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& row : rows_) j[row.description.key] = row.write(o);
    return j;
  }

  /// Key, type, default (from `defaults`), help and bound of every row, in table order.
  std::vector<OptionDescription> describe(const O& defaults = O{}) const {
    std::vector<OptionDescription> out;
    for (const auto& row : rows_) {
      out.push_back(row.description);
      out.back().default_value = row.write(defaults);
    }
    return out;
  }

  /// The row for a key, or nullptr.
  const OptionDescription* find(const std::string& key) const {
    for (const auto& row : rows_)
      if (row.description.key == key) return &row.description;
    return nullptr;
  }

  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& row : rows_) out.push_back(row.description.key);
    return out;
  }

 private:
  struct Row {
    OptionDescription description;
    std::function<void(const nlohmann::json& value, O& o, const std::string& key, const std::string& where)> read;
    std::function<void(const O& o, const std::string& key, const std::string& where)> check;  ///< may be empty
    std::function<nlohmann::json(const O& o)> write;
  };

  [[noreturn]] static void wrong_type(const std::string& key, const std::string& where, const std::string& expected,
                                      const nlohmann::json& v) {
    throw OptionError(key, fmt::format("{} must be {}, got {}", where, expected, value_text(v)));
  }

  /// A value as the user wrote it: -1, not -1.0.
  static std::string value_text(const nlohmann::json& v) {
    if (v.is_number_float()) return fmt::format("{}", v.get<double>());
    if (v.is_array()) {
      std::vector<std::string> parts;
      for (const auto& e : v) parts.push_back(value_text(e));
      return fmt::format("[{}]", fmt::join(parts, ", "));
    }
    return v.dump();
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

  /// A number must be finite and within the bound.
  static bool acceptable(double x, const std::optional<Bound>& bound) {
    return std::isfinite(x) && (!bound || bound->holds(x));
  }

  static std::string bound_words(const std::optional<Bound>& bound, double x) {
    return bound ? bound->words_for(x) : "finite";
  }

  template <typename M, typename IsType>
  OptionTable& scalar(std::string key, OptionType type, std::string help, std::optional<Bound> bound, M O::*member,
                      const char* expected, IsType is_type) {
    using T = detail::option_value_t<M>;
    using Member = detail::OptionMember<M>;
    Row row;
    row.description = describe_row(std::move(key), type, {}, std::move(help), bound);
    auto check_value = [bound](const nlohmann::json& v, const std::string& key, const std::string& where) {
      if constexpr (!std::is_same_v<T, bool>) {
        if (!acceptable(v.get<double>(), bound))
          throw OptionError(key, fmt::format("{} must be {}, got {}", where, bound_words(bound, v.get<double>()),
                                             value_text(v)));
      }
    };
    row.read = [member, is_type, expected, check_value](const nlohmann::json& v, O& o, const std::string& key,
                                                       const std::string& where) {
      if (!is_type(v)) wrong_type(key, where, expected, v);
      if constexpr (std::is_unsigned_v<T> && !std::is_same_v<T, bool>) {
        if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)
          throw OptionError(key, fmt::format("{} must be >= 0, got {}", where, value_text(v)));
      }
      check_value(v, key, where);
      o.*member = v.get<T>();
    };
    row.check = [member, check_value](const O& o, const std::string& key, const std::string& where) {
      if (Member::has(o.*member)) check_value(nlohmann::json(Member::get(o.*member)), key, where);
    };
    row.write = [member](const O& o) { return Member::json(o.*member); };
    rows_.push_back(std::move(row));
    return *this;
  }

  template <typename M, typename IsType>
  OptionTable& list(std::string key, OptionType type, std::string help, std::optional<Bound> bound, M O::*member,
                    const char* expected, IsType is_type) {
    using V = detail::option_value_t<M>;
    using Member = detail::OptionMember<M>;
    Row row;
    row.description = describe_row(std::move(key), type, {}, std::move(help), bound);
    auto check_value = [bound](const nlohmann::json& v, const std::string& key, const std::string& where) {
      if (v.empty()) throw OptionError(key, fmt::format("{} must not be empty", where));
      for (const auto& e : v)
        if (!acceptable(e.get<double>(), bound))
          throw OptionError(key, fmt::format("{} values must be {}, got {}", where, bound_words(bound, e.get<double>()),
                                             value_text(v)));
    };
    row.read = [member, is_type, expected, check_value](const nlohmann::json& v, O& o, const std::string& key,
                                                       const std::string& where) {
      if (!v.is_array() || !std::all_of(v.begin(), v.end(), is_type)) wrong_type(key, where, expected, v);
      check_value(v, key, where);
      o.*member = v.get<V>();
    };
    row.check = [member, check_value](const O& o, const std::string& key, const std::string& where) {
      if (Member::has(o.*member)) check_value(nlohmann::json(Member::get(o.*member)), key, where);
    };
    row.write = [member](const O& o) { return Member::json(o.*member); };
    rows_.push_back(std::move(row));
    return *this;
  }

  std::vector<Row> rows_;
};

}  // namespace imbench
