#!/usr/bin/env bash
# Sound by default (docs/EVALUATION.md): a plain `imbench run`, no --audit,
# on the small synthetic models of tests/fixtures/engine. An unbounded CW on
# the stochastic SFNN leaves most examples "robust" (its minimum-norm points
# sit on the decision boundary, which fresh noise undoes): check 10's
# unbounded-cell flag must fire and the report's first lines must say so,
# while the same attack on DET breaks every example and stays unflagged. The
# stochastic model's bounded white-box cell gets the two probes (EOT
# doubled, noise frozen). --fail-on-unreliable turns a flag into exit 3 for
# run, report and attack; eval runs the per-model checks. attack sweeps a
# list of eps and cascades a list of attacks. The published
# reports/table1-mnist.md must be what imbench report makes of its .h5.
# Usage: cli_soundness.sh IMBENCH SOURCE_DIR
set -u
bin=$1
src=$2
py=${IMBENCH_PYTHON:-/usr/bin/python3}
fixture=$src/tests/fixtures/engine
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
source "$src/tests/cli_lib.sh"

cat >m.toml <<TOML
name = "soundness"
dataset = "synthetic"
examples = 60
seed = 2
batch_size = 30
eot = 2
repeats = 3
probe_examples = 20

[[models]]
name = "det"
checkpoint = "$fixture/det.ckpt"

[[models]]
name = "sfnn"
checkpoint = "$fixture/sfnn.ckpt"

[[attacks]]
name = "pgd"
eps = [0.1]
options = { steps = 10 }

[[attacks]]
name = "cw"
norm = "l2"
eps = ["inf"]
options = { steps = 50, binary_search_steps = 4, initial_const = 1.0, learning_rate = 0.1 }
TOML

expect 0 "a default run exits 0 without --fail-on-unreliable" -- "$bin" run m.toml --out s.h5 --report s.md --threads 2 --quiet
contains out "soundness: ⚠" "the run's last line says results were flagged"
"$py" "$src/tests/h5_results.py" flags s.h5 >flags.txt
contains flags.txt "sfnn.cw.l2-inf 10 unbounded-cell FLAGGED" "unbounded CW on the stochastic model is flagged without --audit"
contains flags.txt "det.cw.l2-inf 10 unbounded-cell ok" "unbounded CW that broke every DET example is not"
contains flags.txt "sfnn.pgd.linf-0.1 2 eot-doubling" "the stochastic model's PGD cell got the EOT-doubling probe"
contains flags.txt "sfnn.pgd.linf-0.1 3 fixed-noise-control" "and the fixed-noise probe"
contains flags.txt "sfnn.pgd.linf-0.1 9 black-box-vs-white-box" "and the black-box (Square) probe"
if grep -q "^det.pgd.linf-0.1 [23] " flags.txt; then echo "FAIL: the deterministic model got stochastic probes"; fail=1; else echo "ok: no probes on the deterministic model"; fi
head -6 s.md >first-lines.md
contains first-lines.md "Some results cannot be trusted" "the report opens with the verdict"
contains first-lines.md "Unbounded attacks that left examples robust" "and names the reason in words"
contains first-lines.md '`sfnn` cw at L2 inf' "and the flagged result"

expect 3 "run --fail-on-unreliable exits 3 on a flagged result" -- "$bin" run m.toml --out s.h5 --report - --threads 2 --quiet --fail-on-unreliable
expect 3 "report --fail-on-unreliable exits 3 on the same file" -- "$bin" report s.h5 --fail-on-unreliable
expect 0 "report without it exits 0" -- "$bin" report s.h5

contains flags.txt "sfnn.pgd.linf-0.1 2 eot-doubling ok" "the EOT-doubling probe is silent on a sound cell"
contains flags.txt "sfnn.pgd.linf-0.1 3 fixed-noise-control ok" "so is the fixed-noise probe"

