"""Width study and the analytic command, end to end.

- `ntkspec sweep` on a synthetic set with N = 256: the fitted log-log slope of the
  relative distance ||Theta - Theta_inf||_F / ||Theta_inf||_F against the width lies in
  [-0.6, -0.4] for relu and for tanh, and the file holds /sweep/* with the right shapes.
- `ntkspec analytic`: Theta_inf is exactly symmetric, PSD, and identical for 1, 2 and 4
  ranks (relative 1e-12); its eigenvalues match LAPACK."""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

R = H.Report()
tmp = H.tmpdir()

SWEEP = """seed: 3
model: {width: 64, depth: 2, activation: relu}
fourier: {features: 16, scale: 0.5}
data: {source: sphere, n_train: 256, dim: 4}
grid: {block_size: 32}
output: {save_data: false}
"""
cfg = H.write_config(tmp, "sweep.yaml", SWEEP)
widths = [64, 128, 256, 512, 1024]
for act in ["relu", "tanh"]:
    out = os.path.join(tmp, "sweep_%s.h5" % act)
    p = H.run(["sweep", cfg, "--widths", ",".join(map(str, widths)), "--seeds", "3", "--top-k", "8",
               "--set", "model.activation=" + act, "--set", "output.path=" + out], np=2)
    R.check(p.returncode == 0, "sweep %s: %s" % (act, p.stderr))
    if p.returncode:
        continue
    with h5py.File(out, "r") as f:
        s = f["sweep"]
        slope = s.attrs["slope"]
        print("%s: slope %.4f, 95%% CI [%.4f, %.4f]" % (act, slope, s.attrs["slope_ci_low"], s.attrs["slope_ci_high"]))
        R.check(-0.6 <= slope <= -0.4, "%s slope %.4f in [-0.6, -0.4]" % (act, slope))
        R.check(s.attrs["slope_ci_low"] < slope < s.attrs["slope_ci_high"], "%s CI brackets the slope" % act)
        R.check(s["widths"][()].tolist() == widths, "widths")
        R.check(s["distance"].shape == (5, 3) and s["eigenvalue_error"].shape == (5, 3), "distance shapes")
        R.check(s["top_eigenvalues"].shape == (5, 3, 8), "top eigenvalue shape")
        m = s["distance_mean"][()]
        R.check(np.all(np.diff(m) < 0), "%s: mean distance decreases with width %s" % (act, m))
        # the slope agrees with a fit done here on the stored distances
        x = np.repeat(np.log(widths), 3)
        y = np.log(s["distance"][()].reshape(-1))
        R.check(abs(np.polyfit(x, y, 1)[0] - slope) < 1e-10, "%s: slope recomputed" % act)
        R.check(f["analytic/ntk"].shape == (256, 256), "analytic kernel stored")
    R.check("log-log slope" in p.stdout, "sweep prints the table and the slope")

# bad sweep arguments are input errors
for args, words in [(["--widths", "64"], "at least two"), (["--widths", "64,x"], "--widths"),
                    (["--widths", "64,128", "--seeds", "0"], "--seeds"), ([], "--widths")]:
    p = H.run(["sweep", cfg] + args + ["--set", "output.path=" + os.path.join(tmp, "bad.h5")], np=1)
    R.check(p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1,
            "sweep %s -> status 2 with %r (%d: %s)" % (args, words, p.returncode, p.stderr))

# the analytic command: identical for 1, 2 and 4 ranks
ANALYTIC = """seed: 2
model: {width: 64, depth: 4, activation: gelu}
fourier: {features: 8, scale: 0.7}
depth: {survival: 0.7}
data: {source: teacher, n_train: 37, dim: 3}
grid: {block_size: 5}
"""
acfg = H.write_config(tmp, "analytic.yaml", ANALYTIC)
kernels = {}
for np_, rows, cols in [(1, 1, 1), (2, 1, 2), (4, 2, 2), (4, 4, 1)]:
    out = os.path.join(tmp, "analytic_%d_%d.h5" % (np_, rows))
    p = H.run(["analytic", acfg, "--set", "grid.rows=%d" % rows, "--set", "grid.cols=%d" % cols,
               "--set", "output.path=" + out], np=np_)
    R.check(p.returncode == 0, "analytic at %d ranks: %s" % (np_, p.stderr))
    if p.returncode == 0:
        with h5py.File(out, "r") as f:
            kernels[(np_, rows)] = (f["analytic/ntk"][()], f["analytic/nngp"][()], f["analytic/eigenvalues"][()])
            R.check(f.attrs["status"] == "complete", "analytic file complete")
if (1, 1) in kernels:
    K, G, w = kernels[(1, 1)]
    R.check(np.array_equal(K, K.T) and np.array_equal(G, G.T), "Theta_inf and NNGP exactly symmetric")
    lam = np.linalg.eigvalsh(K)[::-1]
    R.check(lam[-1] >= -1e-12 * lam[0], "Theta_inf PSD")
    R.check(np.max(np.abs(lam - w)) <= 1e-10 * lam[0], "analytic eigenvalues vs LAPACK")
    for key, (K2, G2, _) in kernels.items():
        rel = np.linalg.norm(K2 - K) / np.linalg.norm(K)
        R.check(rel <= 1e-12, "Theta_inf at %s vs 1 rank: %.3e" % (key, rel))
sys.exit(R.finish())
