#!/usr/bin/env bash
# A test set of your own: the first 100 MNIST test images written by numpy
# and h5py as .npz (savez and savez_compressed), .h5 and a .npy pair give,
# through `imbench eval`, `attack` and `run`, the same numbers as
# `--dataset mnist --examples 100`; a checkpoint trained on MNIST warns once
# when evaluated on a file or on another registered dataset; bad files exit
# non-zero with one line. Skipped (exit 77) without MNIST (both splits) or numpy/h5py.
# Usage: cli_own_data.sh IMBENCH SOURCE_DIR
set -u
bin=$1
src=$2
py=${IMBENCH_PYTHON:-/usr/bin/python3}  # Debian's python3 has numpy and h5py; a pyenv python3 may not
data=${IMBENCH_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/imbench}
for split in t10k train; do  # the test trains on the train split and evaluates on the test split
  if [ ! -f "$data/mnist/$split-images-idx3-ubyte" ] && [ ! -f "$data/mnist/$split-images-idx3-ubyte.gz" ]; then
    echo "SKIP: MNIST's $split split not found in $data/mnist (run 'imbench data fetch')"; exit 77
  fi
done
if ! "$py" -c "import numpy, h5py" 2>/dev/null; then echo "SKIP: $py lacks numpy or h5py"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
source "$src/tests/cli_lib.sh"
cd "$tmp" || exit 1

one_line() {  # one_line DESCRIPTION: the last command's stderr is one "imbench: error:" line
  if [ "$(wc -l <err)" = 1 ] && grep -q '^imbench: error: ' err; then echo "ok: $1: one line"; else
    echo "FAIL: $1: stderr is not one error line"; sed 's/^/  | /' err | head -5; fail=1; fi
}
bad() {  # bad CODE DESCRIPTION TEXT -- command...: exits CODE, one line on stderr containing TEXT
  local code=$1 what=$2 text=$3; shift 4
  expect "$code" "$what" -- "$@"
  one_line "$what"
  contains err "$text" "$what: names $text"
}

"$py" - "$data/mnist" <<'EOF' || { echo "FAIL: writing the fixtures"; exit 1; }
import gzip, os, sys
import h5py, numpy as np
d = sys.argv[1]
def idx(name):
    p = os.path.join(d, name)
    raw = open(p, "rb").read() if os.path.exists(p) else gzip.open(p + ".gz").read()
    return np.frombuffer(raw, np.uint8, offset=16 if "images" in name else 8)
x = idx("t10k-images-idx3-ubyte").reshape(-1, 28, 28)[:100].copy()
y = idx("t10k-labels-idx1-ubyte")[:100].copy()
np.savez("own.npz", x=x, y=y)                                            # stored, uint8 [N, H, W]
xf = (x.astype(np.float32) / np.float32(255)).reshape(100, 1, 28, 28)
np.savez_compressed("named.npz", images=xf, labels=y.astype(np.int32))   # deflate, float32 [N, C, H, W]
with h5py.File("own.h5", "w") as f:                                      # float64, int64 labels, num_classes
    f["x"] = x.astype(np.float64) / 255.0
    f["y"] = y.astype(np.int64)
    f["y"].attrs["num_classes"] = 10
np.save("x.npy", xf.reshape(100, 28, 28))
np.save("y.npy", y.astype(np.int64))
# Bad files.
raw = open("x.npy", "rb").read()
open("cut.npy", "wb").write(raw[:-100])
xn = xf.copy(); xn[7, 0, 3, 3] = np.nan
np.savez("nan.npz", x=xn, y=y)
np.savez("box.npz", x=xf * 2, y=y)
yl = y.astype(np.int64).copy(); yl[5] = 10
np.savez("label.npz", x=x, y=yl)
np.savez("short.npz", x=x, y=y[:99])
np.save("fortran.npy", np.asfortranarray(xf.reshape(100, 28, 28)))
np.save("y1.npy", y.astype(np.float32))
os.mkdir("folder.npz")
EOF

