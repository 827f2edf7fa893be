// libFuzzer target: the results reader (reports::read_results) on HDF5 files,
// from a corpus of valid files written by imbench. HDF5 reads files, so each
// input is written to a temporary file first. Also the check for the
// per-attack records format, which opens any HDF5 file. Both pass the HDF5
// guard first (h5guard/guard.h: what libhdf5 1.10.8 trusts blindly).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_common.h"
#include "reports/results_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static imbench::fuzz::TempFile file(".h5");
  const std::string& path = file.write(data, size);
  imbench::fuzz::expect_imbench_errors_only([&] { (void)imbench::reports::is_attack_records_file(path); });
  for (const auto mode : {imbench::reports::AdversarialExamples::kLoad, imbench::reports::AdversarialExamples::kSkip})
    imbench::fuzz::expect_imbench_errors_only([&] { (void)imbench::reports::read_results(path, mode); });
  return 0;
}
