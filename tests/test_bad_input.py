"""Bad input: every case exits with status 2 and exactly one line on stderr,
"ntkspec: error: ..." containing the expected words; nothing crashes and no output file
(complete or partial) is left behind.  One table row per case."""
import math
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

R = H.Report()
tmp = H.tmpdir()
OUT = os.path.join(tmp, "out.h5")

GOOD = """seed: 1
model: {width: 16, depth: 2, activation: tanh}
fourier: {features: 4}
data: {source: synthetic_1d, n_train: 40, n_test: 8}
grid: {block_size: 8}
output: {path: %s}
""" % OUT


def h5data(name, x, y, **extra):
    path = os.path.join(tmp, name)
    with h5py.File(path, "w") as f:
        if x is not None:
            f["x"] = x
        if y is not None:
            f["y"] = y
        for k, v in extra.items():
            f[k] = v
    return path


rng = np.random.default_rng(0)
x_ok, y_ok = rng.normal(size=(30, 3)), rng.normal(size=(30, 1))
x_nan = x_ok.copy()
x_nan[17, 1] = math.nan
y_inf = y_ok.copy()
y_inf[3, 0] = math.inf
nan_file = h5data("nan.h5", x_nan, y_ok)
inf_file = h5data("inf.h5", x_ok, y_inf)
mismatch_file = h5data("mismatch.h5", x_ok, y_ok[:20])
rank1_file = h5data("rank1.h5", x_ok[:, 0], y_ok)
nox_file = h5data("nox.h5", None, y_ok)
with open(os.path.join(tmp, "garbage.h5"), "w") as f:
    f.write("this is not HDF5\n")
exists = os.path.join(tmp, "exists.h5")


def with_attr(path, name, value):
    with h5py.File(path, "a") as f:
        f.attrs[name] = value
    return path


def fuzz_file(name):
    return os.path.join(H.SOURCE_DIR, "fuzz", "corpus", "hdf5", name)


def hdf5_cfg(path, extra=""):
    return GOOD.replace("data: {source: synthetic_1d, n_train: 40, n_test: 8}",
                        "data: {source: hdf5, path: %s%s}" % (path, extra))


