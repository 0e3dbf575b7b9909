"""grid.block_size 0 (the default: automatic) and an automatic grid (issue 21, item 3):
small problems on many ranks just work, and the layout does not change the results.
  - a 24-sample training-free run with no grid keys on 1, 2 and 4 ranks: exit 0, the
    recorded block size gives every process row a block (24 samples on 2 rows: blocks of
    at most 12), and the spectrum of 2 and 4 ranks equals the 1-rank one to 1e-12
    (relative to the largest eigenvalue);
  - a problem that fills the grid keeps the block size 64;
  - the refusal stays where the user fixed both the block size and the grid;
  - the analytic command on 24 samples and 4 ranks runs too."""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

R = H.Report()
tmp = H.tmpdir()

SMALL = """seed: 3
model: {width: 32, depth: 2, activation: relu}
fourier: {features: 8}
data: {source: synthetic_1d, n_train: 24, n_test: 0}
output: {save_data: false}
"""


def run(name, text, np_, *extra):
    cfg = H.write_config(tmp, name + ".yaml", text)
    out = os.path.join(tmp, "%s_np%d.h5" % (name, np_))
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + out] + list(extra), np=np_, timeout=300)
    return p, out


spectra = {}
for np_ in (1, 2, 4):
    p, out = run("small", SMALL, np_)
    R.check(p.returncode == 0, "24 samples on %d ranks, no grid keys: rc %d: %s" % (np_, p.returncode, p.stderr))
    if p.returncode != 0:
        continue
    with h5py.File(out, "r") as f:
        nb = int(f.attrs["block_size"])
        pr, pc = (int(v) for v in f.attrs["process_grid"].decode().split("x")) \
            if isinstance(f.attrs["process_grid"], bytes) else (int(v) for v in f.attrs["process_grid"].split("x"))
        spectra[np_] = np.array(f["trajectory/eigenvalues"][0])
    R.check(pr * pc == np_, "%d ranks: grid %dx%d" % (np_, pr, pc))
    R.check(-(-24 // nb) >= pr and -(-32 // nb) >= pc,
            "%d ranks: block %d gives each of the %dx%d processes a block" % (np_, nb, pr, pc))
    if np_ == 1:
        R.check(nb == 64, "1 rank keeps the block size 64, got %d" % nb)
if 1 in spectra:
    ref = spectra[1]
    R.check(len(ref) == 24 and ref[0] > 0, "24 eigenvalues, largest positive: %s" % ref[:3])
    for np_ in (2, 4):
        if np_ in spectra:
            err = np.max(np.abs(spectra[np_] - ref)) / ref[0]
            R.check(err <= 1e-12, "%d ranks vs 1 rank: max relative difference %.2e <= 1e-12" % (np_, err))

# a problem that fills the 2 x 1 grid with blocks of 64 keeps them
p, out = run("large", SMALL.replace("n_train: 24", "n_train: 160"), 2)
R.check(p.returncode == 0, "160 samples on 2 ranks: rc %d: %s" % (p.returncode, p.stderr))
if p.returncode == 0:
    with h5py.File(out, "r") as f:
        R.check(int(f.attrs["block_size"]) == 64, "160 samples on 2 ranks: block 64, got %s" % f.attrs["block_size"])

# an explicit block size with no grid keys still runs (the block size is kept) ...
p, out = run("fixed_nb", SMALL + "grid: {block_size: 8}\n", 2)
R.check(p.returncode == 0, "block_size 8 on 2 ranks: rc %d: %s" % (p.returncode, p.stderr))
if p.returncode == 0:
    with h5py.File(out, "r") as f:
        R.check(int(f.attrs["block_size"]) == 8, "explicit block size kept: %s" % f.attrs["block_size"])

# ... and fixing both the block size and the grid keeps the refusal: one line, rc 2, no file
p, out = run("fixed_all", SMALL + "grid: {rows: 2, cols: 1, block_size: 64}\n", 2)
lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
R.check(p.returncode == 2 and len(lines) == 1 and "row block" in lines[0],
        "block size and grid both fixed: refused (rc %d): %r" % (p.returncode, lines))
R.check(not os.path.exists(out) and not os.path.exists(out + ".partial"), "refused run left no file")

# a fixed grid with an automatic block size chooses the block
p, out = run("fixed_grid", SMALL + "grid: {rows: 4, cols: 1}\n", 4)
R.check(p.returncode == 0, "grid 4x1 fixed, block automatic: rc %d: %s" % (p.returncode, p.stderr))

# the analytic command on the same 24 samples and 4 ranks
cfg = H.write_config(tmp, "an.yaml", SMALL)
out = os.path.join(tmp, "an.h5")
p = H.run(["analytic", cfg, "-q", "--set", "output.path=" + out], np=4, timeout=300)
R.check(p.returncode == 0, "analytic, 24 samples on 4 ranks: rc %d: %s" % (p.returncode, p.stderr))

sys.exit(R.finish())
