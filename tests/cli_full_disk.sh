#!/usr/bin/env bash
# Writes that fail safely (issue 15): every writer whose disk fills up exits
# 1 (not a signal) with one line on stderr naming the file ("write failed:
# disk full"), leaves the previous file byte-identical and no temporary file
# behind. Writers: attack --out, run (per-cell save of a resumed matrix),
# merge, report (Markdown and SVG curves), export (CSV), train --out
# (checkpoint and training state). Two ways to fill the disk:
#  1. injected (any user): IMBENCH_FAIL_WRITE_STEP=k makes the k-th write step
#     (open, write, fsync, close) fail with ENOSPC; every k until the writer
#     succeeds (attack and run: the steps of their first save).
#  2. real (root only): a 1 MiB tmpfs filled up to one free page over the
#     previous file; skipped without root or where mount is refused.
# Usage: cli_full_disk.sh IMBENCH
set -u
bin=$1
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
fail=0
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
good=$tmp/good
cd "$tmp" || exit 1

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

# check_failure WHAT DIR RC FILE...: the last command (exit RC, stderr in
# $tmp/err) failed as it should on a full disk in DIR: exit 1, one stderr line
# naming a file in DIR, each FILE (relative to DIR) equal to the good one, no
# temporary file left.
check_failure() {
  local what=$1 dir=$2 rc=$3 f lines
  shift 3
  if [ "$rc" = 1 ]; then
    echo "ok: $what: exit 1"
  else
    echo "FAIL: $what: exit $rc, expected 1$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))")"
    fail=1
  fi
  lines=$(wc -l <"$tmp/err")
  if [ "$lines" = 1 ] && grep -q "^imbench: error: $dir/.*: write failed: disk full$" "$tmp/err"; then
    echo "ok: $what: one line: $(cat "$tmp/err")"
  else
    echo "FAIL: $what: expected one line 'imbench: error: $dir/...: write failed: disk full', got $lines:"
    sed 's/^/  | /' "$tmp/err" | head -10
    fail=1
  fi
  for f in "$@"; do
    if diff -r "$good/$f" "$dir/$f" >/dev/null; then
      echo "ok: $what: $f is byte-identical"
    else
      echo "FAIL: $what: $f changed"
      fail=1
    fi
  done
  if [ -n "$(find "$dir" -name '*.tmp-*')" ]; then
    echo "FAIL: $what: temporary files left: $(find "$dir" -name '*.tmp-*')"
    fail=1
  else
    echo "ok: $what: no temporary file left"
  fi
}

# The writers, each aimed at a folder given as $1.
w_attack() { "$bin" attack --model "$good/m.ckpt" --dataset synthetic --attack fgsm --eps 0.2 --examples 40 --threads 1 --out "$1/a.h5"; }
w_run() { "$bin" run "$tmp/disk.toml" --out "$1/r.h5" --report - --threads 1 --quiet; }
w_merge() { "$bin" merge "$good/r.h5" "$good/r2.h5" --out "$1/merged.h5"; }
w_report() { "$bin" report "$good/full.h5" --out "$1/rep/report.md"; }
w_export() { "$bin" export "$good/full.h5" --out "$1/e.csv"; }
w_train() { "$bin" train --dataset synthetic --epochs 1 --hidden 16 --quiet --threads 1 --seed 2 --out "$1/m.ckpt"; }
# WRITER:FILE (relative to the folder):MOST_STEPS (0: until it succeeds).
# attack and run save after every cell: a later save that fails leaves the
# file of the earlier one, so only the steps of the first save are checked
# against the previous file.
writers="attack:a.h5:4 run:r.h5:4 merge:merged.h5:0 report:rep:0 export:e.csv:0 train:m.ckpt:0"

# 1. Injected failures at every write step.
inj=$tmp/inj
for spec in $writers; do
  IFS=: read -r w f most <<<"$spec"
  k=1
  while :; do
    rm -rf "$inj" && mkdir -p "$(dirname "$inj/$f")" && cp -r "$good/$f" "$inj/$f"
    IMBENCH_FAIL_WRITE_STEP=$k "w_$w" "$inj" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = 0 ]; then
      if [ "$k" -gt 1 ]; then echo "ok: $w (injected): failed safely at steps 1..$((k - 1)), succeeded with step $k"
      else echo "FAIL: $w (injected): no write step failed"; fail=1; fi
      break
    fi
    check_failure "$w (injected, step $k)" "$inj" "$rc" "$f" >"$tmp/check"  # sets fail; prints only failures
    grep -v '^ok: ' "$tmp/check"
    k=$((k + 1))
    if [ "$most" != 0 ] && [ "$k" -gt "$most" ]; then echo "ok: $w (injected): failed safely at steps 1..$most"; break; fi
    if [ "$k" -gt 64 ]; then echo "FAIL: $w (injected): still failing after 64 steps"; fail=1; break; fi
  done
done

# 2. A real full disk (root: a tmpfs).
if [ "$(id -u)" != 0 ]; then echo "skip: a real full disk (mounting a tmpfs needs root)"; exit $fail; fi
if ! mount -t tmpfs -o size=1m tmpfs "$disk" 2>"$tmp/mount.err"; then
  echo "skip: a real full disk (cannot mount a tmpfs: $(cat "$tmp/mount.err"))"
  exit $fail
fi

# full_disk WHAT FILE... -- COMMAND: runs COMMAND on the full disk and checks it.
full_disk() {
  local what=$1 files=() rc
  shift
  while [ "$1" != "--" ]; do files+=("$1"); shift; done
  shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  check_failure "$what" "$disk" "$rc" "${files[@]}"
}

for spec in $writers; do
  IFS=: read -r w f _ <<<"$spec"
  fill_disk "$f"
  full_disk "$w" "$f" -- "w_$w" "$disk"
done

exit $fail
