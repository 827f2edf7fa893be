"""Reads imbench results files with h5py (Debian's python3-h5py).

  h5_results.py summary FILE        print one line per cell (id, robust accuracy)
  h5_results.py same A B            exit 0 if both files hold the same models and
                                    cells, value by value (timings and dates aside;
                                    saved adversarial examples compared when both have them)
  h5_results.py plant FILE CELL     make CELL look far more robust (for compare tests)
  h5_results.py dump FILE           the file's numbers as canonical JSON (no timings,
                                    dates, versions or wording): what a fixture keeps
  h5_results.py match EXPECTED FILE exit 0 if FILE's dump equals the JSON in EXPECTED
  h5_results.py plant-config FILE CELL  change CELL's recorded attack options (steps + 1)
  h5_results.py flags FILE          one line per recorded check verdict:
                                    "<model|cell id> <check> <name> FLAGGED|ok"
"""
import json
import sys

import h5py
import numpy as np

ADVERSARIAL = {"adversarial", "adversarial_index"}
TIMING = {"seconds", "images_per_second", "gradient_evaluations_per_second", "check_seconds", "probe_seconds", "order"}


def summary(path):
    with h5py.File(path, "r") as f:
        assert f.attrs["schema"] in (b"imbench-results", "imbench-results"), f.attrs["schema"]
        assert f.attrs["schema_version"] == 2, f.attrs["schema_version"]
        n = f.attrs["examples"]
        assert isinstance(n, np.integer), type(n)  # int64 since schema version 2
        for cid, g in f["cells"].items():
            r = int(g.attrs["repeats"])
            assert g["adversarial_correct"].shape == (r, n), (cid, g["adversarial_correct"].shape)
            assert g["clean_correct"].shape == (r, n)
            for d in ("index", "label", "attacked", "linf", "l2", "l0", "final_loss", "gradient_evaluations"):
                assert g[d].shape == (n,), (cid, d, g[d].shape)
            for d in ("clean_prediction", "adversarial_prediction"):
                assert g[d].shape == (r, n), (cid, d, g[d].shape)
            acc = g["adversarial_correct"][()].mean()
            assert abs(acc - float(g.attrs["robust_accuracy"])) < 1e-9, (cid, acc)
            print(f"{cid} robust_accuracy={acc:.4f} flags={len(json.loads(g.attrs['flags']))}")
        print(f"models={len(f['models'])} cells={len(f['cells'])}")


def attrs(obj):
    out = {}
    for k, v in obj.attrs.items():
        if k in TIMING:
            continue
        if isinstance(v, bytes):
            v = v.decode()
        if k == "flags":
            v = json.loads(v)
        out[k] = v
    return out


def same(a, b):
    problems = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for top in ("models", "cells"):
            ka, kb = set(fa[top]), set(fb[top])
            if ka != kb:
                problems.append(f"{top}: {sorted(ka ^ kb)} in only one file")
            for k in sorted(ka & kb):
                ga, gb = fa[top][k], fb[top][k]
                # Saved adversarial examples change no number: one file may lack them.
                if (set(ga) ^ set(gb)) - ADVERSARIAL:
                    problems.append(f"{top}/{k}: datasets differ")
                for d in set(ga) & set(gb):
                    x, y = ga[d][()], gb[d][()]
                    if x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                        problems.append(f"{top}/{k}/{d}: values differ")
                aa, ab = attrs(ga), attrs(gb)
                for key in set(aa) | set(ab):
                    va, vb = aa.get(key), ab.get(key)
                    if isinstance(va, float) and isinstance(vb, float) and np.isnan(va) and np.isnan(vb):
                        continue
                    if va != vb:
                        problems.append(f"{top}/{k}@{key}: {va!r} != {vb!r}")
    for p in problems[:20]:
        print("differs:", p)
    return 1 if problems else 0


def _flags(obj):
    # In the order they were recorded, with what each measured.
    return [[f["check"], f["name"], bool(f["failed"]), f["detail"]] for f in json.loads(obj.attrs["flags"])]


def _rounded(values, digits):
    return [None if np.isnan(v) else round(float(v), digits) for v in values]


