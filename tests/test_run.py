"""End-to-end: `ntkspec run` at 1, 2 and 4 ranks on every grid shape gives the same
eigenvalues (1e-10), the same kernel, parameters and data; the eigenvalues match LAPACK
(numpy's eigvalsh = dsyevd) on the written kernel; the kernel matches an independent
numpy recomputation (finite-difference Jacobian of the network rebuilt from the saved
parameters, as MODEL.md defines it); and the file carries the names of MODEL.md."""
import math
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

R = H.Report()
tmp = H.tmpdir()

CONFIG = """
seed: 5
model: {width: 16, depth: 2, activation: tanh, weight_std: 1.2, bias_std: 0.3}
fourier: {features: 4, scale: 0.7}
residual: {alpha: 0.7, schedule: constant}
depth: {survival: 0.8, schedule: linear}
data: {source: teacher, n_train: 23, n_test: 5, dim: 3, outputs: 2}
grid: {block_size: 4}
output: {save_data: true, save_params: true, save_ntk: true, save_eigenvectors: true}
"""
cfg = H.write_config(tmp, "run.yaml", CONFIG)

layouts = [(1, 1, 1), (2, 2, 1), (2, 1, 2), (4, 2, 2), (4, 4, 1), (4, 1, 4)]
results = {}
for np_, r, c in layouts:
    path = os.path.join(tmp, "out_%d_%dx%d.h5" % (np_, r, c))
    p = H.run(["run", cfg, "--set", "grid.rows=%d" % r, "--set", "grid.cols=%d" % c,
               "--set", "output.path=" + path], np=np_)
    R.check(p.returncode == 0, "run %dx%d exit %d: %s" % (r, c, p.returncode, p.stderr))
    R.check(os.path.exists(path) and not os.path.exists(path + ".partial"),
            "%s complete and no .partial left" % path)
    if p.returncode == 0:
        results[(r, c)] = h5py.File(path, "r")

ref = results.get((1, 1))
if ref is None:
    sys.exit(R.finish())

w_ref = ref["trajectory/eigenvalues"][0]
K_ref = ref["trajectory/ntk"][0]
for key, f in results.items():
    w = f["trajectory/eigenvalues"][0]
    R.check(np.max(np.abs(w - w_ref)) <= 1e-10 * w_ref[0],
            "eigenvalues %s vs 1x1: %.3e" % (str(key), np.max(np.abs(w - w_ref)) / w_ref[0]))
    K = f["trajectory/ntk"][0]
    R.check(np.linalg.norm(K - K_ref) <= 1e-12 * np.linalg.norm(K_ref),
            "ntk %s vs 1x1: %.3e" % (str(key), np.linalg.norm(K - K_ref) / np.linalg.norm(K_ref)))
    for name in ["params/step_0/W0", "params/step_0/W", "params/step_0/V", "params/step_0/G",
                 "params/step_0/b", "data/x_train", "data/y_train", "data/x_test"]:
        R.check(np.array_equal(f[name][()], ref[name][()]), "%s %s identical to 1x1" % (key, name))
    R.check(f.attrs["process_grid"] == "%dx%d" % tuple(key), "process_grid attribute %s" % (key,))

# LAPACK (dsyevd through numpy) on the gathered kernel
lam = np.linalg.eigvalsh(K_ref)[::-1]
R.check(np.max(np.abs(lam - w_ref)) <= 1e-10 * lam[0], "eigenvalues vs dsyevd: %.3e" %
        (np.max(np.abs(lam - w_ref)) / lam[0]))
R.check(np.array_equal(K_ref, K_ref.T), "ntk exactly symmetric")
R.check(lam[-1] >= -1e-12 * lam[0], "ntk PSD (lambda_min %.3e)" % lam[-1])
# eigenvectors: Theta v = lambda v, descending order
V = ref["trajectory/eigenvectors"][0]
res = np.linalg.norm(K_ref @ V - V * w_ref[None, :]) / (np.linalg.norm(K_ref) )
R.check(res < 1e-10, "eigenvector residual %.3e" % res)
R.check(np.all(np.diff(w_ref) <= 0), "eigenvalues descending")

# independent recomputation from the saved parameters and data (MODEL.md, numpy, FD Jacobian)
P = {k: ref["params/step_0/" + k][()] for k in ["G", "W0", "b0", "W", "b", "V", "b_out"]}
X = ref["data/x_train"][()]
sw, sb, s, L, n = 1.2, 0.3, 0.7, 2, 16
alpha = [0.7, 0.7]
p_l = [1 - (l / L) * (1 - 0.8) for l in range(1, L + 1)]


def forward(P):
    u = 2 * math.pi * s * X @ P["G"].T
    phi = np.concatenate([np.sin(u), np.cos(u)], axis=1)
    h = sw / math.sqrt(phi.shape[1]) * phi @ P["W0"].T + sb * P["b0"]
    for l in range(L):
        z = sw / math.sqrt(n) * h @ P["W"][l].T + sb * P["b"][l]
        h = h + p_l[l] * alpha[l] * np.tanh(z)
    return sw / math.sqrt(n) * h @ P["V"].T + sb * P["b_out"]


