#!/usr/bin/env bash
# The harness end to end on synthetic data: a matrix run that trains its
# models, h5py reads the file, a re-run resumes, runs killed after the k-th
# save, inside a save and at a random moment re-run to the uninterrupted
# result (tests/cli_kill_soak.sh kills one 20 times), shards + merge equal one
# run, compare passes an unchanged file and fails a planted regression,
# report renders, and bad input leaves existing results untouched.
# Usage: cli_harness.sh IMBENCH SOURCE_DIR
set -u
bin=$1
src=$2
py=${IMBENCH_PYTHON:-/usr/bin/python3}  # Debian's python3 has h5py; a pyenv python3 on PATH may not
h5="$py $src/tests/h5_results.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
source "$src/tests/cli_lib.sh"
unchanged() {  # unchanged FILE SUM DESCRIPTION
  if [ "$(sha256sum <"$1")" = "$2" ]; then echo "ok: $3"; else echo "FAIL: $3: $1 changed"; fail=1; fi
}

cat >m.toml <<'EOF'
name = "smoke"
dataset = "synthetic"
examples = 60
seed = 1
batch_size = 25
eot = 2
repeats = 2
audit_examples = 20

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

[[attacks]]
name = "pgd-from-det"
attack = "pgd"
eps = [0.1]
source = "det"
options = { steps = 5 }
EOF

expect 0 "run --help" -- "$bin" run --help
expect 0 "run trains missing models and evaluates the matrix" -- "$bin" run m.toml --out full.h5 --threads 2 --quiet
contains out "training DET" "the missing DET checkpoint was trained"
contains out "results: full.h5" "run says where the results are"
contains out "report: full.md" "run writes the report"
[ -f det.ckpt ] && [ -f sfnn.ckpt ] && echo "ok: checkpoints written" || { echo "FAIL: checkpoints missing"; fail=1; }
expect 0 "h5py reads the results file" -- $h5 summary full.h5
contains out "models=2 cells=11" "11 cells: 5 per model (two Linf cascades of 2, one L2), plus the transfer on sfnn"
contains full.md "# imbench report" "the report has its title"
contains full.md "pgd (steps 5, step size 0.025," "the report gives PGD's step size in use (2.5 eps / steps at eps 0.05)"

# Resume: everything is done, nothing changes.
cp full.h5 again.h5
expect 0 "re-run resumes" -- "$bin" run m.toml --out again.h5 --threads 2 --quiet
contains out "done earlier, kept" "finished cells are skipped"
expect 0 "resumed file equals the first" -- $h5 same full.h5 again.h5

# Asking for the adversarial examples later: saving them is not part of a
# cell's hash, but a finished cell without them runs again (same seeds, same numbers).
cp full.h5 adv.h5
expect 0 "re-run with --save-adversarial" -- "$bin" run m.toml --out adv.h5 --threads 2 --quiet --report - --save-adversarial
contains out "done earlier without its adversarial examples, run again to save them" "cells without adversarial examples run again"
expect 0 "with the numbers of the first run" -- $h5 same full.h5 adv.h5
cat >count_adv.py <<'PY'
import sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    ok = [g["adversarial"].shape == (int(g["attacked"][:].sum()), 1, 28, 28) for g in f["cells"].values() if "adversarial" in g]
    print(f"{sum(ok)} of {len(f['cells'])} cells hold their adversarial examples")
PY
"$py" count_adv.py adv.h5 >adv.txt
contains adv.txt "11 of 11 cells hold their adversarial examples" "every cell saved one row per attacked example"
cp adv.h5 adv-first.h5
expect 0 "a second re-run with --save-adversarial keeps them" -- "$bin" run m.toml --out adv.h5 --threads 2 --quiet --report - --save-adversarial
if grep -q "run again" "$tmp/out"; then echo "FAIL: a cell with its adversarial examples ran again"; fail=1; else echo "ok: nothing ran again"; fi
expect 0 "the rewritten file holds the same examples (copied from the file, not kept in memory)" -- $h5 same adv-first.h5 adv.h5
"$py" count_adv.py adv.h5 >adv.txt
contains adv.txt "11 of 11 cells hold their adversarial examples" "all of them"
expect 0 "shard 1/2 with --save-adversarial" -- "$bin" run m.toml --shard 1/2 --out a1.h5 --threads 2 --quiet --report - --save-adversarial
expect 0 "shard 2/2 with --save-adversarial" -- "$bin" run m.toml --shard 2/2 --out a2.h5 --threads 2 --quiet --report - --save-adversarial
expect 0 "merge keeps the adversarial examples" -- "$bin" merge a1.h5 a2.h5 --out amerged.h5
expect 0 "merged shards equal one run, adversarial examples included" -- $h5 same adv-first.h5 amerged.h5
"$py" count_adv.py amerged.h5 >adv.txt
contains adv.txt "11 of 11 cells hold their adversarial examples" "in every cell"