def dump(path):
    """Numbers only: per model the clean accuracy and the checks' verdicts;
    per cell the per-example outcomes, norms, losses and gradient counts, the
    accuracy summary and the checks' verdicts."""
    out = {"models": {}, "cells": {}}
    with h5py.File(path, "r") as f:
        for name, g in f["models"].items():
            out["models"][name] = {"clean_accuracy": round(float(g.attrs["clean_accuracy"]), 9), "flags": _flags(g)}
        for cid, g in f["cells"].items():
            bits = lambda d: "".join(str(int(v)) for v in np.asarray(g[d][()]).reshape(-1))
            c = {k: bits(k) for k in ("attacked", "clean_correct", "adversarial_correct")}
            for d, digits in (("linf", 5), ("l2", 5), ("l0", 0), ("final_loss", 4)):
                c[d] = _rounded(g[d][()], digits)
            c["gradient_evaluations"] = [int(v) for v in g["gradient_evaluations"][()]]
            if "target" in g:
                c["target"] = [int(v) for v in g["target"][()]]
            for k in ("robust_accuracy", "robust_accuracy_std", "robust_accuracy_worst", "attacked_examples"):
                c[k] = round(float(g.attrs[k]), 9)
            c["flags"] = _flags(g)
            out["cells"][cid] = c
    return out


# Norms and losses are float32 results of many matrix products: another
# LibTorch or BLAS (PyTorch 2.11's MKL on the GPU machine, LibTorch 2.x)
# rounds them differently in the 4th-5th digit (seen: l2 0.02231 vs 0.02227).
# They match within this tolerance; outcomes, counts and verdicts stay exact.
FLOAT_FIELDS = ("linf", "l2", "l0", "final_loss")
REL_TOL, ABS_TOL = 1e-3, 2e-4


def _close(a, b):
    if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
        return a == b
    for x, y in zip(a, b):
        if x is None or y is None:
            if x is not y:
                return False
        elif abs(x - y) > REL_TOL * max(abs(x), abs(y)) + ABS_TOL:
            return False
    return True


def match(expected_path, path):
    with open(expected_path) as f:
        want = json.load(f)
    got = dump(path)
    problems = []
    for top in ("models", "cells"):
        for k in sorted(set(want[top]) | set(got[top])):
            if k not in got[top] or k not in want[top]:
                problems.append(f"{top}/{k}: in only one of expected and actual")
                continue
            for field in sorted(set(want[top][k]) | set(got[top][k])):
                a, b = want[top][k].get(field), got[top][k].get(field)
                if (not _close(a, b)) if field in FLOAT_FIELDS else a != b:
                    problems.append(f"{top}/{k}/{field}: expected {str(a)[:80]}, got {str(b)[:80]}")
    for p in problems[:30]:
        print("differs:", p)
    print(f"{len(problems)} differences in {len(want['models'])} models and {len(want['cells'])} cells")
    return 1 if problems else 0


def flags(path):
    with h5py.File(path, "r") as f:
        for top in ("models", "cells"):
            for key, g in f[top].items():
                for check, name, failed, _ in _flags(g):
                    print(f"{key} {check} {name} {'FLAGGED' if failed else 'ok'}")


def plant_config(path, cell):
    with h5py.File(path, "r+") as f:
        g = f["cells"][cell]
        raw = g.attrs["config_json"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        config["options"]["steps"] = int(config["options"]["steps"]) + 1
        g.attrs["config_json"] = json.dumps(config)


def plant(path, cell):
    with h5py.File(path, "r+") as f:
        g = f["cells"][cell]
        clean = g["clean_correct"][()]
        g["adversarial_correct"][...] = clean
        g.attrs["robust_accuracy"] = float(clean.mean())


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "summary":
        summary(sys.argv[2])
    elif cmd == "same":
        sys.exit(same(sys.argv[2], sys.argv[3]))
    elif cmd == "dump":
        d = dump(sys.argv[2])
        # One line per field, lists inline: diffs of a fixture stay readable.
        print("{")
        for i, top in enumerate(("cells", "models")):
            print(f' "{top}": {{')
            keys = sorted(d[top])
            for j, k in enumerate(keys):
                fields = sorted(d[top][k].items())
                body = ",\n".join(f'   "{f}": {json.dumps(v)}' for f, v in fields)
                print(f'  "{k}": {{\n{body}\n  }}' + ("," if j + 1 < len(keys) else ""))
            print(" }" + ("," if i == 0 else ""))
        print("}")
    elif cmd == "match":
        sys.exit(match(sys.argv[2], sys.argv[3]))
    elif cmd == "plant-config":
        plant_config(sys.argv[2], sys.argv[3])
    elif cmd == "flags":
        flags(sys.argv[2])
    elif cmd == "plant":
        plant(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")
