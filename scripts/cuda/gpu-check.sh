#!/usr/bin/env bash
# The GPU checklist of docs/gpu.md as one device-tool call, inside a time
# budget: build with CUDA (scripts/cuda/build.sh), the _CUDA tests, the GPU
# benchmarks (JSON with the device name), the quick matrix with --device cuda,
# then the whole ctest with the time that is left. Each step is cut by
# `timeout` so that the call ends inside the device tool's limit and what was
# done comes back.
#
# Usage (device tool, repository root):
#   bash scripts/cuda/gpu-check.sh
#   carry: [".cuda-carry/prefix", ".imbench-data", "checkpoints/det-mnist-quick.ckpt", ...]
# Environment: IMBENCH_GPU_BUDGET_S (default 540: seconds for the whole script),
#   IMBENCH_GPU_STEPS (default "cuda-tests bench quick ctest"; also "paper": the
#   paper MNIST matrix, zoo/mnist/*-s0.ckpt needed, results in $OUT/paper-mnist-cuda.h5
#   after every cell, run last with the time left; IMBENCH_GPU_PAPER_FROM=FILE.h5
#   resumes a partial results file carried from an earlier call; "debug": a backtrace of each crashing test named in
#   IMBENCH_GPU_DEBUG_TESTS, "binary:gtest-filter ...", with cuda-gdb),
#   IMBENCH_GPU_CTEST_S (seconds for ctest at most; default: all that is left),
#   IMBENCH_GPU_BENCH_FILTER (default: the bare pass, attacks, EOT oracle and
#   training steps), IMBENCH_GPU_TARGETS (default: all; e.g. "imbench test_data" to build less),
#   IMBENCH_GPU_CTEST_EXCLUDE (default cli_zoo: the shipped zoo's checkpoints do
#   not fit beside the carry in the tool's 64 MiB), IMBENCH_DATA_DIR (default
#   .imbench-data, the gzipped MNIST of docs/gpu.md).
# Results: $OUT/gpu-check.log (the summary), $OUT/gpu-results.tgz (every log,
# the benchmark JSON, the quick matrix's HDF5 file and report).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
start=$(date +%s)
budget=${IMBENCH_GPU_BUDGET_S:-540}
out=${OUT:-$root/gpu-out}
work=$root/build-cuda/gpu-check
rm -rf "$work" && mkdir -p "$work" "$out"
left() { echo $(( budget - ($(date +%s) - start) )); }
log() { echo "gpu-check [$(( $(date +%s) - start )) s]: $*" | tee -a "$out/gpu-check.log"; }
pack() {
  cp "$out/gpu-check.log" "$work/" 2>/dev/null
  tar czf "$out/gpu-results.tgz" -C "$root/build-cuda" gpu-check 2>/dev/null
}
trap pack EXIT
export IMBENCH_DATA_DIR=${IMBENCH_DATA_DIR:-$root/.imbench-data}

# 1. Build (and the CUDA smoke training run). Its logs go to $work/logs.
log "building (budget ${budget} s)"
steps=" ${IMBENCH_GPU_STEPS:-cuda-tests bench quick ctest} "
want() { [[ $steps == *" $1 "* ]]; }
targets=${IMBENCH_GPU_TARGETS:-}
if ! OUT=$work IMBENCH_BUILD_ONLY=1 IMBENCH_CONFIGURE_ONLY=$([ -n "$targets" ] && echo 1 || echo 0) \
     timeout $(( $(left) - 120 )) bash scripts/cuda/build.sh > "$work/build-sh.log" 2>&1; then
  tail -n 30 "$work/build-sh.log" | tee -a "$out/gpu-check.log"
  log "FAILED: scripts/cuda/build.sh"
  exit 1
fi
grep -E '^cuda/build.sh' "$work/build-sh.log" | tee -a "$out/gpu-check.log" > /dev/null
# shellcheck source=/dev/null
. build-cuda/env.sh
cmake_bin=$(command -v cmake || echo "$(python3 -c 'import cmake; print(cmake.CMAKE_BIN_DIR)')/cmake")
if [ -n "$targets" ]; then
  read -r -a target_list <<<"$targets"
  s=$(date +%s)
  if ! timeout $(( $(left) - 120 )) "$cmake_bin" --build build-cuda -j "$(nproc)" --target "${target_list[@]}" > "$work/build-targets.log" 2>&1; then
    grep -E 'error' "$work/build-targets.log" | head -20 | tee -a "$out/gpu-check.log"
    log "FAILED: building $targets"
    exit 1
  fi
  log "built $targets in $(( $(date +%s) - s )) s"
fi
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
log "device: ${gpu:-unknown}"
IMBENCH_PYTHON=$(command -v python3); export IMBENCH_PYTHON

