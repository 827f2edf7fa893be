// libFuzzer target: matrix files (TOML) through imbench's own reading and
// validation (harness::parse_matrix_text) and, when one is accepted, its
// expansion into jobs and cells, its configuration dump and hash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"
#include "harness/matrix.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  imbench::fuzz::expect_imbench_errors_only([&] {
    const auto matrix = imbench::harness::parse_matrix_text(text, "fuzz.toml");
    const auto jobs = imbench::harness::plan_jobs(matrix);
    (void)matrix.hash();
    for (const auto& job : jobs)
      if (job.cells.empty() || !job.model) __builtin_trap();
  });
  return 0;
}
