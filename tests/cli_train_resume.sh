#!/usr/bin/env bash
# Resumable training: a run killed with kill -9 at random moments and re-run
# until it finishes ends with the same weights (weights_sha256) as an
# uninterrupted run; a state written by another run is refused; the state
# file is gone once the checkpoint is written. The kill moments come from
# bash's generator seeded with IMBENCH_KILL_SEED (default: from the clock;
# printed, so that a failure can be replayed). Each kill that leaves a state
# must leave a partial one (fewer epochs than the uninterrupted run).
# Usage: cli_train_resume.sh IMBENCH
bin=$1
py=${IMBENCH_PYTHON:-/usr/bin/python3}
seed=${IMBENCH_KILL_SEED:-$(( $(date +%s) % 100000 ))}
echo "note: kill moments seeded with IMBENCH_KILL_SEED=$seed"
RANDOM=$seed
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
source "$(dirname "$0")/cli_lib.sh"
cd "$tmp"

sha() { "$bin" info "$1" | sed -n 's/.*"weights_sha256": "\([0-9a-f]*\)".*/\1/p'; }
# Epochs a checkpoint's training ran (its history), and the epoch a training state records.
epochs_of() { "$bin" info "$1" | "$py" -c 'import json, sys; print(len(json.load(sys.stdin)["training"]["result"]["history"]))'; }
state_epoch() {
  "$py" - "$1" <<'PY'
import re, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        m = re.search(rb'\\?"epoch\\?":(\d+)', z.read(name))
        if m:
            print(int(m.group(1)))
            break
PY
}

# IMB-Greedy (two stages, early stopping in each) and VIB (Gaussian noise
# from LibTorch's generator), small enough for a few seconds per run.
for family in imb-greedy vib; do
  args=(train --family "$family" --dataset synthetic --preset quick --hidden 64,64 --epochs 16 --patience 4
        --validation-size 200 --threads 2 --quiet)
  expect 0 "$family: uninterrupted run" -- "$bin" "${args[@]}" --out "$family-full.ckpt"
  [ -e "$family-full.ckpt.train-state" ] && { echo "FAIL: $family: the state file outlived the checkpoint"; fail=1; }
  # Kill at a random moment after this run has saved a new state (or, one
  # time in four, at any moment), then re-run; until the checkpoint exists.
  full_epochs=$(epochs_of "$family-full.ckpt")
  kills=0 resumes=0 partial=0
  state_file=$family-killed.ckpt.train-state
  for attempt in $(seq 1 40); do
    [ -f "$family-killed.ckpt" ] && break
    before=$(stat -c %y "$state_file" 2>/dev/null)
    "$bin" "${args[@]}" --out "$family-killed.ckpt" >/dev/null 2>&1 &
    pid=$!
    if [ $((RANDOM % 4)) != 0 ]; then
      for _ in $(seq 1 200); do [ "$(stat -c %y "$state_file" 2>/dev/null)" != "$before" ] && break; sleep 0.05; done
    fi
    sleep "0.0$((RANDOM % 10))"
    state=$([ -f "$state_file" ] && echo 1 || echo 0)
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); resumes=$((resumes + state)); fi
    wait "$pid" 2>/dev/null
    # What the kill left must be partial: a state short of the full run's epochs.
    if [ -f "$state_file" ] && [ ! -f "$family-killed.ckpt" ]; then
      e=$(state_epoch "$state_file")
      # (Equal is possible: a kill between the last state and the checkpoint.)
      if [ -z "$e" ] || [ "$e" -gt "$full_epochs" ]; then
        echo "FAIL: $family: the killed run's state records epoch '${e}', beyond the full run's $full_epochs"; fail=1
      elif [ "$e" -lt "$full_epochs" ]; then
        partial=$((partial + 1))
      fi
    fi
  done
  echo "note: $family: $kills kills landed before the run finished, $resumes of them after a saved state; $partial partial states checked (full run: $full_epochs epochs)"
  if [ "$partial" -lt 1 ]; then echo "FAIL: $family: no kill left a partial state to resume from"; fail=1; fi
  if [ ! -f "$family-killed.ckpt" ]; then
    expect 0 "$family: last re-run finishes" -- "$bin" "${args[@]}" --out "$family-killed.ckpt"
  fi
  if [ "$resumes" -lt 1 ]; then echo "FAIL: $family: no kill landed after a saved state; the test proved nothing"; fail=1; fi
  full=$(sha "$family-full.ckpt"); killed=$(sha "$family-killed.ckpt")
  if [ -n "$full" ] && [ "$full" = "$killed" ]; then
    echo "ok: $family: killed $kills times and resumed = uninterrupted (weights ${full:0:16})"
  else
    echo "FAIL: $family: weights differ after kill + resume: ${full:0:16} vs ${killed:0:16}"; fail=1
  fi
  [ -e "$family-killed.ckpt.train-state" ] && { echo "FAIL: $family: the state file outlived the checkpoint"; fail=1; }
done

# A state from another run (other learning rate) is refused with one line.
"$bin" train --family vib --dataset synthetic --preset quick --hidden 32,32 --epochs 50 --threads 2 --quiet --out other.ckpt >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -f other.ckpt.train-state ] && break; sleep 0.05; done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
cp other.ckpt.train-state state.before
expect 1 "a state written with other options is refused" -- "$bin" train --family vib --dataset synthetic --preset quick --hidden 32,32 --epochs 50 --lr 0.01 --threads 2 --quiet --out other.ckpt
contains err "holds the training state of another run" "the refusal names the cause"
[ "$(wc -l < err)" -le 1 ] || { echo "FAIL: the refusal is more than one line"; fail=1; }
cmp -s state.before other.ckpt.train-state || { echo "FAIL: the refused state was changed or removed"; fail=1; }

exit $fail