# Backtraces of crashing tests (cuda-gdb also debugs host code; the image has no gdb).
if want debug; then
  k=0
  for spec in ${IMBENCH_GPU_DEBUG_TESTS:-}; do
    k=$((k + 1))
    bin=build-cuda/tests/${spec%%:*}
    timeout 60 cuda-gdb -batch -ex run -ex bt -ex 'info sharedlibrary' --args "$bin" --gtest_filter="${spec#*:}" \
      > "$work/gdb-$k.log" 2>&1
    log "backtrace of $spec:"
    grep -E '^#[0-9]+ ' "$work/gdb-$k.log" | head -25 | cut -c1-220 | sed 's/^/  | /' | tee -a "$out/gpu-check.log" > /dev/null
  done
fi

# 2. The _CUDA tests (they must run, not skip).
for t in build-cuda/tests/test_*; do
  want cuda-tests || break
  [ -x "$t" ] && [ -f "$t" ] || continue
  timeout 120 "$t" --gtest_filter='*_CUDA*' > "$work/cuda-${t##*/}.log" 2>&1
  log "_CUDA tests of ${t##*/}: exit $?; $(grep -c '^\[       OK \]' "$work/cuda-${t##*/}.log") ok, $(grep -c '^\[  SKIPPED \]' "$work/cuda-${t##*/}.log") skipped, $(grep -c '^\[  FAILED  \]' "$work/cuda-${t##*/}.log") failed"
done

# 3. GPU benchmarks: the bare pass, PGD-1/PGD-40/CW, EOT-16 on the SFNN, training steps.
if want bench; then
log "benchmarks on cuda"
IMBENCH_BENCH_DEVICE=cuda timeout $(( $(left) > 300 ? 150 : $(left) / 3 )) build-cuda/imbench_bench \
  --benchmark_filter="${IMBENCH_GPU_BENCH_FILTER:-BM_BareForwardBackward|BM_Attack|BM_EotGradient/[34]/|BM_TrainStep/[0-4]/1/0/0}" \
  --benchmark_min_time=0.2 --benchmark_out="$work/bench-cuda.json" --benchmark_out_format=json \
  > "$work/bench-cuda.txt" 2>&1
log "benchmarks: exit $? ($(grep -c '^BM_' "$work/bench-cuda.txt") rows)"
grep '^BM_' "$work/bench-cuda.txt" | sed 's/^/  | /' | tee -a "$out/gpu-check.log" > /dev/null
fi

# 4. The quick matrix on the GPU (checkpoints carried), beside the whole ctest.
if want quick || want ctest; then
log "quick matrix --device cuda, and ctest"
( want quick || exit 0; s=$(date +%s); timeout $(( $(left) - 20 )) build-cuda/imbench run benchmarks/matrices/quick.toml --device cuda \
    --out "$work/quick-cuda.h5" > "$work/quick-cuda.log" 2>&1
  echo "exit $? after $(( $(date +%s) - s )) s" >> "$work/quick-cuda.log" ) &
runner=$!
read -r -a exclude <<<"-E ${IMBENCH_GPU_CTEST_EXCLUDE:-cli_zoo}"
ctest_bin=$(dirname "$cmake_bin")/ctest
ctest_s=$(( $(left) - 15 )); [ -n "${IMBENCH_GPU_CTEST_S:-}" ] && [ "$IMBENCH_GPU_CTEST_S" -lt "$ctest_s" ] && ctest_s=$IMBENCH_GPU_CTEST_S
want ctest && (cd build-cuda && timeout "$ctest_s" "$ctest_bin" --output-on-failure -j 8 --timeout 300 "${exclude[@]}") \
  > "$work/ctest.log" 2>&1
log "ctest: exit $?; $(grep -E '[0-9]+% tests passed' "$work/ctest.log" | tail -1)"
grep -E '^\s*[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Not Run)' "$work/ctest.log" | tee -a "$out/gpu-check.log" > /dev/null
wait "$runner"
want quick && log "quick matrix: $(tail -1 "$work/quick-cuda.log")"
want quick && grep -iE 'verdict|unreliable|robust|^\|' "$work/quick-cuda.md" 2>/dev/null | head -30 | tee -a "$out/gpu-check.log" > /dev/null
fi
# 5. The paper MNIST matrix on the GPU, last: it takes the time that is left
# (results land in $OUT after every cell; IMBENCH_GPU_PAPER_FROM resumes a carried file).
if want paper; then
  log "paper MNIST matrix --device cuda"
  if [ -n "${IMBENCH_GPU_PAPER_FROM:-}" ] && [ -f "$IMBENCH_GPU_PAPER_FROM" ]; then
    cp "$IMBENCH_GPU_PAPER_FROM" "$out/paper-mnist-cuda.h5" && log "resuming from $IMBENCH_GPU_PAPER_FROM"
  fi
  s=$(date +%s)
  timeout $(( $(left) - 15 )) build-cuda/imbench run benchmarks/matrices/paper-mnist.toml --device cuda \
    --out "$out/paper-mnist-cuda.h5" --report - > "$work/paper-cuda.log" 2>&1
  log "paper matrix: exit $? after $(( $(date +%s) - s )) s; $(grep -c '^\[cell' "$work/paper-cuda.log") cells"
  tail -n 4 "$work/paper-cuda.log" | cut -c1-200 | sed 's/^/  | /' | tee -a "$out/gpu-check.log" > /dev/null
fi

log "done"
