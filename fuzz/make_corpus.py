#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/
(small valid inputs; crash-* regression inputs there are kept). Run from the
repository root: /usr/bin/python3 fuzz/make_corpus.py. fuzz_results' seeds come from
imbench's own writer instead (fuzz/make_corpus.sh runs make_results_seeds)."""
import gzip
import hashlib
import io
import os
import re
import struct
import sys

import numpy as np

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
corpus = os.path.join(root, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(dims, values):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(values)


# IDX: labels [4], images [2, 3, 3], their gzip (mtime 0: reproducible).
labels = idx([4], [3, 1, 4, 1])
images = idx([2, 3, 3], range(18))
put("fuzz_idx", "labels.idx", labels)
put("fuzz_idx", "images.idx", images)
put("fuzz_idx", "images.idx.gz", gzip.compress(images, mtime=0))
put("fuzz_idx", "labels.idx.gz", gzip.compress(labels, mtime=0))

# CIFAR-10: one and two records.
put("fuzz_cifar", "one.bin", bytes([7]) + bytes(i % 256 for i in range(3072)))
put("fuzz_cifar", "two.bin", bytes([0]) + bytes(3072) + bytes([9]) + bytes([255] * 3072))


def npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def npz(compressed, **arrays):
    b = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(b, **arrays)
    return b.getvalue()


x8 = (np.arange(3 * 2 * 2) % 256).astype(np.uint8).reshape(3, 2, 2)
xf = (np.arange(3 * 1 * 2 * 2) / 12).astype(np.float32).reshape(3, 1, 2, 2)
y = np.array([0, 2, 1], dtype=np.int64)
put("fuzz_user_data", "stored.npz", b"\x00" + npz(False, x=x8, y=y))
put("fuzz_user_data", "deflate.npz", b"\x00" + npz(True, x=xf, y=y.astype(np.uint8)))
for name, xs, ys in [("pair-u8", npy(x8), npy(y)), ("pair-f64", npy(xf.astype(np.float64)), npy(y.astype(np.int32)))]:
    put("fuzz_user_data", name + ".npy2", b"\x01" + struct.pack("<H", len(xs)) + xs + ys)

# Checkpoints: the header and metadata of a real one (tests/fixtures/engine),
# a stand-in for the weights, the checksum recomputed.
for src in ["det.ckpt", "sfnn.ckpt"]:
    raw = open(os.path.join(root, "tests", "fixtures", "engine", src), "rb").read()
    m = re.match(rb"(IMBENCH-CHECKPOINT 1\nmeta (\d+)\n)", raw)
    meta = raw[m.end() : m.end() + int(m.group(2))]
    body = b"IMBENCH-CHECKPOINT 1\nmeta %d\n" % len(meta) + meta + b"\nweights 8\nWEIGHTS!\n"
    put("fuzz_checkpoint", src, body + b"sha256 " + hashlib.sha256(body).hexdigest().encode() + b"\n")

# Matrices: the repository's own and the documented examples.
for path in ["benchmarks/matrices/quick.toml", "benchmarks/matrices/table1-mnist.toml", "tests/fixtures/engine/matrix.toml"]:
    put("fuzz_matrix", os.path.basename(path), open(os.path.join(root, path), "rb").read())

# Parsers: first byte picks eps (0), shard (1), option text of type 2..7.
for i, (which, text) in enumerate([(0, "8/255"), (0, "0.3"), (0, "inf"), (1, "2/4"), (1, "1/1"), (2, "40"),
                                   (3, "1e-3"), (4, "true"), (5, "ce"), (6, "512,512"), (7, "0.1,0.2,8")]):
    put("fuzz_parse", "seed-%02d" % i, bytes([which]) + text.encode())
