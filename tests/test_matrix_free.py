"""ntk.method matrix_free end to end (issue 18): the top-16 eigenvalues from products Theta v
(SLEPc, docs/METRICS.md "Matrix-free measurements") against the dense structured kernel's
(PDSYEVR) for relu, tanh, gelu, stochastic depth (evaluation network and a drawn mask) and
trainable Fourier features, on 1, 2 and 4 ranks (N = 128; 2048 on 2 ranks in eigen_long, ctest
matrix_free_2048); the exact trace and layer traces; every
recomputed residual below the tolerance; the metrics that need the whole kernel NaN and
named in the root attribute `not_computed`; a training run's lambda_max trajectory and
kernel-regime train and test predictions against the dense run's; bad keys refused in one line (exit
status 2); the memory refusal of a dense run naming the matrix-free method and its
estimate; --stop-at and --resume of a matrix-free training run (its checkpoint has no
Theta_0) equal to an uninterrupted run; the Hutchinson estimate of ||Theta||_F (deflated by the
top 16) against the exact norm.  Sections: eigen train resume hutchinson refuse memory (eigen_long: N = 2048, run only when named).

Tolerances: the eigensolver stops at ||Theta u - lambda u|| <= 1e-10 lambda; for a symmetric
operator the eigenvalue error is then about (1e-10 lambda)^2 / gap plus the rounding of a
product (~1e-14 relative), so 1e-10 relative leaves a wide margin that a missed, doubled or
misordered eigenvalue (off by a gap, >= 1e-4 here) cannot meet.  The data are the teacher's
8-dimensional inputs, whose top 16 eigenvalues lie within a factor 4 of lambda_max: with 1-D
inputs the 16th sinks to the rounding floor (eps N lambda_max), where neither solver's
value means anything to 1e-10.  The trace is a sum of
squared Jacobian norms against the dense kernel's diagonal: rounding only, 1e-12."""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

R = H.Report()
tmp = H.tmpdir()
section = H.section
TOL = 1e-10  # eigensolver.tol's default

BASE = """seed: 3
model: {{width: {width}, depth: {depth}, activation: {act}}}
fourier: {{features: 16, trainable: {trainable}}}
depth: {{survival: {survival}}}
data: {{source: teacher, dim: 8, n_train: {n}, n_test: 0}}
ntk: {{top_k: 16, network: {network}}}
output: {{save_data: false}}
"""

NAN_METRICS = ["lambda_min", "condition_number", "effective_rank", "frobenius_norm",
               "kernel_target_alignment", "drift", "ntk_change_norm2"]


def run_cfg(name, text, np_=2, extra=(), expect=0):
    return H.run_cfg(R, tmp, name, text, np_, extra, expect)


def traj(path):
    with h5py.File(path, "r") as f:
        t = {k: f["trajectory"][k][()] for k in f["trajectory"]}
        t["@"] = dict(f.attrs)
        return t


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def compare(name, dense, mf, rtol=TOL):
    """mf against dense: eigenvalues and lambda_max to rtol, traces to 1e-12, residuals below
    the tolerance, the N^2 metrics NaN and named."""
    e = rel(mf["eigenvalues"], dense["eigenvalues"])
    R.check(e <= rtol, "%s: top-16 eigenvalues differ by %.3e relative" % (name, e))
    e = rel(mf["lambda_max"], dense["lambda_max"])
    R.check(e <= rtol, "%s: lambda_max differs by %.3e relative" % (name, e))
    for k in ("trace", "layer_trace"):
        d, m = np.asarray(dense[k], float), np.asarray(mf[k], float)
        err = float(np.max(np.abs(d - m)) / np.max(np.abs(d)))
        R.check(err <= 1e-12, "%s: %s differs by %.3e" % (name, k, err))
    res, lam = mf["eigenpair_residual"], mf["eigenvalues"]
    R.check(res.shape == lam.shape and np.all(res <= TOL * lam),
            "%s: residuals %s not all below %.0e lambda" % (name, res.max(), TOL))
    R.check(np.all(mf["eigensolver_products"] >= 16), "%s: products %s" % (name, mf["eigensolver_products"]))
    # the targets' Rayleigh quotient is the dense alignment times ||Theta||_F
    q = dense["kernel_target_alignment"] * dense["frobenius_norm"]
    e = rel(mf["target_rayleigh_quotient"], q)
    R.check(e <= 1e-12, "%s: target Rayleigh quotient differs by %.3e" % (name, e))
    for k in NAN_METRICS:
        R.check(np.all(np.isnan(mf[k])), "%s: %s is NaN" % (name, k))
        R.check(k in str(mf["@"].get("not_computed", "")), "%s: not_computed names %s" % (name, k))
    R.check(np.all(mf["weyl_ok"] == -1), "%s: weyl_ok -1 (not checked)" % name)
    R.check(np.all(np.isnan(mf["frobenius_norm_stderr"])), "%s: no probes, no standard error" % name)
    for k in ("eigenpair_residual", "eigensolver_products", "target_rayleigh_quotient",
              "frobenius_norm_stderr"):
        R.check(k not in dense, "%s: the dense file has no %s" % (name, k))