# (name, config text or None, extra args, ranks, expected words in the message)
CASES = [
    ("malformed YAML", "model: {width: 16\n", [], 1, "YAML syntax error"),
    ("tab-broken YAML", "model:\n  width: 3\n depth: 2\n", [], 1, "YAML"),
    ("unknown key with suggestion", GOOD + "modle: {width: 3}\n", [], 1, "did you mean"),
    ("unknown nested key", GOOD.replace("depth: 2", "dept: 2"), [], 1, "model.dept"),
    ("wrong type", GOOD.replace("width: 16", "width: abc"), [], 1, "model.width"),
    ("float for an integer", GOOD.replace("width: 16", "width: 1.5"), [], 1, "model.width"),
    ("zero width", GOOD.replace("width: 16", "width: 0"), [], 1, "model.width"),
    ("negative depth", GOOD.replace("depth: 2", "depth: -1"), [], 1, "model.depth"),
    ("unknown activation", GOOD.replace("tanh", "swish"), [], 1, "model.activation"),
    ("NaN weight std", GOOD.replace("activation: tanh", "activation: tanh, weight_std: .nan"), [], 1,
     "model.weight_std"),
    ("negative bias std", GOOD.replace("activation: tanh", "activation: tanh, bias_std: -1"), [], 1,
     "model.bias_std"),
    ("survival out of range", GOOD + "depth: {survival: 1.5}\n", [], 1, "depth.survival"),
    ("mask of wrong length", GOOD + "depth: {mask: [1, 0, 1]}\n", [], 1, "depth.mask"),
    ("unknown alpha schedule", GOOD + "residual: {schedule: cosine}\n", [], 1, "residual.schedule"),
    ("duplicate key", GOOD + "seed: 2\n", [], 1, "seed"),
    ("zero training samples", GOOD.replace("n_train: 40", "n_train: 0"), [], 1, "n_train"),
    ("unknown data source", GOOD.replace("synthetic_1d", "imagenet"), [], 1, "data.source"),
    ("unprojected width mismatch", GOOD + "fourier: {features: 4, project: false}\n", [], 1, None),
    ("missing config file", None, [os.path.join(tmp, "nope.yaml")], 1, "nope.yaml"),
    ("no config argument", None, [], 1, "CONFIG"),
    ("unknown option", GOOD, ["--fast"], 1, "--fast"),
    ("--set without value", GOOD, ["--set"], 1, "--set"),
    ("--set unknown key", GOOD, ["--set", "model.widht=3"], 2, "did you mean"),
    ("--set bad value", GOOD, ["--set", "grid.block_size=-1"], 2, "grid.block_size"),
    ("grid does not match ranks", GOOD + "", ["--set", "grid.rows=3", "--set", "grid.cols=1"], 2, "grid"),
    ("more ranks than rows allow", GOOD.replace("n_train: 40", "n_train: 10"),
     ["--set", "grid.rows=4", "--set", "grid.cols=1"], 4, "row block"),
    ("top_k larger than N", GOOD + "ntk: {top_k: 41}\n", [], 2, "top_k"),
    ("unknown eigensolver", GOOD + "eigensolver: {type: lanczos}\n", [], 1, "eigensolver.type"),
    ("output folder missing", GOOD.replace(OUT, os.path.join(tmp, "no", "dir", "o.h5")), [], 2, "no/dir"),
    ("output exists", GOOD.replace(OUT, exists), [], 2, "exists"),
    ("missing data file", hdf5_cfg(os.path.join(tmp, "absent.h5")), [], 2, "absent.h5"),
    ("data file not HDF5", hdf5_cfg(os.path.join(tmp, "garbage.h5")), [], 2, "garbage.h5"),
    ("NaN in x", hdf5_cfg(nan_file), [], 2, "x"),
    ("Inf in y", hdf5_cfg(inf_file), [], 4, "y"),
    ("x/y row mismatch", hdf5_cfg(mismatch_file), [], 2, "row"),
    ("x of rank 1", hdf5_cfg(rank1_file), [], 2, "x"),
    ("missing x dataset", hdf5_cfg(nox_file), [], 2, "x"),
    # corrupt files found by fuzz_hdf5 (docs/HARDENING.md): "x" claims 16-bit integers of 0-bit precision; a
    # superblock whose driver-info address is garbage (Open MPI's I/O layer printed its own
    # error line for it before rank 0 checked the file with HDF5's serial driver)
    ("0-bit integer element type", hdf5_cfg(fuzz_file("raw_zero_bit_integer.h5")), [], 2,
     "\"x\" has an unusable integer type"),
    ("corrupt superblock", hdf5_cfg(fuzz_file("raw_bad_driver_info.h5")), [], 2,
     "not an HDF5 file or unreadable"),
    # a compact "y" of 6 doubles that stores 0 bytes: HDF5 1.10's H5Dread segfaulted on it
    ("compact storage smaller than the shape", hdf5_cfg(fuzz_file("raw_compact_too_small.h5")),
     [], 2, "dataset \"y\" is corrupt"),
    # "y" of extent (8, 1048577) but maximum (8, 1): HDF5 sized a chunk index of gigabytes
    ("extent beyond the maximum extent", hdf5_cfg(fuzz_file("raw_extent_beyond_max.h5")), [], 2,
     "dataset \"y\" is corrupt"),
    # a damaged local heap: HDF5 itself segfaults in H5Lexists; the checker process takes it
    ("metadata HDF5 crashes on", hdf5_cfg(fuzz_file("raw_corrupt_local_heap.h5")), [], 2,
     "HDF5 crashed (signal 11, Segmentation fault) reading its metadata: the file is corrupt"),
    ("classification attribute not 0 or 1",
     hdf5_cfg(with_attr(h5data("cls2.h5", x_ok, np.eye(2)[np.arange(30) % 2]), "classification", 2), ", n_train: 0"),
     [], 2, "attribute \"classification\" must be the integer 0 or 1"),
    ("classification with one column",
     hdf5_cfg(with_attr(h5data("cls1.h5", x_ok, y_ok), "classification", 1), ", n_train: 0"), [], 2,
     "one-hot targets need k >= 2"),
    ("more rows asked than the file has", hdf5_cfg(h5data("ok.h5", x_ok, y_ok), ", n_train: 31"), [], 2, "n_train"),
    ("fashion class out of range", GOOD.replace("source: synthetic_1d, n_train: 40, n_test: 8",
                                                "source: fashion_mnist, n_train: 40, classes: [0, 12]"),
     [], 1, "data.classes"),
    ("fashion folder without files", GOOD.replace("source: synthetic_1d, n_train: 40, n_test: 8",
                                                  "source: fashion_mnist, n_train: 40, path: %s" % tmp),
     [], 2, "idx"),
    ("analytic fourier kernel unknown", GOOD + "analytic: {enabled: true, fourier: approximate}\n", [], 1,
     "analytic.fourier"),
    ("analytic quadrature order negative", GOOD + "analytic: {quadrature_order: -1}\n", [], 1,
     "analytic.quadrature_order"),
    ("analytic enumerate depth negative", GOOD + "analytic: {enumerate_depth: -1}\n", [], 1,
     "analytic.enumerate_depth"),
    ("analytic mask samples zero", GOOD + "analytic: {mask_samples: 0}\n", [], 1, "analytic.mask_samples"),
    ("analytic enabled not a boolean", GOOD + "analytic: {enabled: maybe}\n", [], 1, "analytic.enabled"),
    ("analytic quadrature order too large", GOOD + "analytic: {quadrature_order: 100000}\n", [], 1,
     "analytic.quadrature_order"),
    ("analytic kernel of trained Fourier features refused",
     GOOD + "analytic: {enabled: true}\n", ["--set", "fourier.trainable=true"], 2, "fourier.trainable"),
    ("train.steps negative", GOOD + "train: {steps: -1}\n", [], 1, "train.steps"),
    ("train.optimizer unknown", GOOD + "train: {steps: 5, optimizer: adam}\n", [], 1, "train.optimizer"),
    ("train.batch_size missing for sgd", GOOD + "train: {steps: 5, optimizer: sgd}\n", [], 1,
     "train.batch_size"),
    ("train.batch_size beyond N", GOOD + "train: {steps: 5, optimizer: sgd, batch_size: 41}\n", [], 2,
     "train.batch_size"),
    ("train.batch_size with gd", GOOD + "train: {steps: 5, batch_size: 8}\n", [], 1, "train.batch_size"),
    ("train.lr negative", GOOD + "train: {steps: 5, lr: -0.1}\n", [], 1, "train.lr"),
    ("train.lr not a number", GOOD + "train: {steps: 5, lr: fast}\n", [], 1, "train.lr"),
    ("train.lr_scale zero", GOOD + "train: {steps: 5, lr_scale: 0}\n", [], 1, "train.lr_scale"),
    ("train.lr_scale NaN", GOOD + "train: {steps: 5, lr_scale: .nan}\n", [], 1, "train.lr_scale"),
    ("train.measure unknown", GOOD + "train: {steps: 5, measure: sqrt}\n", [], 1, "train.measure"),
    ("train.measure_every zero", GOOD + "train: {steps: 5, measure_every: 0}\n", [], 1,
     "train.measure_every"),
    ("train.measure_points zero", GOOD + "train: {steps: 5, measure_points: 0}\n", [], 1,
     "train.measure_points"),
    ("train.measure_steps beyond T", GOOD + "train: {steps: 10, measure: list, measure_steps: [0, 11]}\n",
     [], 1, "train.measure_steps"),
    ("train.measure_steps negative", GOOD + "train: {steps: 10, measure: list, measure_steps: [-1]}\n",
     [], 1, "train.measure_steps"),
    ("train.measure list without steps", GOOD + "train: {steps: 10, measure: list}\n", [], 1,
     "train.measure_steps"),
    ("train.measure_steps without list", GOOD + "train: {steps: 10, measure_steps: [3]}\n", [], 1,
     "train.measure_steps"),
    ("train.divergence_factor below 1", GOOD + "train: {steps: 5, divergence_factor: 0.5}\n", [], 1,
     "train.divergence_factor"),
    ("train.checkpoint_every negative", GOOD + "train: {steps: 5, checkpoint_every: -1}\n", [], 1,
     "train.checkpoint_every"),
    ("train.checkpoint folder missing", GOOD + "train: {steps: 5, checkpoint: %s}\n"
     % os.path.join(tmp, "no", "c.ckpt"), [], 2, "train.checkpoint"),
    ("train.checkpoint a mapping", GOOD + "train: {steps: 5, checkpoint: {a: 1}}\n", [], 1,
     "train.checkpoint"),
    ("train section a scalar", GOOD + "train: 5\n", [], 1, "train"),
    # keys that scale memory, at extremes (issue 22): refused before any compute, in the
    # estimate's saturating 64-bit sums or by the shape and schedule limits
    ("train.steps 2^31-1 measured every step", GOOD + "train: {steps: 2147483647, measure: every, "
     "measure_every: 1}\n", [], 2, "measurement"),
    ("fourier.features 2^30 (2m beyond an int)", GOOD, ["--set", "fourier.features=1073741824"], 2,
     "fourier.features"),
    ("fourier.features 2^30-1 (memory)", GOOD, ["--set", "fourier.features=1073741823"], 2, "memory"),
    ("width 2^31-1", GOOD.replace("width: 16", "width: 2147483647"), [], 2, "memory"),
    ("width near 2^31", GOOD.replace("width: 16", "width: 2147483000"), [], 4, "memory"),
    ("data.n_train 2^31-1", GOOD.replace("n_train: 40", "n_train: 2147483647"), [], 2, "memory"),
    ("width 2^31-1 under a limit of 1e300 MiB", GOOD.replace("width: 16", "width: 2147483647"),
     ["--set", "memory.limit_mb=1e300"], 2, "too large for any machine"),
    ("--resume without training", GOOD, ["--resume"], 2, "--resume"),
    ("--resume without a checkpoint", GOOD + "train: {steps: 5}\n", ["--resume"], 2, "checkpoint"),
]

