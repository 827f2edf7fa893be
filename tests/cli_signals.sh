#!/usr/bin/env bash
# SIGINT and SIGTERM during `run`, `attack` and `train`: the write in progress
# finishes, the cell or epoch in progress is discarded, one line says what was
# kept and how to resume, the exit code is 130 (SIGINT) or 143 (SIGTERM), and
# the same command run again gives the uninterrupted result.
#
# The signals are raised at fixed moments (core/interrupt.h,
# IMBENCH_TEST_RAISE=SIG:EVENT:N: the process raises SIG on itself at its N-th
# stop point or save), so every case lands on every machine; one more case
# sends SIGINT from outside to a run whose first cell takes far longer than
# the wait before the signal.
# Usage: cli_signals.sh IMBENCH SOURCE_DIR
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
one_line() {  # one_line FILE TEXT DESCRIPTION: FILE (stderr) is exactly one line, and it holds TEXT
  local lines
  lines=$(wc -l <"$1")
  if [ "$lines" = 1 ] && grep -qF -- "$2" "$1"; then
    echo "ok: $3: $(cat "$1")"
  else
    echo "FAIL: $3: expected one line with '$2', got $lines:"; sed 's/^/  | /' "$1" | head -5; fail=1
  fi
}

cat >m.toml <<'EOF'
name = "signals"
dataset = "synthetic"
examples = 60
seed = 5
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
eps = [0.05]
options = { steps = 5 }
EOF
run() { "$bin" run m.toml --threads 2 --quiet --report - "$@"; }
expect 0 "the uninterrupted run (trains both models)" -- run --out full.h5
full_cells=$(cells_of full.h5)

# run: SIGINT right after the 4th save (the first holds no cell yet); the next cell starts and is discarded.
IMBENCH_TEST_RAISE=INT:save:4 run --out int.h5 >out.txt 2>err.txt
rc=$?
[ "$rc" = 130 ] && echo "ok: run: SIGINT exits 130" || { echo "FAIL: run: SIGINT: exit $rc, expected 130"; fail=1; }
one_line err.txt "imbench run: interrupted by SIGINT: kept 3 of $full_cells cells in int.h5 (cell " "run: SIGINT"
contains err.txt "was stopped and discarded); run the same command again to resume" "run: SIGINT: it says how to resume"
[ "$(cells_of int.h5)" = 3 ] && echo "ok: run: the file holds the 3 cells" || { echo "FAIL: run: int.h5 holds '$(cells_of int.h5)' cells, expected 3"; fail=1; }
expect 0 "run: the same command resumes" -- run --out int.h5
contains out "resuming int.h5: 3 finished cells" "run: it kept the 3 cells"
expect 0 "run: interrupted + resumed equals uninterrupted" -- $h5 same full.h5 int.h5

# run: SIGTERM in the middle of a cell (its 60th stop point: an attack gradient or a batch).
IMBENCH_TEST_RAISE=TERM:step:60 run --out term.h5 >out.txt 2>err.txt
rc=$?
[ "$rc" = 143 ] && echo "ok: run: SIGTERM exits 143" || { echo "FAIL: run: SIGTERM: exit $rc, expected 143"; fail=1; }
one_line err.txt "imbench run: interrupted by SIGTERM: kept " "run: SIGTERM"
expect 0 "run: resumes after SIGTERM" -- run --out term.h5
expect 0 "run: SIGTERM + resumed equals uninterrupted" -- $h5 same full.h5 term.h5
ls ./*.tmp-* >/dev/null 2>&1 && { echo "FAIL: a temporary file is left: $(ls ./*.tmp-*)"; fail=1; }

# train: SIGTERM in the 2nd epoch; the state of epoch 1 is kept; the same command finishes with the same weights.
train=("$bin" train --family det --dataset synthetic --epochs 3 --hidden 32,32 --batch-size 100 --quiet)
weights() { "$bin" info "$1" | sed -n 's/.*"weights_sha256": "\([0-9a-f]*\)".*/\1/p'; }
expect 0 "train: uninterrupted" -- "${train[@]}" --out t-full.ckpt
# Stop points: one per training batch, then the validation batches, then the state is saved.
train_images=$(sed -n 's/.*(\([0-9]*\) train \/.*/\1/p' out | head -1)
batches=$(( (${train_images:-0} + 99) / 100 ))
IMBENCH_TEST_RAISE=TERM:step:$((2 * batches)) "${train[@]}" --out t.ckpt >out.txt 2>err.txt
rc=$?
[ "$rc" = 143 ] && echo "ok: train: SIGTERM exits 143" || { echo "FAIL: train: SIGTERM: exit $rc, expected 143 (batches per epoch: '$batches')"; fail=1; }
one_line err.txt "imbench train: interrupted by SIGTERM: kept the training state after epoch 1 of 3 in t.ckpt.train-state; run the same command again to resume" "train: SIGTERM"
[ -f t.ckpt.train-state ] && [ ! -f t.ckpt ] && echo "ok: train: the state is kept, no checkpoint yet" || { echo "FAIL: train: state or checkpoint wrong: $(ls)"; fail=1; }
expect 0 "train: the same command resumes" -- "${train[@]}" --out t.ckpt
w_full=$(weights t-full.ckpt) w=$(weights t.ckpt)
if [ -n "$w" ] && [ "$w" = "$w_full" ]; then echo "ok: train: interrupted + resumed = uninterrupted (weights ${w:0:16})"; else echo "FAIL: train: weights '$w' differ from '$w_full'"; fail=1; fi

