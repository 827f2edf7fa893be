// libFuzzer target: the checkpoint header, sections, checksum and metadata
// (models::parse_checkpoint), without building a model. Each input is parsed
// as it is, then once more with its "sha256" line recomputed, so that
// mutations reach the JSON metadata and the model spec behind the checksum.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/sha256.h"
#include "fuzz/fuzz_common.h"
#include "models/checkpoint.h"

namespace {
void parse(const std::string& bytes) {
  imbench::fuzz::expect_imbench_errors_only([&] {
    const auto parsed = imbench::models::parse_checkpoint(bytes, "fuzz.ckpt");
    (void)parsed.meta.to_json().dump();
  });
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  parse(bytes);
  const auto sum = bytes.rfind("sha256 ");
  if (sum != std::string::npos) {
    const std::string signed_part = bytes.substr(0, sum);
    parse(signed_part + "sha256 " + imbench::sha256_hex(signed_part) + "\n");
  }
  return 0;
}
