#!/usr/bin/env bash
# Configures and builds imbench in ./build (override with IMBENCH_BUILD_DIR).
# Extra arguments go to cmake, e.g. -DIMBENCH_BUILD_TESTS=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IMBENCH_BUILD_DIR:-$root/build}
jobs=${IMBENCH_JOBS:-2}  # a torch translation unit needs ~1.3 GB and 10-15 s; 2 cores here
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >"$build.configure.log" 2>&1 || {
  cat "$build.configure.log" >&2; echo "build.sh: cmake configure failed" >&2; exit 1; }
cmake --build "$build" -j "$jobs"
