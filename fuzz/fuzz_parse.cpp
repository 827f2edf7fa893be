// libFuzzer target: the small text parsers of options: eps ("0.3", "8/255",
// "inf"; core/parse.h), --shard ("i/n"; harness::parse_shard) and a flag's
// text as its option's value (integers, numbers, booleans and comma lists;
// core/option_table.h). The first byte picks the parser, the rest is the text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/option_table.h"
#include "core/parse.h"
#include "fuzz/fuzz_common.h"
#include "harness/matrix.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const int which = data[0] % 8;
  imbench::fuzz::expect_imbench_errors_only([&] {
    if (which == 0) {
      (void)imbench::parse_eps_text(text);
    } else if (which == 1) {
      const auto [i, n] = imbench::harness::parse_shard(text);
      if (i < 1 || i > n) __builtin_trap();
    } else {
      static const imbench::OptionType kTypes[] = {imbench::OptionType::kInteger,     imbench::OptionType::kNumber,
                                                   imbench::OptionType::kBool,        imbench::OptionType::kChoice,
                                                   imbench::OptionType::kIntegerList, imbench::OptionType::kNumberList};
      imbench::OptionDescription o;
      o.key = "fuzz_option";
      o.type = kTypes[which - 2];
      const auto value = imbench::option_value_from_text(o, text);
      if ((o.type == imbench::OptionType::kIntegerList || o.type == imbench::OptionType::kNumberList) &&
          (!value.is_array() || value.empty()))
        __builtin_trap();
    }
  });
  return 0;
}