def pair(name, np_, n, **kw):
    shape = dict(width=64, depth=3, act="relu", trainable="false", survival=1.0, network="eval", n=n)
    shape.update(kw)
    text = BASE.format(**shape)
    _, dpath, _ = run_cfg(name + "_dense", text, np_)
    _, mpath, _ = run_cfg(name + "_mf", text, np_, ["--set", "ntk.method=matrix_free"])
    if os.path.exists(dpath) and os.path.exists(mpath):
        compare(name, traj(dpath), traj(mpath))


if section("eigen"):
    pair("relu", 2, 128)
    pair("tanh", 1, 128, act="tanh")
    pair("gelu", 4, 64, act="gelu", width=32, depth=2)
    pair("stochastic_depth_eval", 2, 128, survival=0.6)
    pair("stochastic_depth_mask", 2, 128, survival=0.6, network="mask")
    pair("fourier_trainable", 2, 128, act="tanh", trainable="true")

if section("eigen_long", only=sys.argv[1:] or ["none"]):
    # the size: N = 2048 (ctest matrix_free_2048)
    for act in ("relu", "tanh", "gelu"):
        pair("long_" + act, 2, 2048, act=act, width=128)
    pair("long_stochastic_depth", 2, 2048, survival=0.6, width=128)
    pair("long_fourier_trainable", 2, 2048, act="tanh", trainable="true", width=128)

if section("train"):
    # 30 GD steps measured every 10: the top-16 with vectors, the prediction from Theta_0's
    text = BASE.format(width=64, depth=2, act="tanh", trainable="false", survival=1.0,
                       network="eval", n=128).replace("n_test: 0", "n_test: 32") + \
        "train: {steps: 30, lr_scale: 0.5, measure: every, measure_every: 10}\n"
    _, dpath, _ = run_cfg("train_dense", text, 2)
    _, mpath, _ = run_cfg("train_mf", text, 2, ["--set", "ntk.method=matrix_free"])
    if os.path.exists(dpath) and os.path.exists(mpath):
        d, m = traj(dpath), traj(mpath)
        R.check(list(m["step"]) == [0, 10, 20, 30], "train: steps %s" % list(m["step"]))
        e = rel(m["lambda_max"], d["lambda_max"])
        R.check(e <= TOL, "train: lambda_max trajectory differs by %.3e relative" % e)
        e = rel(m["eigenvalues"], d["eigenvalues"])
        R.check(e <= TOL, "train: eigenvalue trajectory differs by %.3e relative" % e)
        for k in ("train_loss", "test_loss", "stability_ratio", "predicted_train_loss",
                  "predicted_test_loss"):
            e = rel(m[k], d[k])
            R.check(e <= 1e-9, "train: %s differs by %.3e relative" % (k, e))
        # energies along eigenvectors: as accurate as the vectors, ~ residual / gap
        e = float(np.max(np.abs(m["residual_energy"] - d["residual_energy"])) / np.max(d["residual_energy"]))
        R.check(e <= 1e-6, "train: residual energy differs by %.3e" % e)
        e = float(np.max(np.abs(m["eigenvalue_drift"] - d["eigenvalue_drift"])))
        R.check(e <= 1e-9, "train: eigenvalue drift differs by %.3e" % e)
        R.check(np.all(m["eigenpair_residual"] <= TOL * m["eigenvalues"]), "train: residuals below tol")
        R.check(m["@"].get("learning_rate") is not None and
                abs(m["@"]["learning_rate"] / d["@"]["learning_rate"] - 1) <= 1e-10,
                "train: the learning rate from lambda_max(Theta_0)")