# DET under bounded PGD alone: nothing fires, so exit 0 even with --fail-on-unreliable.
sed -e '/^\[\[models\]\]$/,$d' m.toml >bounded.toml
cat >>bounded.toml <<TOML
[[models]]
name = "det"
checkpoint = "$fixture/det.ckpt"

[[attacks]]
name = "pgd"
eps = [0.1]
options = { steps = 10 }
TOML
expect 0 "a sound matrix: no flag, exit 0 with --fail-on-unreliable" -- "$bin" run bounded.toml --out b.h5 --report b.md --threads 2 --quiet --fail-on-unreliable
contains b.md "Every soundness check passed" "its report opens by saying so"

expect 0 "eval runs the per-model checks" -- "$bin" eval --model "$fixture/sfnn.ckpt" --dataset synthetic --examples 50 --threads 2 --fail-on-unreliable
contains out "soundness: every model check passed" "and prints their verdict"
expect 3 "attack --fail-on-unreliable: unbounded CW on the stochastic model" -- "$bin" attack --model "$fixture/sfnn.ckpt" --dataset synthetic --examples 30 --attack cw --norm l2 --eps inf --steps 30 --binary-search-steps 4 --initial-const 1 --learning-rate 0.1 --eot-samples 2 --repeats 3 --threads 2 --fail-on-unreliable
contains out "unbounded-cell" "attack prints the check that fired"

# Sweeps in one call: attack with a list of eps and a list of attacks is a one-model matrix (a cascade).
expect 0 "attack sweeps eps and cascades attacks" -- "$bin" attack --model "$fixture/sfnn.ckpt" --dataset synthetic --examples 30 --attack fgsm,pgd --eps 0.05,0.1 --steps 5 --eot-samples 2 --repeats 3 --threads 2 --out sweep.h5
contains out "cascade: fgsm -> pgd" "it says the attacks run as a cascade"
"$py" "$src/tests/h5_results.py" summary sweep.h5 >sweep.txt
for id in model.fgsm.linf-0.05 model.pgd.linf-0.05 model.fgsm.linf-0.1 model.pgd.linf-0.1; do
  contains sweep.txt "$id " "the sweep holds cell $id"
done
expect 0 "report reads the sweep" -- "$bin" report sweep.h5 --out sweep.md
contains sweep.md "worst case" "with the worst case per eps"
expect 2 "a repeated eps is refused" -- "$bin" attack --model "$fixture/sfnn.ckpt" --dataset synthetic --eps 0.1,0.1
contains err "listed twice" "and says so"
expect 2 "a flag no listed attack takes is refused" -- "$bin" attack --model "$fixture/sfnn.ckpt" --dataset synthetic --attack fgsm,pgd --eps 0.1 --binary-search-steps 3
contains err "does not apply to attacks 'fgsm,pgd'" "naming the attacks"

# One table for pandas: export, then the snippet of docs/results-h5.md as written.
expect 0 "export writes a tidy CSV" -- "$bin" export sweep.h5 --out results.csv
contains out "export: results.csv (360 rows, 4 cells)" "a row per cell x example x repeat (4 x 30 x 3)"
sed -n '/<!-- pandas-snippet/,/^```$/p' "$src/docs/results-h5.md" | sed '1,2d;$d' >snippet.py
expect 0 "the documented pandas snippet runs on it" -- "$py" snippet.py
contains out "adversarial_correct" "and prints robust accuracy per model, attack and eps"
expect 2 "export refuses an unknown format" -- "$bin" export sweep.h5 --format parquet

