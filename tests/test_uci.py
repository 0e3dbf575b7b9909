"""tools/ntkspec-uci: the three UCI sets converted to ntkspec's HDF5 input, checked against
scikit-learn's own copies (split, standardisation, targets, determinism), then each read by
one short `ntkspec run` of its configs/uci_NAME.yaml (rc 0, N, d and k as converted, the
kernel-regime test predictions finite and equal to the test loss at step 0)."""
import os
import subprocess
import sys

import h5py
import numpy as np
from sklearn import datasets

import ntkharness as H

R = H.Report()
tmp = H.tmpdir()
TOOL = os.path.join(H.SOURCE_DIR, "tools", "ntkspec-uci")
# name: (rows, d, k, classes); the sizes of the UCI files
SHAPES = {"breast_cancer": (569, 30, 2, 2), "wine": (178, 13, 3, 3), "diabetes": (442, 10, 1, 0)}
RAW = {"breast_cancer": datasets.load_breast_cancer(), "wine": datasets.load_wine(),
       "diabetes": datasets.load_diabetes(scaled=False)}


def tool(*args):
    return subprocess.run(["/usr/bin/python3", TOOL] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=H.limit(120))


def read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}, dict(f.attrs)


def check_set(name, path):
    rows, d, k, ncls = SHAPES[name]
    D, A = read(path)
    X, t = RAW[name].data, RAW[name].target
    tr, te = D["train_index"], D["test_index"]
    ntr, nte = len(tr), len(te)
    R.check(D["x"].shape == (ntr, d) and D["x_test"].shape == (nte, d),
            "%s: x %s, x_test %s, d = %d" % (name, D["x"].shape, D["x_test"].shape, d))
    R.check(D["y"].shape == (ntr, k) and D["y_test"].shape == (nte, k),
            "%s: y %s, y_test %s, k = %d" % (name, D["y"].shape, D["y_test"].shape, k))
    R.check(ntr + nte == rows and sorted(np.concatenate([tr, te]).tolist()) == list(range(rows)),
            "%s: train and test rows partition the %d rows" % (name, rows))
    groups = t if ncls else np.zeros(rows)
    for g in np.unique(groups):
        n_g = int(np.sum(groups == g))
        R.check(int(np.sum(groups[te] == g)) == int(round(0.25 * n_g)),
                "%s: class %s has round(0.25 * %d) test rows" % (name, g, n_g))
    # standardisation from the training rows only: mean 0, population std 1 there, and the
    # test rows mapped by the same affine map (not re-centred)
    R.check(np.abs(D["x"].mean(axis=0)).max() < 1e-12, "%s: train features have mean 0" % name)
    R.check(np.abs(D["x"].std(axis=0) - 1).max() < 1e-12, "%s: train features have std 1" % name)
    R.check(np.allclose(D["x_mean"], X[tr].mean(axis=0), rtol=1e-14, atol=0)
            and np.allclose(D["x_std"], X[tr].std(axis=0), rtol=1e-14, atol=0),
            "%s: x_mean, x_std are the training rows' statistics" % name)
    for s, idx in (("x", tr), ("x_test", te)):
        back = D[s] * D["x_std"] + D["x_mean"]
        err = np.abs(back - X[idx]).max() / np.abs(X).max()
        R.check(err < 1e-14, "%s: %s maps back to the original rows (rel. error %.1e)" % (name, s, err))
    R.check(abs(D["x_test"].mean()) > 1e-6, "%s: the test rows are not re-centred" % name)
    if ncls:
        R.check(A["classification"] == 1, "%s: classification attribute 1" % name)
        for s, idx in (("y", tr), ("y_test", te)):
            R.check(np.array_equal(D[s], np.eye(ncls)[t[idx]]), "%s: %s one-hot of the labels" % (name, s))
    else:
        R.check(A["classification"] == 0, "%s: classification attribute 0" % name)
        R.check(abs(D["y"].mean()) < 1e-12 and abs(D["y"].std() - 1) < 1e-12,
                "%s: target standardised on the training rows" % name)
        back = D["y_test"][:, 0] * D["y_std"][0] + D["y_mean"][0]
        R.check(np.abs(back - t[te]).max() < 1e-12 * np.abs(t).max(),
                "%s: y_test maps back to the targets" % name)
    # rows in a seeded random order: wine's file is sorted by class, its prefix must not be
    if name == "wine":
        R.check(len(np.unique(t[tr[:12]])) == 3, "wine: the first 12 training rows hold all classes")
    return ntr, nte, d, k


