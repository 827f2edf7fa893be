#!/usr/bin/env bash
# CLI smoke test: help texts, exit codes (0 ok, 1 runtime, 2 usage), and a
# short train + eval + info on the synthetic dataset. Usage: cli_smoke.sh IMBENCH
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"

expect 0 "--help" -- "$bin" --help
contains out "usage: imbench" "--help prints usage"
expect 0 "--version" -- "$bin" --version
contains out "imbench 0." "--version prints the version"
for c in train eval info "data fetch" "data list"; do
  expect 0 "$c --help" -- "$bin" $c --help
done
expect 2 "no command" -- "$bin"
expect 2 "unknown command" -- "$bin" trian
contains err "did you mean 'train'" "unknown command suggests train"
expect 2 "unknown option" -- "$bin" train --epoch 3
contains err "did you mean '--epochs'" "unknown option suggests --epochs"
expect 2 "unknown dataset" -- "$bin" train --dataset minst --data-dir "$tmp/data"
contains err "did you mean 'mnist'" "unknown dataset suggests mnist"
expect 2 "unknown family" -- "$bin" train --family dte --dataset synthetic
expect 2 "bad number" -- "$bin" train --epochs abc
expect 2 "negative epochs" -- "$bin" train --epochs -1 --dataset synthetic
contains err "error: --epochs must be >= 1, got -1" "train errors name the flag"
expect 2 "option of another family" -- "$bin" train --dataset synthetic --k 8
contains err "--k does not apply to family 'det'" "a family's option on another family names the flag"
expect 2 "per-layer list too long" -- "$bin" train --family sfnn --dataset synthetic --hidden 8 --train-samples 2,2
contains err "--train-samples needs 1 value (one per hidden layer), got 2" "per-layer lengths name the flag"
expect 0 "train --help lists every option" -- "$bin" train --help
contains out "--lr X " "--lr is the flag of learning_rate"
contains out "quick 20, paper 200" "train --help gives each preset's default"
contains out "--train-samples N,N," "family options are flags"
contains out "--prior-std X" "every family option is a flag"
expect 2 "patience without validation" -- "$bin" train --dataset synthetic --patience 3 --validation-size 0
# --device cuda: a usage error where LibTorch has no CUDA (Debian's), a run where it has (the GPU build).
"$bin" train --dataset synthetic --device cuda --epochs 1 --quiet --threads 1 --out "$tmp/x.ckpt" >"$tmp/out" 2>"$tmp/err"
rc=$?
case $rc in
  0) contains out "device cuda" "--device cuda trains on the GPU" ;;
  2) contains err "cuda" "--device cuda without CUDA is a usage error naming cuda" ;;
  *) echo "FAIL: --device cuda: exit $rc"; sed 's/^/  | /' "$tmp/err" | tail -5; fail=1 ;;
esac
expect 2 "eval without model" -- "$bin" eval
expect 1 "eval missing file" -- "$bin" eval --model "$tmp/none.ckpt" --dataset synthetic
expect 1 "info missing file" -- "$bin" info "$tmp/none.ckpt"
expect 1 "mnist absent" -- "$bin" train --dataset mnist --data-dir "$tmp/empty" --out "$tmp/x.ckpt"
contains err "imbench data fetch" "missing data says how to fetch it"

expect 0 "train on synthetic" -- "$bin" train --dataset synthetic --epochs 2 --hidden 64,64 --quiet \
  --threads 1 --seed 3 --out "$tmp/m.ckpt"
