#include "attacks/option_table.h"

#include <fmt/format.h>

#include <algorithm>

namespace imbench::attacks {

std::string spell_option(const std::string& key, OptionSpelling spelling) {
  if (spelling == OptionSpelling::kKey) return key;
  std::string flag = "--" + key;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
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
  }
  return "";
}

std::string OptionDescription::default_text() const {
  if (default_value.is_string()) return default_value.get<std::string>();
  if (default_value.is_number_float()) return fmt::format("{}", default_value.get<double>());  // 0, not 0.0
  return default_value.dump();
}

}  // namespace imbench::attacks
