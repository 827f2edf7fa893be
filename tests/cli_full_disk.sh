#!/usr/bin/env bash
# Writes that fail safely (issue 15): every writer, aimed at a nearly full
# tmpfs over a good previous file, exits 1 (not a signal) with one line on
# stderr naming the file ("write failed: disk full"), leaves the previous
# file byte-identical and no temporary file behind. Writers: attack --out,
# run (per-cell save of a resumed matrix), merge, report (Markdown and SVG
# curves), export (CSV), train --out (checkpoint and training state).
# Needs root to mount a tmpfs: skips (exit 77) otherwise.
# Usage: cli_full_disk.sh IMBENCH
set -u
bin=$1
if [ "$(id -u)" != 0 ]; then echo "skip: mounting a tmpfs needs root"; exit 77; fi
tmp=$(mktemp -d)
disk=$tmp/disk
mkdir -p "$disk" "$tmp/good"
cleanup() {
  umount "$disk" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ! mount -t tmpfs -o size=1m tmpfs "$disk" 2>"$tmp/mount.err"; then
  echo "skip: cannot mount a tmpfs: $(cat "$tmp/mount.err")"
  exit 77
fi
fail=0
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
good=$tmp/good
cd "$tmp"

# Good previous files, written on a disk with room.
expect 0 "train the model" -- "$bin" train --dataset synthetic --epochs 1 --hidden 16 --quiet --threads 1 --seed 1 \
  --out "$good/m.ckpt"
expect 0 "an attack's results" -- "$bin" attack --model "$good/m.ckpt" --dataset synthetic --attack fgsm --eps 0.1 \
  --examples 40 --threads 1 --out "$good/a.h5"
printf 'name = "disk"\ndataset = "synthetic"\nexamples = 40\n[[models]]\nname = "m"\ncheckpoint = "%s"\n[[attacks]]\nname = "fgsm"\neps = [0.1, 0.2]\n' \
  "$good/m.ckpt" >"$tmp/disk.toml"
expect 0 "shard 1/2 of a matrix" -- "$bin" run "$tmp/disk.toml" --shard 1/2 --out "$good/r.h5" --report - --threads 1 --quiet
expect 0 "shard 2/2 of a matrix" -- "$bin" run "$tmp/disk.toml" --shard 2/2 --out "$good/r2.h5" --report - --threads 1 --quiet
expect 0 "the whole matrix" -- "$bin" run "$tmp/disk.toml" --out "$good/full.h5" --report - --threads 1 --quiet
cp "$good/r.h5" "$good/merged.h5"  # what an earlier merge left
mkdir -p "$good/rep"
expect 0 "a report with curves" -- "$bin" report "$good/r.h5" --out "$good/rep/report.md"
expect 0 "a CSV export" -- "$bin" export "$good/r.h5" --out "$good/e.csv"
[ "$fail" = 0 ] || { echo "FAIL: could not prepare the previous files"; exit 1; }

# fill_disk FILE...: an empty tmpfs holding copies of the good FILEs (paths
# relative to $good), then filled with a filler file up to one free page, so
# that the new write starts and then runs out of space.
fill_disk() {
  rm -rf "${disk:?}"/*
  for f in "$@"; do
    mkdir -p "$(dirname "$disk/$f")"
    cp -r "$good/$f" "$disk/$f"
  done
  dd if=/dev/zero of="$disk/filler" bs=4k 2>/dev/null
  truncate -s -4K "$disk/filler"
}

# full_disk WHAT FILE... -- COMMAND: runs COMMAND on the full disk and checks
# exit 1, one stderr line naming a file on the disk, each FILE unchanged and
# no temporary file left.
full_disk() {
  local what=$1 files=() f rc lines
  shift
  while [ "$1" != "--" ]; do files+=("$1"); shift; done
  shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ "$rc" = 1 ]; then
    echo "ok: $what: exit 1"
  else
    echo "FAIL: $what: exit $rc, expected 1$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))")"
    fail=1
  fi
  lines=$(wc -l <"$tmp/err")
  if [ "$lines" = 1 ] && grep -q "^imbench: error: $disk/.*: write failed: disk full$" "$tmp/err"; then
    echo "ok: $what: one line: $(cat "$tmp/err")"
  else
    echo "FAIL: $what: expected one line 'imbench: error: $disk/...: write failed: disk full', got $lines:"
    sed 's/^/  | /' "$tmp/err" | head -10
    fail=1
  fi
  for f in "${files[@]}"; do
    if diff -r "$good/$f" "$disk/$f" >/dev/null; then
      echo "ok: $what: $f is byte-identical"
    else
      echo "FAIL: $what: $f changed"
      fail=1
    fi
  done
  if [ -n "$(find "$disk" -name '*.tmp-*')" ]; then
    echo "FAIL: $what: temporary files left: $(find "$disk" -name '*.tmp-*')"
    fail=1
  else
    echo "ok: $what: no temporary file left"
  fi
}

fill_disk a.h5
full_disk "attack --out" a.h5 -- "$bin" attack --model "$good/m.ckpt" --dataset synthetic --attack fgsm --eps 0.2 \
  --examples 40 --threads 1 --out "$disk/a.h5"

fill_disk r.h5
full_disk "run (resumed)" r.h5 -- "$bin" run "$tmp/disk.toml" --out "$disk/r.h5" --report - --threads 1 --quiet

fill_disk merged.h5
full_disk "merge" merged.h5 -- "$bin" merge "$good/r.h5" "$good/r2.h5" --out "$disk/merged.h5"

fill_disk rep
full_disk "report (Markdown and curves)" rep -- "$bin" report "$good/full.h5" --out "$disk/rep/report.md"

fill_disk e.csv
full_disk "export" e.csv -- "$bin" export "$good/full.h5" --out "$disk/e.csv"

fill_disk m.ckpt
full_disk "train --out" m.ckpt -- "$bin" train --dataset synthetic --epochs 1 --hidden 16 --quiet --threads 1 --seed 2 \
  --out "$disk/m.ckpt"

exit $fail
