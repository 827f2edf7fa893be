// libFuzzer target: test sets of your own (data/user_data.h) as NumPy files.
// The first byte picks the format: even, the rest is an .npz archive (arrays
// x and y); odd, the next two bytes (little-endian) are the length of the
// images' .npy file and the bytes after it the labels' .npy file.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "data/user_data.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static imbench::fuzz::TempFile npz(".npz"), x_npy("-x.npy"), y_npy("-y.npy");
  if (size < 1) return 0;
  std::string spec;
  if (data[0] % 2 == 0) {
    spec = npz.write(data + 1, size - 1);
  } else {
    if (size < 3) return 0;
    const std::size_t x_size = std::min<std::size_t>(data[1] | (data[2] << 8), size - 3);
    spec = x_npy.write(data + 3, x_size) + "," + y_npy.write(data + 3 + x_size, size - 3 - x_size);
  }
  imbench::fuzz::expect_imbench_errors_only([&] {
    const auto ds = imbench::data::load_file_dataset(spec);
    if (ds.images.dim() != 4 || ds.images.size(0) != ds.labels.size(0) || ds.num_classes < 1) __builtin_trap();
  });
  return 0;
}
