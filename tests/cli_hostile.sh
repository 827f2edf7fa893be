#!/usr/bin/env bash
# Hostile inputs end to end (issue 15, items 2 and 5): non-regular and
# oversized files, checkpoints whose header (checksum recomputed) asks for a
# huge model or an unknown format version, numbers out of their documented
# ranges, empty and too-short model files, a corrupted checksum trailer, and
# --out over a file of another kind. Each gives one clear line and the right
# exit code, quickly. Usage: cli_hostile.sh IMBENCH
set -u
bin=$(realpath "$1")
lib="$(dirname "$(realpath "${BASH_SOURCE[0]}")")/cli_lib.sh"
py=${IMBENCH_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
source "$lib"
one_line() {  # one_line DESCRIPTION: stderr of the last expect is one line
  if [ "$(wc -l <"$tmp/err")" = 1 ]; then echo "ok: $1"; else echo "FAIL: $1: $(wc -l <"$tmp/err") lines"; sed 's/^/  | /' "$tmp/err" | head -5; fail=1; fi
}

# A tiny model to attack and to doctor.
expect 0 "train a tiny model" -- "$bin" train --dataset synthetic --epochs 1 --hidden 16 --quiet --threads 1 --out m.ckpt

# Non-regular files: a device that never ends, a directory.
mkdir dir
expect 1 "info /dev/zero" -- timeout 20 "$bin" info /dev/zero
contains err "/dev/zero: not a regular file" "info /dev/zero says it is not a regular file"
one_line "info /dev/zero is one line"
expect 1 "run /dev/zero" -- timeout 20 "$bin" run /dev/zero
contains err "/dev/zero: not a regular file (a device, FIFO or socket), expected a matrix file" "run /dev/zero names the file"
expect 1 "run DIR" -- timeout 20 "$bin" run dir
contains err "dir: is a directory, expected a matrix file" "run DIR says it is a directory"
expect 1 "eval --model DIR" -- timeout 20 "$bin" eval --model dir --dataset synthetic
contains err "dir: is a directory" "eval --model DIR says it is a directory"
expect 1 "eval --model /dev/zero" -- timeout 20 "$bin" eval --model /dev/zero --dataset synthetic
contains err "/dev/zero: not a regular file" "a device as --model is refused before reading"
head -c 2000000 /dev/zero | tr '\0' '#' >big.toml
expect 1 "a 2 MB matrix file" -- timeout 20 "$bin" run big.toml
contains err "big.toml: 1.91 MiB is larger than a matrix file (TOML) may be (1 MiB)" "an oversized matrix is refused before parsing"

# Empty and too-short model files.
: >empty.ckpt
head -c 10 /dev/urandom >ten.ckpt
expect 1 "eval an empty file" -- "$bin" eval --model empty.ckpt --dataset synthetic
contains err "empty.ckpt: the file is empty, not an imbench checkpoint or TorchScript file" "an empty model file says it is empty"
expect 1 "info an empty file" -- "$bin" info empty.ckpt
contains err "empty.ckpt: the file is empty" "info of an empty file says it is empty"
expect 1 "eval a 10-byte file" -- "$bin" eval --model ten.ckpt --dataset synthetic
contains err "ten.ckpt: 10 bytes, too short to be an imbench checkpoint or TorchScript file" "a 10-byte file says it is too short"

# Checkpoint headers doctored with the checksum recomputed.
cat >doctor.py <<'PY'
import hashlib, json, sys
src, dst, patch = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
data = open(src, "rb").read()
magic, meta_head, rest = data.split(b"\n", 2)
n = int(meta_head.split()[1])
meta = json.loads(rest[:n])
w_head, w_rest = rest[n + 1:].split(b"\n", 1)
wn = int(w_head.split()[1])
for path, v in patch.items():
    d = meta
    *keys, last = path.split(".")
    for k in keys:
        d = d[k]
    d[last] = v
text = json.dumps(meta, indent=2).encode()
body = magic + b"\nmeta %d\n" % len(text) + text + b"\nweights %d\n" % wn + w_rest[:wn] + b"\n"
open(dst, "wb").write(body + b"sha256 " + hashlib.sha256(body).hexdigest().encode() + b"\n")
PY
"$py" doctor.py m.ckpt wide.ckpt '{"spec.hidden": [100000]}'
"$py" doctor.py m.ckpt wide2.ckpt '{"spec.hidden": [60000, 60000]}'
"$py" doctor.py m.ckpt classes.ckpt '{"spec.num_classes": 1000000000}'
"$py" doctor.py m.ckpt classes2.ckpt '{"spec.num_classes": 50000}'
"$py" doctor.py m.ckpt v99.ckpt '{"format_version": 99}'
"$py" doctor.py m.ckpt same.ckpt '{}'
expect 0 "the doctoring itself keeps a good checkpoint good" -- "$bin" info same.ckpt
expect 1 "hidden width 100000" -- timeout 20 "$bin" info wide.ckpt
contains err "wide.ckpt: the recorded architecture is invalid: model spec: hidden width 100000 must be in [1, 65536]" "a huge hidden width is refused by name"
one_line "a huge hidden width is one line"
expect 1 "hidden widths within the bound but too large for the weights" -- timeout 20 "$bin" eval --model wide2.ckpt --dataset synthetic
contains err "wide2.ckpt: the recorded architecture 784-60000-60000-10 needs at least" "the architecture is checked against the weight section"
one_line "the weight-section check is one line"
expect 1 "a billion classes" -- timeout 20 "$bin" eval --model classes.ckpt --dataset synthetic
contains err "classes.ckpt: the recorded architecture is invalid: model spec: 1000000000 classes (need 2 to 100000)" "a huge class count is refused"
expect 1 "50000 classes, more than the weights hold" -- timeout 20 "$bin" eval --model classes2.ckpt --dataset synthetic
contains err "classes2.ckpt: the recorded architecture 784-16-50000 needs at least" "a class count is checked against the weights"
expect 1 "format_version 99" -- "$bin" info v99.ckpt
contains err "v99.ckpt: checkpoint metadata format_version 99 is not supported (this imbench reads version 1)" "an unknown format_version is refused"

# A flipped byte in the SHA-256 trailer: both full digests, which differ.
"$py" - <<'PY'
d = bytearray(open("m.ckpt", "rb").read())
i = len(d) - 5  # inside the hex digest, past any 16-hex prefix
d[i] = ord("0") if d[i] != ord("0") else ord("1")
open("trailer.ckpt", "wb").write(d)
PY
expect 1 "a flipped byte in the checksum trailer" -- "$bin" info trailer.ckpt
"$py" - "$tmp/err" <<'PY' >digests.txt
import re, sys
m = re.search(r"recorded ([0-9a-f]+), computed ([0-9a-f]+)", open(sys.argv[1]).read())
print("digests differ" if m and len(m.group(1)) == 64 and m.group(1) != m.group(2) else "same or short")
PY
contains digests.txt "digests differ" "the mismatch prints both full digests, and they differ"

# Ranges of numeric options (documented in --help and attack --list).
attack=("$bin" attack --model m.ckpt --dataset synthetic --examples 10 --threads 1 --attack pgd --norm linf)
expect 2 "--threads 1000" -- "$bin" train --dataset synthetic --epochs 1 --threads 1000 --out t.ckpt
contains err "--threads must be in [0, " "--threads is bounded by the cores"
expect 2 "--seed -1 (train)" -- "$bin" train --dataset synthetic --epochs 1 --seed -1 --out t.ckpt
contains err "--seed must be >= 0, got -1" "a negative training seed is refused"
expect 2 "--seed -1 (attack)" -- "${attack[@]}" --eps 0.1 --seed -1
contains err "--seed must be in [0, 2^63), got -1" "a negative master seed is refused, not wrapped"
expect 2 "--steps 1000000000" -- "${attack[@]}" --eps 0.1 --steps 1000000000
contains err "pgd: --steps must be in [1, 100000] (IMBENCH_ALLOW_LARGE_BUDGET=1 allows up to 2147483647), got 1000000000" "--steps has a cap and says how to raise it"
expect 2 "--restarts 2000000000" -- "${attack[@]}" --eps 0.1 --restarts 2000000000
contains err "pgd: --restarts must be in [1, 1000]" "--restarts has a cap"
expect 2 "--steps 0 keeps its old message" -- "${attack[@]}" --eps 0.1 --steps 0
contains err "pgd: --steps must be >= 1, got 0" "a value below the range says >= 1"
expect 2 "--queries beyond the cap" -- "$bin" attack --model m.ckpt --dataset synthetic --examples 10 --attack square --norm linf --eps 0.1 --queries 2000000
contains err "square: --queries must be in [1, 1000000]" "--queries has a cap"
expect 2 "--binary-search-steps beyond the cap" -- "$bin" attack --model m.ckpt --dataset synthetic --examples 10 --attack cw --norm l2 --eps 1 --binary-search-steps 1000
contains err "cw: --binary-search-steps must be in [1, 100]" "--binary-search-steps has a cap"
expect 0 "IMBENCH_ALLOW_LARGE_BUDGET=1 lifts a cap" -- env IMBENCH_ALLOW_LARGE_BUDGET=1 "${attack[@]}" --eps 0.1 --steps 100001 --dry-run
expect 2 "--eps 1e39" -- "${attack[@]}" --eps 1e39
contains err "--eps 1e+39 is larger than the input range 1 (inputs in [0, 1])" "--eps beyond the input range names --eps and the range"
one_line "--eps 1e39 is one line"
expect 2 "--eps 1e39 under l2" -- "$bin" attack --model m.ckpt --dataset synthetic --examples 10 --threads 1 --attack pgd --norm l2 --eps 1e39
contains err "--eps 1e+39 is larger than the L2 diameter 28 of the input box" "an L2 eps beyond the box's diagonal is refused"
expect 0 "--eps inf is still meaningful for cw" -- "$bin" attack --model m.ckpt --dataset synthetic --examples 10 --threads 1 --attack cw --norm l2 --eps inf --steps 2 --binary-search-steps 1

cat >huge.toml <<'TOML'
name = "huge"
dataset = "synthetic"
examples = 10

[[models]]
name = "m"
checkpoint = "m.ckpt"

[[attacks]]
name = "pgd"
eps = [0.1]
options = { steps = 1000000000000000000 }
TOML
expect 2 "a matrix with steps = 1e18" -- "$bin" run huge.toml --dry-run
contains err "steps must be in [1, 100000]" "a matrix's budget key is capped"
sed 's/^examples = 10/examples = 10\nrepeats = 100000000/; s/steps = 1000000000000000000/steps = 5/' huge.toml >reps.toml
expect 2 "a matrix with repeats = 1e8" -- "$bin" run reps.toml --dry-run
contains err "repeats: must be <= 10000 (IMBENCH_ALLOW_LARGE_BUDGET=1 allows up to 2147483647), got 100000000" "a matrix's repeats is capped"

# --out over a file of another kind: refused unless --force; a file of the right kind is replaced.
echo "my notes" >notes.txt
cp m.ckpt keep.ckpt
expect 2 "attack --out over a checkpoint" -- "${attack[@]}" --eps 0.1 --steps 2 --out keep.ckpt
contains err "--out keep.ckpt: exists and is not an imbench results file (it is a checkpoint); choose another file or pass --force" "attack --out refuses a checkpoint"
expect 0 "the checkpoint is unchanged" -- cmp keep.ckpt m.ckpt
expect 2 "attack --out over an unrelated file" -- "${attack[@]}" --eps 0.1 --steps 2 --out notes.txt
contains err "--out notes.txt: exists and is not an imbench results file;" "attack --out refuses an unrelated file"
expect 0 "attack --out writes a results file" -- "${attack[@]}" --eps 0.1 --steps 2 --out a.h5
expect 0 "attack --out replaces an earlier attack's results" -- "${attack[@]}" --eps 0.1 --steps 3 --out a.h5
expect 0 "attack --out --force replaces an unrelated file" -- "${attack[@]}" --eps 0.1 --steps 2 --out notes.txt --force
echo "my notes" >notes.txt
expect 2 "train --out over an unrelated file" -- "$bin" train --dataset synthetic --epochs 1 --hidden 8 --quiet --threads 1 --out notes.txt
contains err "--out notes.txt: exists and is not an imbench checkpoint; choose another file or pass --force" "train --out refuses an unrelated file"
contains notes.txt "my notes" "the unrelated file is unchanged"
expect 0 "train --out replaces an existing checkpoint" -- "$bin" train --dataset synthetic --epochs 1 --hidden 8 --quiet --threads 1 --out keep.ckpt
expect 0 "train --out --force replaces an unrelated file" -- "$bin" train --dataset synthetic --epochs 1 --hidden 8 --quiet --threads 1 --out notes.txt --force
expect 0 "what --force wrote is a checkpoint" -- "$bin" info notes.txt

exit $fail