# A small DET trained on MNIST (one epoch), recording dataset = mnist.
expect 0 "train a small DET on MNIST" -- "$bin" train --dataset mnist --epochs 1 --hidden 32 --quiet --threads 2 \
  --out m.ckpt

# eval: the accuracy row (without images/s) on each file equals the one on mnist --examples 100.
row() { grep '^| argmax of logits' out | cut -d'|' -f2-6; }
expect 0 "eval on mnist --examples 100" -- "$bin" eval --model m.ckpt --dataset mnist --examples 100 --threads 2
want=$(row)
[ "$(grep -c warning err)" = 0 ] && echo "ok: no warning on the training dataset" || { echo "FAIL: warning on mnist"; fail=1; }
for spec in own.npz named.npz:images,labels own.h5 x.npy,y.npy; do
  expect 0 "eval on $spec" -- "$bin" eval --model m.ckpt --dataset "$spec" --threads 2
  if [ -n "$want" ] && [ "$(row)" = "$want" ]; then echo "ok: $spec: same accuracy as mnist --examples 100 ($want)"; else
    echo "FAIL: $spec: '$(row)' != '$want'"; fail=1; fi
  contains out "file: $spec: images" "$spec: the file line"
  [ "$(wc -l <err)" = 1 ] && echo "ok: $spec: one warning line" || { echo "FAIL: $spec: stderr"; cat err; fail=1; }
  contains err "warning: --model m.ckpt was trained on mnist; evaluating it on your file $spec" "$spec: warning names both"
  [ "$spec" = own.h5 ] && contains out "10 classes (num_classes attribute)" "the h5 file's num_classes attribute"
done
expect 0 "eval on another registered dataset" -- "$bin" eval --model m.ckpt --dataset synthetic --examples 20 --threads 2
contains err "warning: --model m.ckpt was trained on mnist but is evaluated on synthetic" "registry mismatch warns"
if "$bin" eval --model m.ckpt --dataset fashion-mnist --examples 20 --threads 2 >out 2>err; then
  contains err "warning: --model m.ckpt was trained on mnist but is evaluated on fashion-mnist" "mnist vs fashion-mnist warns"
  [ "$(wc -l <err)" = 1 ] && echo "ok: one warning line" || { echo "FAIL: stderr"; cat err; fail=1; }
else
  echo "skip: fashion-mnist is not installed"
fi

# attack --out: the same table (all but images/s) on the file as on mnist --examples 100.
table() { grep '^| ' out | grep -v -- '---' | awk -F'|' '{ s = ""; for (i = 2; i < NF - 1; ++i) s = s "|" $i; print s }'; }
expect 0 "attack on mnist --examples 100" -- "$bin" attack --model m.ckpt --dataset mnist --examples 100 --attack fgsm \
  --eps 0.1 --threads 2 --out mnist-attack.h5
want_attack=$(table)
expect 0 "attack on own.npz --out" -- "$bin" attack --model m.ckpt --dataset own.npz --attack fgsm --eps 0.1 \
  --threads 2 --out own-attack.h5
if [ -n "$want_attack" ] && [ "$(table)" = "$want_attack" ]; then echo "ok: attack: same numbers as mnist --examples 100"; else
  echo "FAIL: attack tables differ:"; echo "$want_attack"; table; fail=1; fi
contains err "evaluating it on your file own.npz" "attack warns"
expect 0 "h5py reads the attack's file" -- "$py" -c "import h5py; print(h5py.File('own-attack.h5')['/'].attrs['dataset'])"
contains out "own.npz test: first 100 of 100" "the results file names the file"