def refused(name, argv, np_, words):
    """`ntkspec ARGV` on np_ ranks is refused: exit 2, one line naming `words`, nothing
    written and an existing file left as it was."""
    for p in (OUT, OUT + ".partial"):
        if os.path.exists(p):
            os.remove(p)
    with open(exists, "w") as f:
        f.write("previous result\n")
    p = H.run(argv, np=np_, timeout=300)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    R.check(p.returncode == 2, "%s: exit status %d (stderr: %s)" % (name, p.returncode, p.stderr.strip()))
    R.check(len(lines) == 1 and lines[0].startswith("ntkspec: error: "),
            "%s: one error line, got %r" % (name, lines))
    if words:
        R.check(any(words in ln for ln in lines), "%s: message %r lacks %r" % (name, lines, words))
    R.check(not os.path.exists(OUT) and not os.path.exists(OUT + ".partial"),
            "%s: output left behind" % name)
    with open(exists) as f:
        R.check(f.read() == "previous result\n", "%s: an existing file was touched" % name)


R.check(len(CASES) >= 25, "at least 25 cases")
for i, (name, text, args, np_, words) in enumerate(CASES):
    argv = ["run"]
    if text is not None:
        argv.append(H.write_config(tmp, "case%02d.yaml" % i, text))
    refused(name, argv + args, np_, words)

# the sweep's own refusals, agreed by both ranks (a rank refusing alone would abort the job
# with "[rank 0]")
SWEEP_CASES = [
    ("sweep without --widths", [], "--widths"),
    ("sweep with one width", ["--widths", "16"], "two widths"),
    ("sweep --seeds 0", ["--widths", "16,32", "--seeds", "0"], "--seeds"),
    ("sweep --top-k beyond N", ["--widths", "16,32", "--top-k", "999"], "--top-k"),
    ("sweep fourier.project false", ["--widths", "16,32", "--set", "fourier.project=false"], "fourier.project"),
]
cfg = H.write_config(tmp, "sweep.yaml", GOOD)
for name, args, words in SWEEP_CASES:
    refused(name, ["sweep", cfg] + args, 2, words)

sys.exit(R.finish())
