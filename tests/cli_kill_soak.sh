#!/usr/bin/env bash
# Kill soak: one small matrix run 20 times in a row, each run killed with
# SIGKILL at a seeded random moment, then once to the end; the final file must
# equal an uninterrupted run's, value by value (timings aside). After every
# kill the results file must be readable (or not yet written) and hold no
# fewer cells than before, and the last run must leave no temporary file.
#
# The moments are events, not seconds (core/interrupt.h, IMBENCH_TEST_RAISE
# =KILL:any:N): the N-th stop point (an attack gradient, an evaluation
# batch), step of the atomic writer (open, write, fsync, close: a half-written
# temporary file) or finished replace, so a moment is the same on every
# machine and a failure replays exactly with the printed seed. N is drawn
# from bash's generator seeded with IMBENCH_KILL_SEED (default 1).
# Usage: cli_kill_soak.sh IMBENCH SOURCE_DIR
set -u
bin=$1
src=$2
py=${IMBENCH_PYTHON:-/usr/bin/python3}
h5="$py $src/tests/h5_results.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
source "$src/tests/cli_lib.sh"

cat >m.toml <<'EOF'
name = "soak"
dataset = "synthetic"
examples = 60
seed = 3
batch_size = 25
eot_samples = 2
repeats = 2

EOF
synthetic_models >>m.toml
cat >>m.toml <<'EOF'

[[attacks]]
name = "fgsm"
eps = [0.05, 0.1]

[[attacks]]
name = "pgd"
eps = [0.05, 0.1]
options = { steps = 5 }

[[attacks]]
name = "cw"
norm = "l2"
eps = [1.0]
options = { steps = 10, binary_search_steps = 2 }
EOF

run() { "$bin" run m.toml --threads 2 --quiet --report - "$@"; }

expect 0 "the uninterrupted run (trains both models)" -- run --out full.h5
full_cells=$(cells_of full.h5)
[ "${full_cells:-0}" -gt 5 ] && echo "ok: $full_cells cells" || { echo "FAIL: the full run has '$full_cells' cells"; fail=1; }

seed=${IMBENCH_KILL_SEED:-1}
echo "note: kill moments seeded with IMBENCH_KILL_SEED=$seed"
RANDOM=$seed
# A kill's event kind is drawn too: `any` (most are attack gradients and
# evaluation batches), `write` (inside a save: the temporary file is open,
# half written or not yet renamed) or `save` (right after a save). A run
# saves once before its first cell, once per cell and once at the end, each
# save in 4 write steps (open, write, fsync, close); it has about 20 other
# events before its first cell and 10 to 80 per cell. N is drawn small (at
# most 2 cells further, mostly less), so the kills spread over the whole
# matrix and the last ones hit the saves of a complete file.
landed=0 finished=0 last=0
partial=" "
for i in $(seq 1 20); do
  case $((RANDOM % 3)) in
    0) kind=any n=$((1 + RANDOM % 40)) ;;
    1) kind=write n=$((1 + RANDOM % 12)) ;;
    2) kind=save n=$((1 + RANDOM % 3)) ;;
  esac
  IMBENCH_TEST_RAISE=KILL:$kind:$n run --out killed.h5 >kill.log 2>&1
  rc=$?
  if [ -f killed.h5 ]; then
    c=$(cells_of killed.h5)
    if [ -z "$c" ]; then echo "FAIL: kill $i ($kind event $n): killed.h5 is not readable"; fail=1; c=$last; fi
  else
    c=0
  fi
  case $rc in
    137) landed=$((landed + 1)) ;;
    0) finished=$((finished + 1)) ;;
    *) echo "FAIL: kill $i ($kind event $n): exit $rc, expected 137 (killed) or 0 (finished first)"; sed 's/^/  | /' kill.log | tail -5; fail=1 ;;
  esac
  if [ "$c" -lt "$last" ]; then echo "FAIL: kill $i ($kind event $n): $c cells, fewer than the $last before"; fail=1; fi
  [ "$c" -gt 0 ] && [ "$c" -lt "$full_cells" ] && case "$partial" in *" $c "*) ;; *) partial="$partial$c " ;; esac
  echo "note: kill $i at $kind event $n: exit $rc, $c of $full_cells cells"
  last=$c
done
echo "note: $landed of 20 kills landed before the run ended; $finished runs finished first; partial files of$partial cells"
[ "$landed" -ge 15 ] && echo "ok: at least 15 kills landed mid-run" || { echo "FAIL: only $landed kills landed mid-run"; fail=1; }
distinct=$(echo $partial | wc -w)
[ "$distinct" -ge 4 ] && echo "ok: partial files of $distinct different sizes" || { echo "FAIL: partial files of only $distinct sizes:$partial"; fail=1; }

expect 0 "the run after the last kill finishes" -- run --out killed.h5
expect 0 "20 times killed and resumed equals uninterrupted (timings aside)" -- $h5 same full.h5 killed.h5
if ls killed.h5.tmp-* >/dev/null 2>&1; then
  echo "FAIL: temporary files of killed runs are left: $(ls killed.h5.tmp-* | tr '\n' ' ')"; fail=1
else
  echo "ok: no temporary file left (the last save removed those of killed runs)"
fi
exit $fail
