// libFuzzer target: the IDX reader with transparent gzip (data/idx.h), from a
// file as `imbench` reads MNIST, so zlib's gzread path runs too.
#include <cstddef>
#include <cstdint>

#include "data/idx.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static imbench::fuzz::TempFile file(".idx");
  const std::string& path = file.write(data, size);
  imbench::fuzz::expect_imbench_errors_only([&] {
    const auto array = imbench::data::read_idx(path);
    std::size_t count = 1;
    for (auto d : array.dims) count *= static_cast<std::size_t>(d);
    if (array.dims.empty() || count != array.values.size()) __builtin_trap();
  });
  return 0;
}
