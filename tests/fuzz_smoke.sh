#!/usr/bin/env bash
# ctest fuzz_smoke: every libFuzzer target over the inputs it once failed on
# (fuzz/regressions), its seed corpus and 8 s on; any crash, leak, hang or UBSan
# report fails. Skips (77) when clang++ or libFuzzer's runtime is missing.
#   fuzz_smoke.sh SOURCE_DIR FUZZ_BUILD_DIR
set -euo pipefail
src=$1 build=$2
if ! command -v clang++ >/dev/null; then
  echo "fuzz_smoke: SKIP: no clang++ (apt-get install clang libclang-rt-14-dev)"; exit 77
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>"$probe/err"; then
  echo "fuzz_smoke: SKIP: clang++ cannot link libFuzzer with ASan/UBSan: $(head -n 1 "$probe/err")"; exit 77
fi
IMBENCH_FUZZ_BUILD_DIR=$build exec bash "$src/scripts/fuzz.sh" --smoke