# Version 2 of the results schema: predictions per repeat, the adversarial
# examples on request, integers as int64 and strings as str. eps = 0 pins
# x_adv to the clean image (projection onto the 0-ball), so that cell's saved
# examples are the split's clean images, against which the eps = 0.3 cells'
# examples are checked. fgsm,pgd is a cascade: pgd attacks the survivors only.
expect 2 "--save-adversarial needs --out" -- "$bin" attack --model "$fixture/sfnn.ckpt" --dataset synthetic --limit 5 --eps 0.1 --save-adversarial
contains err "--save-adversarial" "and says so"
expect 0 "attack --save-adversarial writes the adversarial examples" -- "$bin" attack --model "$fixture/sfnn.ckpt" --dataset synthetic --limit 30 --attack fgsm,pgd --eps 0,0.3 --steps 5 --eot 2 --repeats 3 --threads 2 --save-adversarial --out a.h5
cat >check_v2.py <<'PY'
import json, sys
import h5py
import numpy as np

problems = []
def want(ok, what):
    if not ok:
        problems.append(what)

def strings_are_str(obj, where):
    for k, v in obj.attrs.items():
        want(not isinstance(v, (bytes, np.bytes_)), f"{where}@{k} reads as bytes")
        if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
            want(all(isinstance(x, str) for x in v.ravel()), f"{where}@{k} holds bytes")

with h5py.File("a.h5", "r") as f:
    a = f.attrs
    want(a["schema_version"] == 2 and isinstance(a["schema_version"], np.integer), "schema_version is int 2")
    for k in ("seed", "examples", "threads", "num_classes"):
        want(isinstance(a[k], np.integer) and a[k].dtype == np.int64, f"root {k} is int64: {type(a[k])}")
    n = int(a["examples"])
    want(n == 30, f"examples {n}")
    strings_are_str(f, "/")
    for name, g in f["models"].items():
        strings_are_str(g, "models/" + name)
    cells = {cid: g for cid, g in f["cells"].items()}
    want(set(cells) == {"model.fgsm.linf-0", "model.pgd.linf-0", "model.fgsm.linf-0.3", "model.pgd.linf-0.3"}, f"cells {sorted(cells)}")
    clean = cells["model.fgsm.linf-0"]["adversarial"][:]
    want(clean.shape == (n, 1, 28, 28), f"eps 0 examples {clean.shape}")
    for cid, g in cells.items():
        strings_are_str(g, cid)
        for k in ("repeats", "eot_samples", "attacked_examples", "order", "cascade_position", "unreliable"):
            want(isinstance(g.attrs[k], np.integer), f"{cid}@{k} is an integer: {type(g.attrs[k])}")
        r = int(g.attrs["repeats"])
        want(r == 3, f"{cid} repeats {r}")
        index, label = g["index"][:], g["label"][:]
        attacked = g["attacked"][:].astype(bool)
        x = g["adversarial"]
        m = int(attacked.sum())
        want(x.dtype == np.float32 and x.shape == (m, 1, 28, 28), f"{cid} adversarial {x.dtype} {x.shape}, {m} attacked")
        want(x.compression == "gzip" and x.chunks is not None, f"{cid} adversarial is deflate-compressed in chunks")
        rows = g["adversarial_index"][:]
        want(rows.dtype == np.int64 and np.array_equal(rows, index[attacked]), f"{cid} adversarial_index")
        want(((rows >= 0) & (rows < n)).all(), f"{cid} indices in the split")
        x = x[:]
        eps = float(g.attrs["eps"])
        d = np.abs(x - clean[rows]).reshape(m, -1).max(axis=1) if m else np.zeros(0)
        want((d <= eps + 1e-6).all(), f"{cid} inside the eps ball: max {d.max() if m else 0}")
        want(np.allclose(d, g["linf"][:][attacked], atol=1e-6), f"{cid} linf matches the saved examples")
        want(((x >= 0) & (x <= 1)).all(), f"{cid} inside the box")
        cp, ap = g["clean_prediction"][:], g["adversarial_prediction"][:]
        want(cp.shape == (r, n) and ap.shape == (r, n) and cp.dtype == np.int64 and ap.dtype == np.int64, f"{cid} prediction shapes {cp.shape} {ap.shape}")
        want(np.array_equal(cp == label, g["clean_correct"][:].astype(bool)), f"{cid} clean_prediction matches clean_correct")
        adv = g["adversarial_correct"][:].astype(bool)
        own = ap == label
        if int(g.attrs["cascade_position"]) == 0:
            want(attacked.all() and np.array_equal(own, adv), f"{cid} first cell: prediction == label <-> adversarial_correct")
        else:
            want((ap[:, ~attacked] == -1).all(), f"{cid} -1 where the cascade skipped the example")
            want((ap[:, attacked] >= 0).all(), f"{cid} a class where it ran")
            want(not adv[:, ~attacked].any(), f"{cid} skipped examples were wrong")
            want(np.array_equal(adv[:, attacked], adv[:, attacked] & own[:, attacked]), f"{cid} cumulative correctness implies its own")
    zero = cells["model.pgd.linf-0"]
    want(np.array_equal(zero["adversarial"][:], clean[zero["adversarial_index"][:]]), "eps 0: x_adv is the clean image")
