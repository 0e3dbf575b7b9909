#!/usr/bin/python3
"""Writes the hand-made seed inputs of fuzz/corpus/<target>/ (run from anywhere; needs
Debian's python3-h5py and python3-numpy).  Inputs the fuzzer found later are added to the
corpus as files named after what they caught and are not touched here."""
import gzip
import math
import os
import shutil
import struct

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def put(target, name, data):
    os.makedirs(os.path.join(HERE, "corpus", target), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(HERE, "corpus", target, name), mode) as f:
        f.write(data)


# ------------------------------------------------------------------------ config
for name in ["fashion_mnist", "quickstart", "reference", "stochastic_depth"]:
    shutil.copy(os.path.join(ROOT, "configs", name + ".yaml"),
                os.path.join(HERE, "corpus", "config", "example_%s.yaml" % name))
CONFIG = {
    "empty.yaml": "",
    "comment_only.yaml": "# nothing\n",
    "null_root.yaml": "~\n",
    "flow.yaml": "model: {width: 16, depth: 2, activation: tanh}\nfourier: {features: 4}\n"
                 "data: {source: synthetic_1d, n_train: 40, n_test: 8}\ngrid: {block_size: 8}\n"
                 "output: {path: \"o.h5\", overwrite: yes}\n",
    "anchors.yaml": "model: &m {width: 8, depth: 2}\nanalytic: *m\n",
    "recursive_alias.yaml": "model: &m {model: *m}\n",
    "lists.yaml": "model: {depth: 3}\ndepth: {mask: [1, 0, 1], survival: 0.5, schedule: linear}\n"
                  "ntk: {network: mask}\n",
    "list_text.yaml": "depth: {mask: \"1,0,1\"}\nmodel: {depth: 3}\n",
    "classes.yaml": "data: {source: fashion_mnist, classes: [0, 9], n_train: 10, n_test: 0}\n",
    "hdf5.yaml": "data:\n  source: hdf5\n  path: /nonexistent.h5\n  n_train: 0\n",
    "duplicate.yaml": "seed: 1\nseed: 2\n",
    "duplicate_section.yaml": "model: {width: 2}\nmodel: {depth: 2}\n",
    "two_documents.yaml": "seed: 1\n---\nseed: 2\n",
    "tags.yaml": "seed: !!int 5\nmodel: !!map {width: !!str 12}\n",
    "quoted.yaml": "output: {path: \"a\\x01\\\"b\\\\c\\u00e9.h5\"}\neigensolver: {type: 'pdsyevd'}\n",
    "numbers.yaml": "seed: 18446744073709551615\nmodel: {weight_std: 1e308, bias_std: 0.0}\n"
                    "fourier: {scale: .5e-3}\n",
    "nonfinite.yaml": "model: {weight_std: .nan, bias_std: -.inf}\n",
    "sequence_root.yaml": "- seed\n- 1\n",
    "nested_list.yaml": "depth: {mask: [[1], {a: 1}]}\n",
    "long_key.yaml": "model:\n  " + "w" * 300 + ": 1\n",
    "train.yaml": "train: {steps: 10, optimizer: sgd, batch_size: 4, measure: list, "
                  "measure_steps: [0, 5, 10], checkpoint_every: 2}\ndata: {n_train: 8}\n",
    "set_lines.txt": "model.width=64\nmodel.depth = 3\ndepth.mask=[1,0,1]\noutput.path=\"x y.h5\"\n"
                     "seed=-1\nmodel=3\nmodle.width=1\n",
    "project_false.yaml": "fourier: {project: false, features: 8}\nmodel: {width: 16}\n",
    "grid.yaml": "grid: {rows: 2}\n",
    # nesting beyond NTK_CONFIG_MAX_DEPTH is refused before libyaml builds a document
    "deep_flow.yaml": "model:\n  width: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep_block.yaml": "".join("  " * i + "k%d:\n" % i for i in range(40)),
}
for k, v in CONFIG.items():
    put("config", k, v)


