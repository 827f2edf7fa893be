#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, README "Fuzzing") with clang, ASan and
# UBSan in their own tree, then runs each one over its seed corpus and on.
#
#   scripts/fuzz.sh [--build-only] [--smoke] [--runs N | --time S] [--fork J] [--jobs J] [TARGET...]
#
# Default: every target, 60 s each; --smoke (ctest fuzz_smoke): 8 s each.
# Each target first runs every input a fuzzer once failed on
# (fuzz/regressions/TARGET/crash-*, leak-*, oom-*), then its seed corpus.
# --runs N stops a target after N executions (-runs), --time S after S
# seconds (-max_total_time). New
# inputs go to build-fuzz/corpus/TARGET (the committed seed corpus in
# fuzz/corpus/TARGET stays as it is); a crash, leak, hang (-timeout) or
# UBSan report stops the run, leaves crash-*/leak-*/timeout-* in
# build-fuzz/artifacts/TARGET/ and makes the script exit 1.
# --fork J runs J fuzzing processes (libFuzzer's fork mode) that go on after a
# finding, so one long run collects every finding: the script then exits 1 if
# any crash-*/leak-*/oom-*/timeout-* input was written, and lists them.
# Environment: IMBENCH_FUZZ_BUILD_DIR (default ./build-fuzz), IMBENCH_JOBS (2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IMBENCH_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${IMBENCH_JOBS:-2}
all=(fuzz_idx fuzz_cifar fuzz_user_data fuzz_checkpoint fuzz_matrix fuzz_results fuzz_parse)
limit=(-max_total_time=60)
build_only=0 smoke=0 fork=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=1 ;;
    --smoke) limit=(-max_total_time=8); smoke=1 ;;
    --runs) limit=(-runs="$2"); shift ;;
    --time) limit=(-max_total_time="$2"); shift ;;
    --jobs) jobs="$2"; shift ;;
    --fork) fork="$2"; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    fuzz_*) targets+=("$1") ;;
    *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

cxx=${IMBENCH_FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
if [ ! -f "$build/CMakeCache.txt" ]; then
  mkdir -p "$build"
  # OpenMP off: clang's -fopenmp is libomp, not the libgomp of Debian's LibTorch; the parsers need none.
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" -DIMBENCH_FUZZ=ON \
    -DIMBENCH_OPENMP=OFF -DIMBENCH_BUILD_TESTS=OFF -DIMBENCH_BUILD_BENCHMARKS=OFF >"$build/configure.log" 2>&1 || {
    cat "$build/configure.log" >&2; echo "fuzz.sh: cmake configure failed" >&2; exit 1; }
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
[ "$build_only" = 1 ] && exit 0

# LibTorch's and HDF5's own one-time allocations are not imbench's leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:quarantine_size_mb=64}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t" artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  echo "== $t ${limit[*]}"
  log="$build/$t.log"
  # One process (no -jobs: it forks a worker and logs to ./fuzz-N.log); -max_len
  # defaults to the largest seed. HDF5 keeps freed memory in its own free lists
  # and ASan's quarantine holds more: fuzz_results gets more room.
  rss=2048 run_limit=("${limit[@]}")
  [ "$fork" -gt 0 ] && run_limit+=(-fork="$fork" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  [ "$t" = fuzz_results ] && rss=6144
  # Every input a fuzzer once failed on (fuzz/regressions/TARGET) runs once first.
  regressions=("$root"/fuzz/regressions/"$t"/*)
  if [ -e "${regressions[0]}" ]; then
    if "$build/fuzz/$t" -timeout=10 -rss_limit_mb=$rss "${regressions[@]}" >"$log" 2>&1; then
      echo "regressions: ${#regressions[@]} inputs of fuzz/regressions/$t pass"
    else
      status=1
      tail -n 40 "$log"
      echo "fuzz.sh: $t FAILED on a regression input (log: $log)" >&2
      continue
    fi
  fi
  stamp="$build/$t.started"
  touch "$stamp"
  if "$build/fuzz/$t" "${run_limit[@]}" -timeout=10 -rss_limit_mb=$rss \
      -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "$root/fuzz/corpus/$t" >"$log" 2>&1; then
    grep -aE '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|INFO: fuzzed for|INFO: exiting)' "$log" || true
    [ "$fork" -gt 0 ] && grep -a '^#[0-9]' "$log" | tail -n 1
    found=$(find "$artifacts" -newer "$stamp" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \))
    if [ -n "$found" ]; then
      status=1
      echo "$found"
      echo "fuzz.sh: $t found the inputs above (log: $log)" >&2
    fi
  else
    status=1
    tail -n 40 "$log"
    echo "fuzz.sh: $t FAILED (log: $log, inputs: $artifacts)" >&2
  fi
done
exit $status