R.check(np.abs(forward(P)).max() > 0, "network output nonzero")
cols = []
eps = 1e-6
for name in ["W0", "b0", "W", "b", "V", "b_out"]:  # G is fixed (fourier.trainable false)
    flat = P[name].reshape(-1)
    for q in range(flat.size):
        old = flat[q]
        flat[q] = old + eps
        fp = forward(P)
        flat[q] = old - eps
        fm = forward(P)
        flat[q] = old
        cols.append((fp - fm) / (2 * eps))
J = np.stack(cols, axis=-1)  # N x k x P
K_np = np.einsum("ncp,mcp->nm", J, J) / J.shape[1]
rel = np.linalg.norm(K_np - K_ref) / np.linalg.norm(K_ref)
R.check(rel < 1e-6, "ntk vs independent numpy finite-difference recomputation: %.3e" % rel)

# names of MODEL.md
a = ref.attrs
for name in ["format", "format_version", "version", "config", "status", "command_line", "mpi_size",
             "process_grid", "block_size", "eigensolver", "seed", "library_versions",
             "slurm_job_id", "start_utc", "end_utc"]:
    R.check(name in a, "root attribute %s" % name)
R.check(a["format"] == "ntkspec" and a["status"] == "complete", "format/status attributes")
# the default solver 'auto' is recorded as configured, and what it ran as (N = 23: pdsyevr)
R.check(a["eigensolver"] == "auto" and a.get("eigensolver_used") == "pdsyevr",
        "eigensolver %s, used %s" % (a["eigensolver"], a.get("eigensolver_used")))
R.check(ref["trajectory/step"][()].tolist() == [0], "trajectory/step == [0]")
shapes = {"data/x_train": (23, 3), "data/y_train": (23, 2), "data/x_test": (5, 3),
          "params/step_0/G": (4, 3), "params/step_0/W0": (16, 8), "params/step_0/b0": (16,),
          "params/step_0/W": (2, 16, 16), "params/step_0/b": (2, 16), "params/step_0/V": (2, 16),
          "params/step_0/b_out": (2,), "trajectory/eigenvalues": (1, 23), "trajectory/ntk": (1, 23, 23)}
for name, shp in shapes.items():
    R.check(ref[name].shape == shp, "%s shape %s, expected %s" % (name, ref[name].shape, shp))
for name in ["lambda_max", "lambda_min", "condition_number", "effective_rank", "trace",
             "kernel_target_alignment", "train_loss", "test_loss"]:
    R.check(ref["trajectory/" + name].shape == (1,), "trajectory/%s shape (1,)" % name)
R.check(abs(ref["trajectory/trace"][0] - np.trace(K_ref)) <= 1e-12 * np.trace(K_ref), "trace metric")
R.check(abs(ref["trajectory/lambda_max"][0] - lam[0]) <= 1e-10 * lam[0], "lambda_max metric")
Y = ref["data/y_train"][()]
align = np.sum(Y * (K_ref @ Y)) / (np.linalg.norm(K_ref) * np.sum(Y * Y))
R.check(abs(ref["trajectory/kernel_target_alignment"][0] - align) < 1e-12, "alignment metric")
lt = ref["trajectory/layer_trace"][0]
R.check(abs(lt.sum() - np.trace(K_ref)) <= 1e-10 * np.trace(K_ref), "layer traces sum to the trace")

# top-K with pdsyevd and the jacobian method give the same leading eigenvalues
path = os.path.join(tmp, "topk.h5")
p = H.run(["run", cfg, "--set", "ntk.top_k=5", "--set", "ntk.method=jacobian", "--set",
           "eigensolver.type=pdsyevd", "--set", "output.path=" + path], np=2)
R.check(p.returncode == 0, "top-k run: " + p.stderr)
if p.returncode == 0:
    with h5py.File(path, "r") as f:
        w5 = f["trajectory/eigenvalues"][0]
        R.check(w5.shape == (5,) and np.max(np.abs(w5 - w_ref[:5])) <= 1e-10 * w_ref[0],
                "top-5 (pdsyevd, jacobian) vs all (pdsyevr, structured)")
        R.check(math.isnan(f["trajectory/lambda_min"][0]), "lambda_min is NaN for a top-K spectrum")

# --dry-run: the effective configuration, the grid and the memory estimate; no file
path = os.path.join(tmp, "dry.h5")
p = H.run(["run", cfg, "--dry-run", "--set", "output.path=" + path], np=4)
R.check(p.returncode == 0, "dry run: " + p.stderr)
R.check("process grid: 2 x 2" in p.stdout and "estimated peak" in p.stdout and "model:" in p.stdout,
        "dry run prints config, grid and memory:\n" + p.stdout)
R.check("width: 16" in p.stdout, "dry run shows the effective (resolved) values")
R.check(not os.path.exists(path) and not os.path.exists(path + ".partial"), "dry run writes no file")

for f in results.values():
    f.close()
sys.exit(R.finish())
