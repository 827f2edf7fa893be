#!/usr/bin/env bash
# README command 1: set up (as root), build, fetch MNIST, train DET on MNIST
# with the quick preset and print its test accuracy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" -DIMBENCH_BUILD_TESTS=OFF -DIMBENCH_BUILD_BENCHMARKS=OFF
bin=${IMBENCH_BUILD_DIR:-$root/build}/imbench
"$bin" data fetch --dataset mnist
cd "$root"
"$bin" train --family det --dataset mnist --preset quick --out checkpoints/det-mnist-quick.ckpt "$@"