# run: a matrix with dataset = "<file>" against the same matrix on mnist.
matrix() {  # matrix NAME DATASET [EXTRA]
  printf 'name = "%s"\ndataset = "%s"\nexamples = 100\n%s\n[[models]]\nname = "det"\ncheckpoint = "m.ckpt"\n[[attacks]]\nname = "fgsm"\neps = [0.1]\n' \
    "$1" "$2" "${3:-}" > "$1.toml"
}
clean() { grep -o 'clean accuracy [0-9.]*%' out; }
matrix on-mnist mnist
expect 0 "run on mnist" -- "$bin" run on-mnist.toml --out on-mnist.h5 --report - --threads 2 --quiet
want_run=$(clean)
matrix on-file "$tmp/own.h5"
expect 0 "run with dataset = \"<file>\"" -- "$bin" run on-file.toml --out on-file.h5 --report on-file.md --threads 2 --quiet
if [ -n "$want_run" ] && [ "$(clean)" = "$want_run" ]; then echo "ok: run: $want_run as on mnist"; else
  echo "FAIL: run: '$(clean)' != '$want_run'"; fail=1; fi
contains err "warning: model 'det' was trained on mnist; evaluating it on your file $tmp/own.h5" "run warns per model"
expect 0 "same robust accuracy" -- "$py" -c "
import h5py, sys
a, b = h5py.File('on-mnist.h5'), h5py.File('on-file.h5')
def robust(f): return [f['cells'][c].attrs['robust_accuracy'] for c in sorted(f['cells'])]
print(robust(a), robust(b)); sys.exit(robust(a) != robust(b))"

# Bad input: exit non-zero with one line naming the file.
bad 1 "truncated .npy" "cut.npy: truncated" -- "$bin" eval --model m.ckpt --dataset cut.npy,y.npy
bad 1 "NaN" "nan.npz: array x: image 7 holds NaN" -- "$bin" eval --model m.ckpt --dataset nan.npz
bad 2 "out of the box" "the images of box.npz span [0, 2]" -- "$bin" eval --model m.ckpt --dataset box.npz
bad 2 "label beyond the model's classes" "label.npz has labels up to 10" -- "$bin" attack --model m.ckpt \
  --dataset label.npz --attack fgsm --eps 0.1
bad 1 "mismatched N" "holds 100 images but short.npz: array y holds 99 labels" -- "$bin" eval --model m.ckpt \
  --dataset short.npz
bad 1 "Fortran order" "fortran.npy: Fortran-ordered" -- "$bin" eval --model m.ckpt --dataset fortran.npy,y.npy
bad 1 "float labels" "y1.npy: labels of type float32" -- "$bin" eval --model m.ckpt --dataset x.npy,y1.npy
bad 1 "unknown array name" "no array 'images' (the archive holds: x, y)" -- "$bin" eval --model m.ckpt \
  --dataset own.npz:images,labels
bad 1 "unknown HDF5 dataset" "no dataset 'img' (the file holds: x, y)" -- "$bin" eval --model m.ckpt --dataset own.h5:img,y
bad 1 "a directory" "folder.npz: is a directory" -- "$bin" eval --model m.ckpt --dataset folder.npz
bad 1 "a missing file" "none.h5: no such file" -- "$bin" eval --model m.ckpt --dataset none.h5
bad 2 "one .npy file" "X.npy,Y.npy" -- "$bin" eval --model m.ckpt --dataset x.npy
bad 2 "--split train of a file" "--split train" -- "$bin" eval --model m.ckpt --dataset own.npz --split train
bad 2 "train on a file" "trains on registered datasets only" -- "$bin" train --dataset own.npz
matrix split "$tmp/own.npz" 'split = "train"'
bad 2 "matrix: split = train of a file" "split.toml:" -- "$bin" run split.toml --out split.h5
matrix one "x.npy"
bad 2 "matrix: one .npy file" "one.toml:2: dataset" -- "$bin" run one.toml --out one.h5
printf 'name = "untrained"\ndataset = "own.npz"\nexamples = 10\n[[models]]\nname = "det"\nfamily = "det"\ncheckpoint = "none.ckpt"\n[[attacks]]\nname = "fgsm"\neps = [0.1]\n' >untrained.toml
bad 1 "matrix: a missing checkpoint is not trained on a file" "cannot be trained here" -- "$bin" run untrained.toml \
  --out untrained.h5
exit $fail
