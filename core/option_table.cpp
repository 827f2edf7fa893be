#include "core/option_table.h"

#include <cstdlib>
#include <cstring>

#include "core/options.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

namespace imbench {

bool large_budget_allowed() {
  const char* v = std::getenv(kAllowLargeBudgetEnv);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

std::string spell_option(const std::string& key, OptionSpelling spelling) {
  if (spelling == OptionSpelling::kKey) return key;
  std::string flag = "--" + key;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

std::string OptionDescription::flag() const {
  return flag_name.empty() ? spell_option(key, OptionSpelling::kFlag) : "--" + flag_name;
}

std::string OptionDescription::type_name() const {
  switch (type) {
    case OptionType::kInteger:
      return "integer";
    case OptionType::kNumber:
      return "number";
    case OptionType::kBool:
      return "bool";
    case OptionType::kChoice:
      return fmt::format("{}", fmt::join(choices, "|"));
    case OptionType::kIntegerList:
      return "integer list";
    case OptionType::kNumberList:
      return "number list";
  }
  return "";
}

namespace {

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());  // 0, not 0.0
  return v.dump();
}

}  // namespace

std::string OptionDescription::default_text() const {
  if (default_value.is_null()) return "";  // an optional option, unset
  if (!default_value.is_array()) return scalar_text(default_value);
  std::vector<std::string> parts;
  for (const auto& v : default_value) parts.push_back(scalar_text(v));
  return fmt::format("{}", fmt::join(parts, ","));
}

std::string OptionDescription::value_name() const {
  switch (type) {
    case OptionType::kInteger: return "N";
    case OptionType::kNumber: return "X";
    case OptionType::kBool: return "true|false";
    case OptionType::kChoice: return type_name();
    case OptionType::kIntegerList: return "N,N,...";
    case OptionType::kNumberList: return "X,X,...";
  }
  return "arg";
}

namespace {

std::optional<long long> integer_text(const std::string& text) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<double> number_text(const std::string& text) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) items.push_back(item);
  return items;
}

}  // namespace

nlohmann::json option_value_from_text(const OptionDescription& o, const std::string& text) {
  const std::string flag = o.flag();
  switch (o.type) {
    case OptionType::kInteger:
      if (const auto v = integer_text(text)) return *v;
      throw OptionError(o.key, fmt::format("{}: expected an integer, got '{}'", flag, text));
    case OptionType::kNumber:
      if (const auto v = number_text(text)) return *v;
      throw OptionError(o.key, fmt::format("{}: expected a finite number, got '{}'", flag, text));
    case OptionType::kBool:
      if (text == "true" || text == "1" || text == "yes") return true;
      if (text == "false" || text == "0" || text == "no") return false;
      throw OptionError(o.key, fmt::format("{}: expected true or false, got '{}'", flag, text));
    case OptionType::kChoice:
      return text;
    case OptionType::kIntegerList:
    case OptionType::kNumberList: {
      const bool integers = o.type == OptionType::kIntegerList;
      auto out = nlohmann::json::array();
      for (const auto& item : split_commas(text)) {
        if (integers) {
          if (const auto v = integer_text(item)) out.push_back(*v);
          else out = nullptr;
        } else {
          if (const auto v = number_text(item)) out.push_back(*v);
          else out = nullptr;
        }
        if (out.is_null()) break;
      }
      if (out.is_null() || out.empty())
        throw OptionError(o.key, fmt::format("{}: '{}' is not a comma-separated list of {}", flag, text,
                                             integers ? "integers" : "numbers"));
      return out;
    }
  }
  return text;
}

}  // namespace imbench
