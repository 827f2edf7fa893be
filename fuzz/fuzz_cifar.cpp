// libFuzzer target: the CIFAR-10 binary batch reader (data/cifar.h), in memory.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/cifar.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  imbench::fuzz::expect_imbench_errors_only([&] {
    const auto batch = imbench::data::parse_cifar_batch(bytes, "fuzz.bin");
    if (batch.images.size() != batch.size() * imbench::data::kCifarImageBytes) __builtin_trap();
    for (auto label : batch.labels)
      if (label > 9) __builtin_trap();
  });
  return 0;
}