if section("resume"):
    # a checkpoint without Theta_0 (matrix-free keeps none): stopped at step 1000 (--stop-at:
    # the same checkpoint path a signal takes, at a step that does not depend on timing; a
    # SIGTERM on reading the step-1000 line arrived after the end on a fast CI machine),
    # --resume, and the trajectory equals an uninterrupted run's bitwise
    text = BASE.format(width=32, depth=2, act="tanh", trainable="false", survival=1.0,
                       network="eval", n=64).replace("top_k: 16", "top_k: 8") + \
        "train: {steps: 3000, lr_scale: 0.5, measure: every, measure_every: 100}\n"
    _, full, _ = run_cfg("resume_full", text, 2, ["--set", "ntk.method=matrix_free"])
    cfg = H.write_config(tmp, "resume_part.yaml", text)
    part = os.path.join(tmp, "resume_part.h5")
    args = ["run", cfg, "--set", "ntk.method=matrix_free", "--set", "output.path=" + part]
    p = H.run(args + ["--stop-at", "1000"], np=2, timeout=300)
    out = p.stdout + p.stderr
    R.check(p.returncode == 3, "resume: --stop-at exits 3 (%d)" % p.returncode)
    R.check("interrupted at step 1000" in out, "resume: the run was interrupted at step 1000: " + out[-800:])
    p = H.run(args + ["--resume"], np=2, timeout=300)
    R.check(p.returncode == 0, "resume: --resume: " + p.stderr[-800:])
    if os.path.exists(full) and os.path.exists(part):
        a, b = traj(full), traj(part)
        for k in ("step", "eigenvalues", "eigenpair_residual", "train_loss", "predicted_train_loss",
                  "residual_energy"):
            R.check(np.array_equal(a[k], b[k]), "resume: %s equal to the uninterrupted run's" % k)
        R.check(b["@"].get("resume_count") == 1, "resume: resume_count 1")

if section("hutchinson"):
    # eigensolver.frobenius_probes: ||Theta||_F from the top 16 eigenvalues and Rademacher
    # probes of the deflated rest, against the dense kernel's exact norm.  The probes are a
    # function of (seed, sample, probe, step), so the estimate is fixed for a configuration
    # and the same on any rank count; the z-score bound 4 is for a fixed draw that a
    # correct estimator passes with probability > 0.9999.  The deflation is what makes the
    # error small: here the standard error is 0.6 % of the norm with 8 probes and 0.2 % with
    # 64 (the check: below 2 %), where without it the top eigenvalue alone would give about
    # sqrt(2) lambda_1^2 per probe, over 50 % of ||Theta||_F^2 with 8 probes
    text = BASE.format(width=128, depth=2, act="relu", trainable="false", survival=1.0,
                       network="eval", n=256)
    _, dpath, _ = run_cfg("hutch_dense", text, 1)
    runs = {}
    for s_ in (8, 64):
        for np_ in (1, 2):
            _, path, _ = run_cfg("hutch_%d_%d" % (s_, np_), text, np_,
                                 ["--set", "ntk.method=matrix_free", "--set", "eigensolver.frobenius_probes=%d" % s_])
            if os.path.exists(path):
                runs[s_, np_] = traj(path)
    if os.path.exists(dpath) and len(runs) == 4:
        d = traj(dpath)
        fro, al, er = (float(d[k][0]) for k in ("frobenius_norm", "kernel_target_alignment", "effective_rank"))
        for (s_, np_), m in sorted(runs.items()):
            tag = "%d probes, %d ranks" % (s_, np_)
            est, se = float(m["frobenius_norm"][0]), float(m["frobenius_norm_stderr"][0])
            R.check(se > 0 and se / fro < 0.02, "%s: standard error %.3e of %.6e" % (tag, se, fro))
            R.check(abs(est - fro) <= 4 * se, "%s: ||Theta||_F %.9e against %.9e (z = %.2f)"
                    % (tag, est, fro, (est - fro) / se if se > 0 else float("inf")))
            # the alignment is the Rayleigh quotient over the norm, the effective rank the
            # trace squared over its square: relative errors 1 and 2 times the norm's
            e = abs(float(m["kernel_target_alignment"][0]) / al - 1)
            R.check(e <= 4 * se / fro + 1e-12, "%s: alignment differs by %.2e relative" % (tag, e))
            e = abs(float(m["effective_rank"][0]) / er - 1)
            R.check(e <= 8 * se / fro + 1e-12, "%s: effective rank differs by %.2e relative" % (tag, e))
            att_nc, att_est = str(m["@"].get("not_computed", "")), str(m["@"].get("estimated", ""))
            for k in ("frobenius_norm", "kernel_target_alignment", "effective_rank"):
                R.check(k not in att_nc and k in att_est, "%s: %s named estimated, not 'not computed'" % (tag, k))
            R.check("%d probes" % s_ in att_est, "%s: the attribute gives the probes: %s" % (tag, att_est))
            R.check("lambda_min" in att_nc and np.isnan(m["lambda_min"][0]), "%s: lambda_min still NaN" % tag)
        for s_ in (8, 64):
            a, b = runs[s_, 1], runs[s_, 2]
            for k in ("frobenius_norm", "frobenius_norm_stderr", "kernel_target_alignment", "effective_rank"):
                e = rel(b[k], a[k])
                R.check(e <= 1e-10, "%d probes: %s on 2 ranks differs by %.2e from 1 rank" % (s_, k, e))
        R.check(runs[64, 1]["frobenius_norm_stderr"][0] < runs[8, 1]["frobenius_norm_stderr"][0],
                "more probes, a smaller standard error")

