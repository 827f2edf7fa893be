#!/usr/bin/env bash
# Train + eval DET on real MNIST for one epoch; exit 77 (skipped) when
# MNIST has not been fetched ('imbench data fetch'). Usage: cli_mnist.sh IMBENCH
set -u
bin=$1
dir=${IMBENCH_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/imbench}
if [ ! -f "$dir/mnist/train-images-idx3-ubyte" ]; then
  echo "SKIP: MNIST not found in $dir/mnist (run 'imbench data fetch')"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" train --dataset mnist --epochs 1 --quiet --out "$tmp/det.ckpt" > "$tmp/train.txt" || { cat "$tmp/train.txt"; exit 1; }
cat "$tmp/train.txt"
acc=$(sed -n 's/^test accuracy: \([0-9.]*\)%.*/\1/p' "$tmp/train.txt")
awk -v a="$acc" 'BEGIN { exit !(a >= 90.0) }' || { echo "FAIL: one epoch of DET reached only $acc% (expected >= 90%)"; exit 1; }
"$bin" eval --model "$tmp/det.ckpt" --dataset mnist --examples 1000 || exit 1
echo "cli_mnist: passed ($acc% after one epoch)"
