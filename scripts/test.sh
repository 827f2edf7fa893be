#!/usr/bin/env bash
# README command 2: set up (as root), build everything, fetch MNIST (tests
# that need real data skip when it is absent), run every test with ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" -DIMBENCH_BUILD_TESTS=ON -DIMBENCH_BUILD_BENCHMARKS=ON
build=${IMBENCH_BUILD_DIR:-$root/build}
"$build/imbench" data fetch --dataset mnist ||
  echo "test.sh: warning: MNIST could not be fetched; tests that need it will be skipped" >&2
cd "$build"
ctest --output-on-failure -j2 "$@"