for p in problems:
    print("problem:", p)
print("checked", "FAILED" if problems else "ok")
sys.exit(1 if problems else 0)
PY
expect 0 "h5py: predictions [R, N], adversarial examples [M, 1, 28, 28] float32 in the eps ball, ints and strs" -- "$py" check_v2.py
sed -n '/<!-- h5py-adversarial-snippet/,/^```$/p' "$src/docs/results-h5.md" | sed '1,2d;$d' >adv_snippet.py
expect 0 "the documented h5py snippet loads the adversarial examples" -- "$py" adv_snippet.py
contains out ", 1, 28, 28)" "and prints their shape"
expect 0 "export writes the prediction columns" -- "$bin" export a.h5 --out a.csv
"$py" - <<'PY' >export_check.txt 2>&1
import pandas as pd
df = pd.read_csv("a.csv")
first = df[df.cell == "model.fgsm.linf-0.3"]
ok = (first.adversarial_prediction == first.label).astype(int).equals(first.adversarial_correct) and (first.clean_prediction == first.label).astype(int).equals(first.clean_correct)
print("export predictions", "agree" if ok else "disagree")
PY
contains export_check.txt "export predictions agree" "the exported predictions agree with the correctness columns"
expect 0 "export of a version-1 file has empty prediction columns" -- "$bin" export "$src/reports/table1-mnist.h5" --out v1.csv
head -2 v1.csv >v1-head.csv
contains v1-head.csv ",clean_correct,adversarial_correct,clean_prediction,adversarial_prediction," "with the new columns in the header"
if awk -F, 'NR == 2 { exit !($19 == "" && $20 == "") }' v1.csv; then echo "ok: and empty predictions"; else echo "FAIL: a version-1 file exported predictions: $(sed -n 2p v1.csv)"; fail=1; fi

# Numbers in --help as people write them (0.05, not 0.050000000000000003).
for cmd in train eval attack run report export merge compare info; do
  "$bin" $cmd --help >help.txt 2>&1
  if grep -qE "=-?[0-9]+\.[0-9]{7,}" help.txt; then
    echo "FAIL: imbench $cmd --help prints a default with binary noise: $(grep -oE "=-?[0-9]+\.[0-9]{7,}" help.txt | head -1)"; fail=1
  fi
done
echo "ok: help texts print defaults as written"

# The published robustness report is what `imbench report` makes of its results file today.
mkdir -p published
expect 0 "reports/table1-mnist.md regenerates from reports/table1-mnist.h5" -- "$bin" report "$src/reports/table1-mnist.h5" --out published/table1-mnist.md
if cmp -s published/table1-mnist.md "$src/reports/table1-mnist.md"; then
  echo "ok: the published report is up to date"
else
  echo "FAIL: reports/table1-mnist.md differs from what imbench report writes (run: imbench report reports/table1-mnist.h5 --out reports/table1-mnist.md)"
  diff published/table1-mnist.md "$src/reports/table1-mnist.md" | head -10 | sed 's/^/  | /'
  fail=1
fi
exit $fail