contains out "test accuracy:" "train prints the test accuracy"
contains out "seed 3" "train prints the seed"
expect 0 "eval checkpoint" -- "$bin" eval --model "$tmp/m.ckpt" --dataset synthetic --limit 100 --threads 1
contains out "first 100 of 1000 examples" "eval states which examples"
contains err "--limit is now --examples" "the old flag --limit still works, with a note"
contains out "argmax of logits" "eval states the prediction rule"
expect 0 "eval: --examples, the name shared with a matrix's key" -- "$bin" eval --model "$tmp/m.ckpt" --dataset synthetic --examples 50 --threads 1
contains out "first 50 of 1000 examples" "eval --examples selects the examples"
expect 0 "eval without --examples" -- "$bin" eval --model "$tmp/m.ckpt" --dataset synthetic --threads 1
contains out "first 1000 of 1000 examples" "eval's default is 1000 examples, as attack's and a matrix's"
expect 0 "info checkpoint" -- "$bin" info "$tmp/m.ckpt"
contains out '"family": "det"' "info shows the family"
contains out '"git_revision"' "info shows the revision"
# A model trained on 784-dimensional inputs cannot evaluate CIFAR-shaped data.
mkdir -p "$tmp/cifar" && head -c 3073 /dev/zero > "$tmp/cifar/test_batch.bin"
expect 2 "shape mismatch" -- "$bin" eval --model "$tmp/m.ckpt" --dataset cifar10 --cifar10-dir "$tmp/cifar"
# A corrupt checkpoint is an error, and a failed train never replaces a good file.
cp "$tmp/m.ckpt" "$tmp/keep.ckpt"
head -c 2000 "$tmp/m.ckpt" > "$tmp/cut.ckpt"
expect 1 "truncated checkpoint" -- "$bin" eval --model "$tmp/cut.ckpt" --dataset synthetic
expect 2 "failed train keeps old file" -- "$bin" train --dataset synthetic --lr -1 --out "$tmp/keep.ckpt"
contains err "--lr must be > 0, got -1" "--lr errors name --lr"
# TorchScript descriptions: flags from their option table, checked as flags; a checkpoint records them.
expect 2 "TorchScript flag on a checkpoint" -- "$bin" eval --model "$tmp/m.ckpt" --dataset synthetic --stochastic
contains err "--input-shape/--num-classes/--stochastic/--samples apply to TorchScript models only" "names the flags"
expect 2 "TorchScript flag out of bounds" -- "$bin" eval --model "$tmp/m.ckpt" --dataset synthetic --samples 0
contains err "--samples must be >= 1, got 0" "TorchScript flag bounds name the flag"
expect 2 "TorchScript flag type" -- "$bin" attack --model "$tmp/m.ckpt" --eps 0.1 --input-shape 1,x
contains err "--input-shape: '1,x' is not a comma-separated list of integers" "TorchScript list syntax names the flag"
if cmp -s "$tmp/m.ckpt" "$tmp/keep.ckpt"; then echo "ok: old checkpoint intact"; else echo "FAIL: checkpoint changed"; fail=1; fi

# Attacks: list, a white-box PGD with transfer to a second model, its results
# file (the imbench-results schema of `imbench run`) read back with h5py and
# by report, compare and merge.
expect 0 "attack --list" -- "$bin" attack --list
contains out "apgd-dlr" "the registry lists apgd-dlr"
contains out "## square" "the registry lists square"
contains out "--queries" "attack --list shows square's options"
expect 0 "train second model" -- "$bin" train --dataset synthetic --epochs 1 --hidden 32 --quiet --threads 1 --seed 4 --out "$tmp/m2.ckpt"
expect 0 "attack pgd with transfer and --out" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack pgd \
  --eps 8/255 --steps 5 --examples 50 --threads 1 --transfer-to "$tmp/m2.ckpt" --out "$tmp/pgd.h5"
contains out "Linf eps=8/255 untargeted" "attack prints the threat model"
contains out "(transfer)" "attack prints the transfer row"
contains out "results: $tmp/pgd.h5" "attack says where its results file is"
expect 2 "attack --options must be an object" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack pgd \
  --eps 0.1 --options 5 --steps 2 --examples 10
contains err "not a JSON object" "--options 5 is named as not an object"
expect 0 "attack square" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack square --norm l2 --eps 1 \
  --queries 30 --early-stop false --examples 20 --threads 1
contains out '"queries":30' "square records its query budget"
contains out "L2 eps=1 untargeted" "square prints its threat model"
# Debian's python3 (python3-h5py), not a python3 earlier on PATH.
py=${IMBENCH_PYTHON:-/usr/bin/python3}
if [ -x $py ] && $py -c "import h5py" 2>/dev/null; then
  if $py - "$tmp/pgd.h5" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert f.attrs["schema"] in (b"imbench-results", "imbench-results"), f.attrs["schema"]
cells = sorted(f["cells"])
assert cells == ["model.pgd.linf-8_255", "transfer-1.pgd-transfer.linf-8_255"], cells
g = f["cells"]["model.pgd.linf-8_255"]
assert g["adversarial_correct"].shape == (1, 50), g["adversarial_correct"].shape
assert g["linf"].shape == (50,)
assert float(g["linf"][:].max()) <= 8 / 255 + 1e-6
assert 0.0 <= g.attrs["robust_accuracy"] <= 1.0
t = f["cells"]["transfer-1.pgd-transfer.linf-8_255"]
assert t.attrs["source_model"] in (b"model", "model")
# The transfer cell evaluates the white-box adversarial examples: the same perturbations.
assert (t["linf"][:] == g["linf"][:]).all() and (t["l2"][:] == g["l2"][:]).all()
print("h5py ok")
PY
  then echo "ok: the attack's results read back with h5py"; else echo "FAIL: h5py could not read the attack's results"; fail=1; fi
else
  echo "FAIL: python3-h5py is not installed (scripts/setup.sh installs it)"; fail=1
fi
expect 0 "report reads an attack's results" -- "$bin" report "$tmp/pgd.h5"
contains out "# imbench report" "the report of an attack has its title"
contains out "transfer-1" "the report of an attack has the transfer model"
expect 0 "compare reads an attack's results" -- "$bin" compare "$tmp/pgd.h5" "$tmp/pgd.h5"
contains out "0 regressions" "an attack compared with itself has no regression"
cp "$tmp/pgd.h5" "$tmp/pgd-copy.h5"
# --out replaces an earlier attack's file, and refuses a matrix's results.
expect 0 "a second attack replaces the first one's file" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic \
  --attack fgsm --eps 0.1 --examples 20 --threads 1 --out "$tmp/again.h5"