# attack --out: SIGINT after the 3rd save; the same command resumes its own file.
attack=("$bin" attack --model sfnn.ckpt --dataset synthetic --attack fgsm,pgd --eps 0.05,0.1 --examples 60 --quiet)
expect 0 "attack: uninterrupted" -- "${attack[@]}" --out a-full.h5
IMBENCH_TEST_RAISE=INT:save:3 "${attack[@]}" --out a.h5 >out.txt 2>err.txt
rc=$?
[ "$rc" = 130 ] && echo "ok: attack: SIGINT exits 130" || { echo "FAIL: attack: SIGINT: exit $rc, expected 130"; fail=1; }
one_line err.txt "imbench attack: interrupted by SIGINT: kept 2 of 4 cells in a.h5" "attack: SIGINT"
contains err.txt "run the same command again to resume" "attack: it says how to resume"
expect 0 "attack: the same command finishes" -- "${attack[@]}" --out a.h5
contains out "note: 2 of 4 cells were kept from a.h5, written by an earlier run of this same command" "attack: it says which cells it kept"
expect 0 "attack: interrupted + resumed equals uninterrupted" -- $h5 same a-full.h5 a.h5
# Without --out nothing is kept.
IMBENCH_TEST_RAISE=INT:step:5 "${attack[@]}" >out.txt 2>err.txt
rc=$?
[ "$rc" = 130 ] && echo "ok: attack without --out: exit 130" || { echo "FAIL: attack without --out: exit $rc, expected 130"; fail=1; }
one_line err.txt "imbench attack: interrupted by SIGINT: nothing was kept; running the same command again starts over" "attack without --out"

# A real SIGINT from outside, during a first cell that takes minutes (100000 PGD steps).
cat >slow.toml <<'EOF'
name = "slow"
dataset = "synthetic"
examples = 60
seed = 5
eot_samples = 2

[[models]]
name = "sfnn"
checkpoint = "sfnn.ckpt"

[[attacks]]
name = "pgd"
eps = [0.1]
options = { steps = 100000 }
EOF
"$bin" run slow.toml --out slow.h5 --threads 2 --quiet --report - >out.txt 2>err.txt &
pid=$!
for _ in $(seq 1 600); do [ -f slow.h5 ] && break; sleep 0.05; done
sleep 0.5
kill -INT "$pid"
start=$(date +%s)
wait "$pid"
rc=$?
[ "$rc" = 130 ] && echo "ok: outside SIGINT: exit 130 after $(( $(date +%s) - start )) s" || { echo "FAIL: outside SIGINT: exit $rc, expected 130"; fail=1; }
one_line err.txt "imbench run: interrupted by SIGINT: kept 0 of 1 cells in slow.h5 (cell sfnn.pgd.linf-0.1 was stopped and discarded)" "outside SIGINT"
expect 0 "outside SIGINT: the file is readable" -- $h5 summary slow.h5
exit $fail
