"""Reads imbench results files with h5py (Debian's python3-h5py).

  h5_results.py summary FILE        print one line per cell (id, robust accuracy)
  h5_results.py same A B            exit 0 if both files hold the same models and
                                    cells, value by value (timings and dates aside)
  h5_results.py plant FILE CELL     make CELL look far more robust (for compare tests)
"""
import json
import sys

import h5py
import numpy as np

TIMING = {"seconds", "images_per_second", "gradient_evaluations_per_second", "order"}


def summary(path):
    with h5py.File(path, "r") as f:
        assert f.attrs["schema"] in (b"imbench-results", "imbench-results"), f.attrs["schema"]
        assert int(f.attrs["schema_version"]) == 1
        n = int(f.attrs["examples"])
        for cid, g in f["cells"].items():
            r = int(g.attrs["repeats"])
            assert g["adversarial_correct"].shape == (r, n), (cid, g["adversarial_correct"].shape)
            assert g["clean_correct"].shape == (r, n)
            for d in ("index", "label", "attacked", "linf", "l2", "l0", "final_loss", "gradient_evaluations"):
                assert g[d].shape == (n,), (cid, d, g[d].shape)
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
                if set(ga) != set(gb):
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
    elif cmd == "plant":
        plant(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")