expect 0 "and a third" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack fgsm --eps 0.2 --examples 20 \
  --threads 1 --out "$tmp/again.h5"
contains out "Linf eps=0.2" "the replaced file holds the new attack"
$py -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert sorted(f['cells']) == ['model.fgsm.linf-0.2'], list(f['cells'])" \
  "$tmp/again.h5" && echo "ok: only the new attack's cell is in the file" || { echo "FAIL: the old attack's cell is still there"; fail=1; }
printf 'name = "one"\ndataset = "synthetic"\nexamples = 10\n[[models]]\nname = "m"\ncheckpoint = "%s"\n[[attacks]]\nname = "fgsm"\neps = [0.1]\n' \
  "$tmp/m.ckpt" >"$tmp/one.toml"
expect 0 "a matrix run" -- "$bin" run "$tmp/one.toml" --out "$tmp/matrix.h5" --report - --threads 1 --quiet
cp "$tmp/matrix.h5" "$tmp/matrix.keep"
expect 2 "attack refuses to overwrite a matrix's results" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic \
  --attack fgsm --eps 0.1 --examples 10 --threads 1 --out "$tmp/matrix.h5"
contains err "holds the results of matrix 'one'" "the refusal names the matrix"
cmp -s "$tmp/matrix.h5" "$tmp/matrix.keep" && echo "ok: the matrix's results are intact" || { echo "FAIL: the matrix's results changed"; fail=1; }
expect 0 "merge reads an attack's results" -- "$bin" merge "$tmp/pgd.h5" "$tmp/pgd-copy.h5" --out "$tmp/merged.h5"
contains out "2 cells" "merging an attack's results with a copy keeps its two cells"
cp "$tmp/pgd.h5" "$tmp/pgd.keep"
expect 2 "unknown attack" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack pdg --eps 0.1 --out "$tmp/pgd.h5"
contains err "did you mean 'pgd'" "unknown attack suggests pgd"
expect 2 "bad eps" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --eps 8/0 --out "$tmp/pgd.h5"
expect 2 "missing eps" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic
expect 2 "pgd with eps inf" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack pgd --eps inf --out "$tmp/pgd.h5"
expect 2 "option the attack lacks" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack fgsm --steps 3 --eps 0.1
if cmp -s "$tmp/pgd.h5" "$tmp/pgd.keep"; then echo "ok: failed attacks leave the HDF5 file intact"; else echo "FAIL: HDF5 file changed"; fail=1; fi
expect 0 "cw unbounded" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack cw --norm l2 --eps inf \
  --steps 20 --binary-search-steps 2 --examples 20 --threads 1

# --dry-run checks everything, prints the plan and writes nothing.
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
mkdir "$tmp/dry" && cd "$tmp/dry"
sed 's/name = "one"/name = "dry"/' "$tmp/one.toml" >dry.toml
expect 0 "train --dry-run" -- "$bin" train --dataset synthetic --family sfnn --epochs 3 --out d.ckpt --dry-run
contains out "epochs: 3;" "train --dry-run prints the epochs"
expect 0 "attack --dry-run" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack fgsm,pgd --eps 0.1,0.2 \
  --steps 1000 --out d.h5 --dry-run
contains out "estimated work:" "attack --dry-run prints the estimated work"
contains out "model.linf-0.2.untargeted: fgsm -> pgd" "and the cascade jobs"
expect 0 "run --dry-run" -- "$bin" run dry.toml --dry-run
contains out "dry run: 1 cells in 1 cascade jobs would run; it would write results/dry.h5 and results/dry.md" "run --dry-run says what it would write"
expect 0 "eval --dry-run" -- "$bin" eval --model "$tmp/m.ckpt" --dataset synthetic --dry-run
if [ -z "$(ls -A | grep -v '^dry.toml$')" ]; then echo "ok: the dry runs wrote nothing"; else echo "FAIL: a dry run wrote $(ls -A)"; fail=1; fi
expect 2 "attack --dry-run still checks the options" -- "$bin" attack --model "$tmp/m.ckpt" --dataset synthetic --attack fgsm --steps 3 --eps 0.1 --dry-run
sed "s|$tmp/m.ckpt|$tmp/missing.ckpt|" dry.toml >missing.toml
expect 1 "run --dry-run checks the model files" -- "$bin" run missing.toml --dry-run
contains err "missing.ckpt does not exist" "and names the missing one"
cd - >/dev/null

if [ $fail = 0 ]; then echo "cli_smoke: all passed"; else echo "cli_smoke: FAILED"; fi
exit $fail