if H.section("convert"):
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    os.mkdir(a)
    os.mkdir(b)
    p = tool("--all", a)
    R.check(p.returncode == 0, "--all: rc %d %s" % (p.returncode, p.stderr))
    sizes = {n: check_set(n, os.path.join(a, "uci_%s.h5" % n)) for n in SHAPES}
    # deterministic: the same seed gives the same file contents, another seed another split
    p = tool("wine", os.path.join(b, "same.h5"))
    p2 = tool("wine", os.path.join(b, "other.h5"), "--seed", "5")
    R.check(p.returncode == 0 and p2.returncode == 0, "wine with seeds 0, 5")
    A0, _ = read(os.path.join(a, "uci_wine.h5"))
    A1, _ = read(os.path.join(b, "same.h5"))
    A2, _ = read(os.path.join(b, "other.h5"))
    R.check(all(np.array_equal(A0[k], A1[k]) for k in A0), "wine: seed 0 twice, identical datasets")
    R.check(not np.array_equal(np.sort(A0["test_index"]), np.sort(A2["test_index"])),
            "wine: seed 5 gives another test set")
    check_set("wine", os.path.join(b, "other.h5"))
    # bad input: exit status 2, one line
    for args, word in ((["iris", os.path.join(b, "x.h5")], "unknown data set"),
                       (["wine", os.path.join(b, "same.h5")], "exists"),
                       (["wine", os.path.join(b, "y.h5"), "--test-fraction", "1.5"], "--test-fraction")):
        p = tool(*args)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        R.check(p.returncode == 2 and len(lines) == 1 and word in p.stderr,
                "%s: rc %d, one line naming %r: %r" % (args, p.returncode, word, p.stderr))

    # one short run of each committed config on its file: N, d, k as converted
    for name, (ntr, nte, d, k) in sizes.items():
        out = os.path.join(tmp, "run_%s.h5" % name)
        cfg = os.path.join(H.SOURCE_DIR, "configs", "uci_%s.yaml" % name)
        p = H.run(["run", cfg, "-q", "--set", "data.path=" + os.path.join(a, "uci_%s.h5" % name),
                   "--set", "output.path=" + out, "--set", "model.width=32", "--set", "train.steps=3",
                   "--set", "output.save_data=true"], np=2, timeout=300)
        R.check(p.returncode == 0, "%s: ntkspec run rc %d: %s" % (name, p.returncode, p.stderr[-500:]))
        if p.returncode:
            continue
        with h5py.File(out, "r") as f:
            R.check(f["data/x_train"].shape == (ntr, d) and f["data/x_test"].shape == (nte, d),
                    "%s: the run read N = %d, n_test = %d, d = %d: %s %s" % (
                        name, ntr, nte, d, f["data/x_train"].shape, f["data/x_test"].shape))
            R.check(f["data/y_train"].shape == (ntr, k), "%s: k = %d" % (name, k))
            t = f["trajectory"]
            R.check(np.isfinite(t["test_loss"][()]).all(), "%s: test loss measured" % name)
            # the kernel-regime test predictions start at the measured test loss
            for s in ("predicted_test_loss", "predicted_test_loss_infinite"):
                v = t[s][()]
                R.check(np.isfinite(v).all() and abs(v[0] / t["test_loss"][0] - 1) < 1e-12,
                        "%s: %s finite, = test_loss at step 0" % (name, s))
            acc = "test_accuracy" in t
            R.check(acc == (SHAPES[name][3] > 0),
                    "%s: accuracy reported exactly for the classification sets (%s)" % (name, acc))

sys.exit(R.finish())