# Kill -9 after the k-th save, for several k (core/interrupt.h: the process
# raises SIGKILL on itself right after its k-th file replace; the first save
# holds no cell yet), and in the middle of a save (the 2nd of the 4 write
# steps of the 4th save: its temporary file is half written). Each killed
# file must be partial, readable, and resume to the uninterrupted result.
full_cells=$(cells_of full.h5)
kill_case() {  # kill_case HOOK EXPECTED_CELLS DESCRIPTION
  rm -f killed.h5 killed.h5.tmp-*
  IMBENCH_TEST_RAISE=$1 "$bin" run m.toml --out killed.h5 --threads 2 --quiet --report - >kill.log 2>&1
  local rc=$? cells
  cells=$(cells_of killed.h5)
  if [ "$rc" = 137 ] && [ "$cells" = "$2" ]; then
    echo "ok: $3: killed (exit 137), the file holds $cells of $full_cells cells"
  else
    echo "FAIL: $3: exit $rc (expected 137), cells '$cells' (expected $2 of $full_cells)"; fail=1
  fi
  case $1 in *:write:*)
    ls killed.h5.tmp-* >/dev/null 2>&1 && echo "ok: $3: the half-written temporary file is left beside it" ||
      { echo "FAIL: $3: no temporary file: the kill did not land inside a save"; fail=1; } ;;
  esac
  expect 0 "$3: the re-run resumes" -- "$bin" run m.toml --out killed.h5 --threads 2 --quiet --report -
  contains out "resuming killed.h5: $2 finished cells" "$3: it kept the $2 cells"
  expect 0 "$3: killed + resumed equals uninterrupted (timings aside)" -- $h5 same full.h5 killed.h5
  if ls killed.h5.tmp-* >/dev/null 2>&1; then echo "FAIL: $3: a temporary file is left after the re-run"; fail=1; fi
}
kill_case KILL:save:2 1 "kill after the 1st cell"
kill_case KILL:save:6 5 "kill after the 5th cell"
kill_case KILL:save:$full_cells $((full_cells - 1)) "kill before the last cell"
kill_case KILL:write:14 2 "kill in the middle of the 4th save"

# A real kill -9 from outside at a random moment (seeded with
# IMBENCH_KILL_SEED, default from the clock): on a fast machine it may land
# after the end, which is then only noted (the cases above are the
# deterministic ones).
seed=${IMBENCH_KILL_SEED:-$(( $(date +%s) % 100000 ))}
echo "note: outside kill moment seeded with IMBENCH_KILL_SEED=$seed"
RANDOM=$seed
rm -f killed.h5 killed.h5.tmp-*
"$bin" run m.toml --out killed.h5 --threads 2 --quiet --report - >kill.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -f killed.h5 ] && break; sleep 0.02; done
sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
if kill -9 "$pid" 2>/dev/null; then
  wait "$pid" 2>/dev/null
  echo "note: the outside kill landed with $(cells_of killed.h5) of $full_cells cells saved"
else
  wait "$pid" 2>/dev/null
  echo "note: the run ended before the outside kill"
fi
expect 0 "the killed run's file is readable" -- $h5 summary killed.h5
expect 0 "re-run after kill -9" -- "$bin" run m.toml --out killed.h5 --threads 2 --quiet --report -
expect 0 "killed + resumed equals uninterrupted (timings aside)" -- $h5 same full.h5 killed.h5
if ls killed.h5.tmp-* >/dev/null 2>&1; then echo "FAIL: a temporary file of a killed run is left"; fail=1; else echo "ok: no temporary file left"; fi

# Shards and merge.
expect 0 "shard 1/2" -- "$bin" run m.toml --shard 1/2 --out s1.h5 --threads 2 --quiet --report -
expect 0 "shard 2/2" -- "$bin" run m.toml --shard 2/2 --out s2.h5 --threads 2 --quiet --report -
expect 0 "merge" -- "$bin" merge s1.h5 s2.h5 --out merged.h5
expect 0 "shards merged equal one run" -- $h5 same full.h5 merged.h5
expect 2 "merge needs two files" -- "$bin" merge s1.h5 --out x.h5