# --------------------------------------------------------------------------- idx
def idx(dims, data=None, typ=8):
    n = int(np.prod(dims)) if dims else 0
    if data is None:
        data = bytes((i * 37) & 255 for i in range(n))
    return bytes([0, 0, typ, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


IDX = {
    "labels_rank1": idx([10]),
    "images_rank3": idx([3, 4, 5]),
    "rank2": idx([4, 3]),
    "rank4": idx([2, 2, 2, 2]),
    "zero_items": idx([0, 7]),
    "truncated": idx([5, 3])[:-4],
    "overlong": idx([2, 2]) + b"\x00",
    "bad_magic": b"\x01\x02\x08\x01\x00\x00\x00\x01\x05",
    "float_type": idx([2], data=b"\x00" * 8, typ=0x0D),
    "rank0": b"\x00\x00\x08\x00",
    "rank5": b"\x00\x00\x08\x05" + b"\x00\x00\x00\x01" * 5 + b"\x07",
    "lying_header": bytes([0, 0, 8, 3]) + struct.pack(">III", 0x7FFFFFFF, 28, 28) + b"\x01" * 100,
    "huge_dim": bytes([0, 0, 8, 2]) + struct.pack(">II", 0x80000000, 1),
    "zero_inner_dim": bytes([0, 0, 8, 2]) + struct.pack(">II", 1, 0),
    "short": b"\x00\x00",
}
for k, v in IDX.items():
    put("idx", k, v)
for k in ["labels_rank1", "images_rank3", "truncated", "overlong"]:
    put("idx", k + ".gz", gzip.compress(IDX[k], mtime=0))
gz = gzip.compress(IDX["images_rank3"], mtime=0)
put("idx", "gzip_truncated.gz", gz[: len(gz) // 2])
put("idx", "gzip_bad_crc.gz", gz[:-8] + b"\x00\x00\x00\x00" + gz[-4:])
FMNIST = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
if os.path.exists(FMNIST):
    with gzip.open(FMNIST) as f:
        real = f.read()
    put("idx", "fmnist_labels_head", real[:512])  # truncated
    put("idx", "fmnist_labels_100", real[:4] + struct.pack(">I", 100) + real[8:108])


# -------------------------------------------------------------------------- hdf5
# Structured inputs (see fuzz_hdf5.c): n_train, n_test, grid; then for x, y, x_test,
# y_test: kind | rank << 2 | type << 4, rows (0x7f: 2^31 + 3), cols (| 0x80: chunked),
# then the element bytes.
def obj(kind, rank, typ, d1, d2, payload=b""):
    return bytes([kind | rank << 2 | typ << 4, d1, d2]) + payload


def f64(vals):
    return struct.pack("<%dd" % len(vals), *vals)


x52 = f64([0.5 * i - 1 for i in range(10)])
y5 = f64([1, 2, 3, 4, 5])
A = obj(0, 0, 0, 0, 0)
XY = obj(1, 2, 9, 5, 2, x52) + obj(1, 1, 9, 5, 1, y5)
HDF5 = {
    "valid": bytes([0, 0, 1]) + XY + A + A,
    "valid_test": bytes([3, 2, 2]) + obj(1, 2, 9, 5, 2, x52) + obj(1, 2, 9, 5, 1, y5)
    + obj(1, 2, 9, 2, 2, f64([1, 2, 3, 4])) + obj(1, 1, 9, 2, 0, f64([7, 8])),
    "integers": bytes([0, 0, 3]) + obj(1, 2, 4, 3, 2, struct.pack("<6i", -3, 2, 1, 0, 9, 100000))
    + obj(1, 1, 1, 3, 0, bytes([0, 128, 255])) + A + A,
    "int64_uint64": bytes([0, 0, 0]) + obj(1, 2, 6, 2, 1, struct.pack("<2q", -2**62, 2**53 + 1))
    + obj(1, 2, 7, 2, 1, struct.pack("<2Q", 2**64 - 1, 3)) + A + A,
    "nan": bytes([0, 0, 1]) + obj(1, 2, 9, 5, 2, f64([0, 1, 2, 3, math.nan, 5, 6, 7, 8, 9]))
    + obj(1, 1, 9, 5, 1, y5) + A + A,
    "inf_float32": bytes([0, 0, 1]) + obj(1, 2, 9, 5, 2, x52)
    + obj(1, 1, 8, 5, 1, struct.pack("<5f", 1, 2, math.inf, 4, 5)) + A + A,
    "missing_y": bytes([0, 0, 1]) + obj(1, 2, 9, 5, 2, x52) + A + A + A,
    "x_group": bytes([0, 0, 1]) + obj(2, 0, 0, 0, 0) + obj(1, 1, 9, 5, 1, y5) + A + A,
    "x_dangling": bytes([0, 0, 1]) + obj(3, 0, 9, 0, 0) + obj(1, 1, 9, 5, 1, y5) + A + A,
    "rows_mismatch": bytes([0, 0, 1]) + obj(1, 2, 9, 5, 2, x52) + obj(1, 1, 9, 4, 1, y5) + A + A,
    "rank3": bytes([0, 0, 1]) + obj(1, 3, 9, 5, 2, x52 * 2) + obj(1, 1, 9, 5, 1, y5) + A + A,
    "scalar": bytes([0, 0, 1]) + obj(1, 0, 9, 0, 0, f64([1])) + obj(1, 1, 9, 5, 1, y5) + A + A,
    "string": bytes([0, 0, 1]) + obj(1, 2, 13, 2, 2, b"abcdefghijklmnop") + obj(1, 1, 9, 2, 1, y5)
    + A + A,
    "compound": bytes([0, 0, 1]) + obj(1, 2, 14, 5, 2, x52) + obj(1, 1, 9, 5, 1, y5) + A + A,
    "huge_rows": bytes([0, 0, 1]) + obj(1, 2, 9, 0x7F, 2) + obj(1, 1, 9, 5, 1, y5) + A + A,
    "test_without_y": bytes([0, 0, 1]) + XY + obj(1, 2, 9, 2, 2, f64([1, 2, 3, 4])) + A,
    "test_cols_mismatch": bytes([0, 2, 1]) + XY + obj(1, 2, 9, 2, 3, f64(range(6)))
    + obj(1, 1, 9, 2, 0, f64([7, 8])),
    "big_endian": bytes([0, 0, 2]) + obj(1, 2, 11, 5, 2, struct.pack(">10d", *range(10)))
    + obj(1, 1, 12, 5, 1, struct.pack(">5i", *range(5))) + A + A,
    "n_train_too_big": bytes([9, 0, 1]) + XY + A + A,
    "n_test_no_test": bytes([0, 3, 1]) + XY + A + A,
    "chunked": bytes([4, 0, 3]) + obj(1, 2, 9, 5, 0x82, x52) + obj(1, 2, 9, 5, 0x81, y5) + A + A,
    "zero_cols": bytes([0, 0, 1]) + obj(1, 2, 9, 5, 0) + obj(1, 1, 9, 5, 1, y5) + A + A,
    "zero_rows": bytes([0, 0, 1]) + obj(1, 2, 9, 0, 2) + obj(1, 1, 9, 0, 1) + A + A,
    "bitfield": bytes([0, 0, 1]) + obj(1, 2, 15, 5, 2, bytes(10)) + obj(1, 1, 9, 5, 1, y5) + A + A,
}
for k, v in HDF5.items():
    put("hdf5", k, v)

# raw files, written to the data file as they are
tmp = os.path.join(HERE, "corpus", "hdf5")
rng = np.random.default_rng(0)
with h5py.File(os.path.join(tmp, "raw_valid.h5"), "w", libver="earliest") as f:
    f["x"] = rng.normal(size=(6, 2))
    f["y"] = rng.normal(size=(6, 1))
with h5py.File(os.path.join(tmp, "raw_test_int.h5"), "w", libver="earliest") as f:
    f["x"] = np.arange(8, dtype=np.int16).reshape(4, 2)
    f["y"] = np.arange(4, dtype=np.uint8)
    f["x_test"] = np.ones((2, 2), dtype=np.float32)
    f["y_test"] = np.zeros(2)
with h5py.File(os.path.join(tmp, "raw_gzip_chunked.h5"), "w", libver="earliest") as f:
    f.create_dataset("x", data=rng.normal(size=(8, 3)), chunks=(4, 3), compression="gzip")
    f.create_dataset("y", data=rng.normal(size=(8, 1)), chunks=(4, 1), compression="gzip")
with open(os.path.join(tmp, "raw_valid.h5"), "rb") as f:
    raw = f.read()
put("hdf5", "raw_truncated.h5", raw[: len(raw) // 2])
put("hdf5", "raw_header_only.h5", raw[:96])
