#!/usr/bin/env bash
# README command 1: set up (as root), build, fetch MNIST, and run the quick
# benchmark matrix (benchmarks/matrices/quick.toml): DET, SFNN, IMB-Joint and
# VIB on MNIST, trained with the quick preset when no checkpoint is cached in
# checkpoints/, attacked with FGSM and PGD (Linf), PGD and CW (L2). Leaves results/quick.h5 and
# results/quick.md (with robustness curves in results/quick-curves/).
# Extra arguments go to `imbench run` (e.g. --audit, --device cuda).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
bash "$root/scripts/setup.sh"
setup_done=$(date +%s)
bash "$root/scripts/build.sh" -DIMBENCH_BUILD_TESTS=OFF -DIMBENCH_BUILD_BENCHMARKS=OFF
build_done=$(date +%s)
bin=${IMBENCH_BUILD_DIR:-$root/build}/imbench
"$bin" data fetch --dataset mnist
fetch_done=$(date +%s)
cd "$root"
"$bin" run benchmarks/matrices/quick.toml --out results/quick.h5 "$@"
end=$(date +%s)
echo "main.sh: setup $(( setup_done - start )) s, build $(( build_done - setup_done )) s, MNIST $(( fetch_done - build_done )) s, imbench run $(( end - fetch_done )) s; total $(( end - start )) s"
echo "main.sh: report: $root/results/quick.md  results: $root/results/quick.h5"