if section("refuse"):
    cfg = H.write_config(tmp, "refuse.yaml", BASE.format(width=32, depth=1, act="relu", trainable="false",
                                                         survival=1.0, network="eval", n=64))
    out = os.path.join(tmp, "refused.h5")
    cases = [
        (["--set", "ntk.method=matrix_free", "--set", "ntk.top_k=0"], ["ntk.top_k", "matrix_free"]),
        (["--set", "ntk.method=matrix_free", "--set", "output.save_ntk=true"], ["output.save_ntk"]),
        (["--set", "ntk.method=matrix_free", "--set", "eigensolver.ncv=16"], ["eigensolver.ncv", "17 .. 64"]),
        (["--set", "eigensolver.matrix_free=davidson"], ["eigensolver.matrix_free", "krylovschur"]),
        (["--set", "eigensolver.tol=0"], ["eigensolver.tol"]),
        (["--set", "eigensolver.max_it=-3"], ["eigensolver.max_it"]),
        (["--set", "ntk.method=matrix_free", "--set", "eigensolver.frobenius_probes=-1"],
         ["eigensolver.frobenius_probes"]),
        (["--set", "ntk.method=matrix_free_please"], ["ntk.method", "matrix_free"]),
    ]
    for extra, words in cases:
        p = H.run(["run", cfg, "--set", "output.path=" + out] + extra, np=1, timeout=60)
        R.one_error_line(p, words, " ".join(extra))
        R.check(not os.path.exists(out) and not os.path.exists(out + ".partial"),
                "%s: nothing written" % " ".join(extra))
    p = H.run(["sweep", cfg, "--widths", "32,64", "--seeds", "1", "--set", "ntk.method=matrix_free",
               "--set", "output.path=" + out], np=1, timeout=60)
    R.one_error_line(p, ["ntk.method", "structured"], "sweep with matrix_free")

if section("memory"):
    # a dense run over memory.limit_mb is refused naming the way out, whose estimate fits
    cfg = H.write_config(tmp, "mem.yaml", BASE.format(width=64, depth=2, act="relu", trainable="false",
                                                      survival=1.0, network="eval", n=8192))
    out = os.path.join(tmp, "mem.h5")
    p = H.run(["run", cfg, "--set", "output.path=" + out, "--set", "memory.limit_mb=300"], np=2, timeout=60)
    R.one_error_line(p, ["memory:", "ntk.method: matrix_free", "fits"], "dense over the limit")
    # the matrix-free estimate has no N x N term and fits the same limit
    p = H.run(["run", cfg, "--dry-run", "--set", "output.path=" + out, "--set", "memory.limit_mb=300",
               "--set", "ntk.method=matrix_free"], np=2, timeout=60)
    R.check(p.returncode == 0, "matrix-free dry run: %s" % p.stderr[-400:])
    R.check("Krylov basis (SLEPc)" in p.stdout and "matrix-free product scratch" in p.stdout,
            "dry run lists the matrix-free terms: " + p.stdout[-1500:])
    R.check("NTK  " not in p.stdout and "eigensolver workspace" not in p.stdout and "EXCEEDED" not in p.stdout,
            "dry run has no dense kernel term: " + p.stdout[-1500:])

sys.exit(R.finish())
