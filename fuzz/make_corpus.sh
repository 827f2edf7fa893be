#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/ (crash-* inputs stay): the
# small text and binary seeds with fuzz/make_corpus.py (NumPy), the results
# files with imbench's writer (make_results_seeds, built by scripts/fuzz.sh
# in build-fuzz). fuzz_results/seed-det-format-0.h5 stays as it is: a results
# file in HDF5's oldest format (superblock 0, object headers version 1, no
# checksums), as imbench wrote them before it chose the 1.8 format (commit
# 3c51409); imbench still reads such files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IMBENCH_FUZZ_BUILD_DIR:-$root/build-fuzz}
/usr/bin/python3 "$root/fuzz/make_corpus.py"  # the Debian python3, with NumPy
cmake --build "$build" --target make_results_seeds
mkdir -p "$root/fuzz/corpus/fuzz_results"
ASAN_OPTIONS=detect_leaks=0 "$build/fuzz/make_results_seeds" "$root/fuzz/corpus/fuzz_results"