# Compare: unchanged passes; a planted regression fails with exit 1.
expect 0 "compare unchanged" -- "$bin" compare full.h5 again.h5
contains out ": 0 regressions, 0 improvements" "an unchanged run has no regression"
cp full.h5 base.h5
$py "$src/tests/h5_results.py" plant base.h5 det.pgd.linf-0.1
expect 1 "compare flags a planted regression" -- "$bin" compare base.h5 full.h5 --tolerance 0.01
contains out ": 1 regressions, 0 improvements" "exactly one cell regressed"
grep -q '^| det\.pgd\.linf-0\.1 .*| regression *|$' "$tmp/out" && echo "ok: the planted cell is the regression" \
  || { echo "FAIL: det.pgd.linf-0.1 not marked as a regression"; sed 's/^/  | /' "$tmp/out" | head -20; fail=1; }
# A cell run with another configuration (one more PGD step) fails the gate unless allowed.
cp full.h5 config.h5
$py "$src/tests/h5_results.py" plant-config config.h5 det.pgd.linf-0.1
expect 1 "compare refuses a planted configuration change" -- "$bin" compare full.h5 config.h5
contains out "options.steps: " "and names what changed"
expect 0 "--allow-config-change judges it like the others" -- "$bin" compare full.h5 config.h5 --allow-config-change
# Merge refuses two copies of a cell whose records differ (the planted base.h5
# has other adversarial_correct values, same hash); compare fails on base
# cells missing from the new file unless --allow-missing.
expect 1 "merge refuses two different results of one cell" -- "$bin" merge full.h5 base.h5 --out refused.h5
contains err "cell 'det.pgd.linf-0.1' has two different results" "and names the cell"
contains err "adversarial_correct differs" "and what differs"
[ -e refused.h5 ] && { echo "FAIL: the refused merge wrote refused.h5"; fail=1; } || echo "ok: nothing written"
expect 1 "compare fails when base cells are missing from the new file" -- "$bin" compare full.h5 s1.h5
contains err "cells of full.h5 are missing" "and says so"
expect 0 "--allow-missing compares the rest" -- "$bin" compare full.h5 s1.h5 --allow-missing
contains out "(allowed: --allow-missing)" "and still lists the missing cells"
expect 0 "cells only in the new file do not fail" -- "$bin" compare s1.h5 full.h5

# Report to a file with curves.
expect 0 "report" -- "$bin" report full.h5 --out rep/report.md
ls rep/report-curves/*.svg >/dev/null 2>&1 && echo "ok: robustness curves written" || { echo "FAIL: no SVG curves"; fail=1; }

# Bad input: clear errors, existing results untouched.
sum=$(sha256sum <full.h5)
sed 's/^seed = 1/sede = 1/' m.toml >bad.toml
expect 2 "unknown key in the matrix" -- "$bin" run bad.toml --out full.h5
contains err "bad.toml:4: sede: unknown key (did you mean 'seed'?)" "the error names file, line and key"
unchanged full.h5 "$sum" "a bad matrix leaves the results file untouched"
sed 's/^seed = 1/seed = 2/' m.toml >other.toml
expect 1 "another matrix's results file" -- "$bin" run other.toml --out full.h5
contains err "holds results of another matrix" "the error says why"
unchanged full.h5 "$sum" "another matrix leaves the results file untouched"
printf 'garbage' >broken.ckpt
sed 's/checkpoint = "det.ckpt"/checkpoint = "broken.ckpt"/; s/^family = "det"$//; s/^train = { epochs = 2.*$//' m.toml >broken.toml
expect 1 "unreadable model" -- "$bin" run broken.toml --out broken.h5
[ ! -e broken.h5 ] && echo "ok: no results file for an unreadable model" || { echo "FAIL: broken.h5 written"; fail=1; }
expect 1 "report of a missing file" -- "$bin" report none.h5
expect 1 "report of a non-HDF5 file" -- "$bin" report m.toml
expect 2 "bad shard" -- "$bin" run m.toml --shard 3/2
expect 2 "missing matrix file" -- "$bin" run none.toml
"$bin" run other.toml --out other.h5 --threads 2 --quiet --report - >/dev/null 2>&1
expect 1 "merge refuses files of different matrices" -- "$bin" merge full.h5 other.h5 --out y.h5
[ ! -e y.h5 ] && echo "ok: no merged file" || { echo "FAIL: y.h5 written"; fail=1; }
exit $fail
