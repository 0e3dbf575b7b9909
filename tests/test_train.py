"""Training dynamics end to end (issue 4): the gradient against a numpy finite-difference
gradient of MODEL.md's loss; the metrics against numpy on the written kernels; the
kernel-regime prediction (and its factor with k > 1 outputs); the lazy regime (drift
shrinks with width, the loss follows the prediction; widths 64 and 1024, or 256 and 4096
with the section lazy_long, which runs only when named); stability at lr_scale 0.5 and 1.5;
divergence; stochastic-depth masks across rank counts; SGD; the measurement schedule;
SIGTERM / SIGUSR1 checkpoint and --resume (bit-identical on the same rank count, 1e-10 on
another); SIGKILL leaves a readable partial file, and --resume from a periodic checkpoint
drops the rows measured after it.  Pass a section name to run only that section."""
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

R = H.Report()
tmp = H.tmpdir()
section = H.section


def run_cfg(name, text, np_=2, extra=(), expect=0):
    return H.run_cfg(R, tmp, name, text, np_, extra, expect)[:2]


def traj(path):
    with h5py.File(path, "r") as f:
        return {k: f["trajectory"][k][()] for k in f["trajectory"]}


def same(a, b, what):
    R.check(sorted(a) == sorted(b), "%s: same datasets (%s vs %s)" % (what, sorted(a), sorted(b)))
    for k in a:
        if k in b:
            R.check(a[k].shape == b[k].shape and np.array_equal(a[k], b[k], equal_nan=True),
                    "%s: %s bitwise identical" % (what, k))


def close(a, b, rtol, what):
    """Agreement to rtol relative to each dataset's largest value; lambda_min (and so the
    condition number) of these nearly singular kernels is rounding noise of size
    eps*lambda_max, so it is compared on lambda_max's scale and the condition number not."""
    R.check(sorted(a) == sorted(b), "%s: same datasets" % what)
    for k in a:
        if k in b and k != "condition_number":
            x, y = np.asarray(a[k], float), np.asarray(b[k], float)
            if x.shape != y.shape:
                R.check(False, "%s: %s shapes %s vs %s" % (what, k, x.shape, y.shape))
                continue
            if np.array_equal(np.isnan(x), np.isnan(y)) and np.all(np.isnan(y)):
                continue
            scale = np.nanmax(np.abs(b["lambda_max"] if k == "lambda_min" else y))
            err = np.nanmax(np.abs(x - y)) / max(scale, 1e-300)
            R.check(err <= rtol, "%s: %s differs by %.3e (relative to its largest value)" % (what, k, err))


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE, text=True).stdout
    return [int(x) for x in out.split()]


def start_run(cfg, path, np_, extra=()):
    cmd = ["mpirun", "-q", "-np", str(np_), H.NTKSPEC, "run", cfg, "--set", "output.path=" + path,
           "--set", "output.overwrite=true"] + list(extra)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def wait_for(proc, text, limit=600):
    """Read progress lines until `text` shows up (the run is then past that measurement)."""
    t0 = time.time()
    seen = []
    while time.time() - t0 < H.limit(limit):
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return True
    print("".join(seen[-20:]))
    return False


# ------------------------------------------------------------------ gradient --
if section("gradient"):
    # one GD step with an absolute learning rate; (theta_0 - theta_1)/eta is the gradient
    TEXT = """seed: 4
model: {width: 12, depth: 2, activation: tanh, weight_std: 1.1, bias_std: 0.4}
fourier: {features: 3, scale: 0.6, trainable: true}
residual: {alpha: 0.8, schedule: constant}
data: {source: teacher, n_train: 10, dim: 2, outputs: 2}
grid: {block_size: 4}
train: {steps: 1, lr: 0.001}
output: {save_data: true, save_params: true}
"""
    for np_ in (1, 4):
        _, path = run_cfg("grad%d" % np_, TEXT, np_)
        with h5py.File(path, "r") as f:
            names = ["G", "W0", "b0", "W", "b", "V", "b_out"]
            P0 = {k: f["params/step_0/" + k][()] for k in names}
            P1 = {k: f["params/step_1/" + k][()] for k in names}
            X, Y = f["data/x_train"][()], f["data/y_train"][()]
        sw, sb, s, L, n, a = 1.1, 0.4, 0.6, 2, 12, 0.8

        def loss(P):
            u = 2 * math.pi * s * X @ P["G"].T
            phi = np.concatenate([np.sin(u), np.cos(u)], axis=1)
            h = sw / math.sqrt(phi.shape[1]) * phi @ P["W0"].T + sb * P["b0"]
            for l in range(L):
                h = h + a * np.tanh(sw / math.sqrt(n) * h @ P["W"][l].T + sb * P["b"][l])
            f_ = sw / math.sqrt(n) * h @ P["V"].T + sb * P["b_out"]
            return 0.5 * np.sum((f_ - Y) ** 2) / X.shape[0]

        worst = 0.0
        for k in names:
            g_code = (P0[k] - P1[k]) / 0.001
            flat = P0[k].reshape(-1)
            g_fd = np.zeros_like(flat)
            for q in range(flat.size):
                old = flat[q]
                flat[q] = old + 1e-6
                lp = loss(P0)
                flat[q] = old - 1e-6
                lm = loss(P0)
                flat[q] = old
                g_fd[q] = (lp - lm) / 2e-6
            err = np.max(np.abs(g_code.reshape(-1) - g_fd)) / max(np.max(np.abs(g_fd)), 1e-12)
            worst = max(worst, err)
            R.check(err < 1e-5, "np%d: gradient of %s vs finite differences: %.2e" % (np_, k, err))
        print("   np%d: worst gradient error %.2e" % (np_, worst))

# -------------------------------------------------- metrics, prediction, schedule --
if section("metrics"):
    TEXT = """seed: 2
model: {width: 128, depth: 2, activation: erf}
fourier: {features: 8}
data: {source: synthetic_1d, n_train: 20, n_test: 6}
grid: {block_size: 4}
train: {steps: 60, lr_scale: 0.8, measure: log, measure_points: 6}
analytic: {enabled: true}
output: {save_ntk: true}
"""
    _, path = run_cfg("metrics", TEXT, 2)
    T = traj(path)
    steps = T["step"].tolist()
    want = sorted(set([0, 60] + [max(1, min(60, int(math.floor(60 ** (i / 5) + 0.5)))) for i in range(6)]))
    R.check(steps == want, "log schedule %s, expected %s" % (steps, want))
    K = T["ntk"]
    N = K.shape[1]
    with h5py.File(path, "r") as f:
        lr = f.attrs["learning_rate"]
        lam0 = np.linalg.eigvalsh(K[0])[::-1]
        R.check(abs(lr - 0.8 * 2 * N / lam0[0]) <= 1e-12 * lr, "eta = lr_scale 2N/lambda_max")
        R.check(f.attrs["status"] == "complete" and f.attrs["unstable"] == 0, "status complete, stable")
        R.check(f["analytic/eigenvalues"].shape == (N,), "analytic eigenvalues (N,)")
        w_inf = f["analytic/eigenvalues"][()]
        Kinf = f["analytic/ntk"][()]
    for t in range(len(steps)):
        lam = np.linalg.eigvalsh(K[t])[::-1]
        R.check(np.max(np.abs(lam - T["eigenvalues"][t])) <= 1e-10 * lam[0], "eigenvalues step %d" % steps[t])
        D = K[t] - K[0]
        drift = np.linalg.norm(D) / np.linalg.norm(K[0])
        R.check(abs(T["drift"][t] - drift) <= 1e-10 * max(drift, 1e-300) + 1e-15, "drift step %d" % steps[t])
        n2 = np.max(np.abs(np.linalg.eigvalsh(D))) if t else 0.0
        R.check(abs(T["ntk_change_norm2"][t] - n2) <= 1e-9 * max(n2, 1e-300) + 1e-13 * lam0[0],
                "||Theta_t - Theta_0||_2 step %d: %g vs %g" % (steps[t], T["ntk_change_norm2"][t], n2))
        shift = np.max(np.abs(lam - lam0))
        R.check(abs(T["eigenvalue_shift"][t] - shift) <= 1e-10 * lam0[0], "eigenvalue shift step %d" % steps[t])
        R.check(abs(T["eigenvalue_drift"][t] - shift / lam0[0]) <= 1e-10, "eigenvalue drift step %d" % steps[t])
        R.check(T["weyl_ok"][t] == 1 and shift <= n2 + 1e-12 * lam0[0], "Weyl holds at step %d" % steps[t])
        R.check(abs(T["frobenius_norm"][t] - np.linalg.norm(K[t])) <= 1e-12 * np.linalg.norm(K[t]), "frobenius")
        R.check(abs(T["stability_ratio"][t] - lr * lam[0] / (2 * N)) <= 1e-10, "stability ratio")
    # prediction: (1/2N) sum_i (1 - eta lambda_i/N)^(2t) e_i from step 0's energies
    e0 = T["residual_energy"][0]
    R.check(abs(e0.sum() - 2 * N * T["train_loss"][0]) <= 1e-10 * e0.sum(), "energies sum to ||r_0||^2")
    pred = [np.sum((1 - lr * lam0 / N) ** (2 * t) * e0) / (2 * N) for t in steps]
    R.check(np.allclose(T["predicted_train_loss"], pred, rtol=1e-10, atol=0), "prediction formula")
    # Theta_inf's prediction: step 0 is the initial loss, then its own spectrum
    pi = T["predicted_train_loss_infinite"]
    R.check(abs(pi[0] - T["train_loss"][0]) <= 1e-10 * T["train_loss"][0], "infinite-width prediction at 0")
    li = np.linalg.eigvalsh(Kinf)
    R.check(np.max(np.abs(li[::-1] - w_inf)) <= 1e-10 * li[-1], "analytic eigenvalues vs numpy")
    R.check(np.all(np.diff(pi) <= 1e-15) and pi[-1] < pi[0], "infinite-width prediction decreases")
    R.check(li[0] >= -1e-10 * li[-1], "Theta_inf PSD")
    # top-K: the energy outside the top K stays frozen in the prediction
    _, pk = run_cfg("metrics_topk", TEXT.replace("analytic: {enabled: true}", "ntk: {top_k: 5}"), 2)
    Tk = traj(pk)
    R.check(Tk["eigenvalues"].shape == (len(steps), 5) and Tk["residual_energy"].shape == (len(steps), 5),
            "top-K rows of 5")
    rest = 2 * N * Tk["train_loss"][0] - Tk["residual_energy"][0].sum()
    predk = [(np.sum((1 - lr * lam0[:5] / N) ** (2 * t) * Tk["residual_energy"][0]) + rest) / (2 * N) for t in steps]
    R.check(np.allclose(Tk["predicted_train_loss"], predk, rtol=1e-9), "top-K prediction keeps the rest frozen")
    R.check(np.all(Tk["predicted_train_loss"] >= T["predicted_train_loss"] * (1 - 1e-12)),
            "top-K prediction is an upper bound of the full one")

# ---------------------------------------------------------- k > 1: the factor --
if section("outputs"):
    TEXT = """seed: 9
model: {width: 1024, depth: 1, activation: tanh}
fourier: {features: 8}
data: {source: teacher, n_train: 16, dim: 2, outputs: 3}
grid: {block_size: 4}
train: {steps: 100, lr_scale: 0.5, measure: log, measure_points: 6}
"""
    _, path = run_cfg("outputs3", TEXT, 2)
    T = traj(path)
    with h5py.File(path, "r") as f:
        lr = f.attrs["learning_rate"]
    N, lam0, e0 = 16, T["eigenvalues"][0], T["residual_energy"][0]
    # width 1024: the relative error grows to ~10% at step 100, where the loss is 4e-4 of its
    # start and the small eigen-directions (most sensitive to finite width) dominate
    rel = np.abs(T["train_loss"] - T["predicted_train_loss"]) / T["predicted_train_loss"]
    early = T["step"] <= 16
    R.check(np.max(rel[early]) < 0.03, "k = 3: loss within 3%% of the eta/N prediction up to step 16 (%.3f)"
            % np.max(rel[early]))
    R.check(np.max(rel) < 0.15, "k = 3: loss within 15%% of the eta/N prediction (worst %.3f)" % np.max(rel))
    alt = np.array([np.sum((1 - lr * lam0 / (3 * N)) ** (2 * t) * e0) / (2 * N) for t in T["step"]])
    rel_alt = np.abs(T["train_loss"] - alt) / alt
    R.check(np.max(rel_alt) > 4 * max(np.max(rel), 0.01),
            "k = 3: the factor eta/(kN) is clearly worse (worst %.3f)" % np.max(rel_alt))
    print("   k=3 worst relative error: eta/N %.4f, eta/(kN) %.4f" % (np.max(rel), np.max(rel_alt)))

# ------------------------------------------------------------ lazy regime --
# Widths 64 and 1024: the cost of a step grows like width^2, and a factor 16 in width is
# what the drift and the kernel-regime checks need.  Measured (1000 steps): final drift
# 0.111 at 64 and 0.0037 at 1024 (the check asks for a factor 3), worst |loss -
# prediction| / prediction 0.168 at 64 and 0.018 at 1024 (the check asks for 0.05 at the
# large width; 0.002 up to step 316).  "lazy_long" (only when named; ctest's train_lazy_4096
# with -DNTK_LONG_TESTS=ON) is the same check at widths 256 and 4096, sixteen times the cost.
LAZY = [w for name, w in (("lazy", (64, 1024)), ("lazy_long", (256, 4096)))
        if name in sys.argv[1:] or (name == "lazy" and section("lazy"))]
for small, big in LAZY:
    TEXT = """seed: 11
model: {width: WIDTH, depth: 1, activation: tanh}
fourier: {features: 8}
data: {source: synthetic_1d, n_train: 16}
grid: {block_size: 8}
train: {steps: 1000, lr_scale: 0.5, measure: log, measure_points: 7}
"""
    if big == 4096:
        print("-- lazy_long", flush=True)
    drift = {}
    for w in (small, big):
        # one rank: the physics does not depend on the rank count (masks, sgd and restart
        # check that), and a busy machine delays every message of a two-rank run
        _, path = run_cfg("lazy%d" % w, TEXT.replace("WIDTH", str(w)), 1)
        T = traj(path)
        R.check(T["step"][-1] == 1000, "width %d: reached step 1000" % w)
        drift[w] = T["drift"][-1]
        rel = np.abs(T["train_loss"] - T["predicted_train_loss"]) / T["predicted_train_loss"]
        print("   width %d: final drift %.3e, worst |loss - prediction|/prediction %.4f, loss %.3e -> %.3e"
              % (w, drift[w], np.max(rel), T["train_loss"][0], T["train_loss"][-1]))
        if w == big:
            R.check(np.max(rel) < 0.05, "width %d: loss within 5%% of the kernel regime (%.4f)" % (w, np.max(rel)))
    R.check(drift[big] < drift[small] / 3, "drift at %d (%.3e) < drift at %d (%.3e) / 3"
            % (big, drift[big], small, drift[small]))

# -------------------------------------------------------------- stability --
if section("stability"):
    TEXT = """seed: 5
model: {width: 256, depth: 2, activation: tanh}
fourier: {features: 8}
data: {source: synthetic_1d, n_train: 16}
grid: {block_size: 8}
train: {steps: 300, lr_scale: SCALE, measure: every, measure_every: 50}
"""
    _, p05 = run_cfg("stable05", TEXT.replace("SCALE", "0.5"), 2)
    T = traj(p05)
    with h5py.File(p05, "r") as f:
        R.check(f.attrs["status"] == "complete" and f.attrs["unstable"] == 0, "lr_scale 0.5: complete and stable")
    R.check(T["train_loss"][-1] < 0.2 * T["train_loss"][0] and np.all(np.diff(T["train_loss"]) < 0),
            "lr_scale 0.5 converges: loss %s" % T["train_loss"])
    cfg15 = H.write_config(tmp, "unstable15.yaml", TEXT.replace("SCALE", "1.5"))
    p15 = os.path.join(tmp, "unstable15.h5")
    p = H.run(["run", cfg15, "-q", "--set", "output.path=" + p15], np=2)
    R.check(p.returncode in (0, 4), "lr_scale 1.5: exit status %d (0 or 4)" % p.returncode)
    with h5py.File(p15, "r") as f:
        st, un = f.attrs["status"], f.attrs["unstable"]
        ratio0 = f["trajectory/stability_ratio"][0]
    R.check(st == "diverged" or un == 1, "lr_scale 1.5 reported diverged or unstable (%s, %d)" % (st, un))
    R.check(abs(ratio0 - 1.5) < 1e-12, "stability ratio at step 0 is lr_scale")
    print("   lr_scale 1.5: status %s, unstable %d, exit %d" % (st, un, p.returncode))

# ------------------------------------------------------------- divergence --
if section("divergence"):
    TEXT = """seed: 5
model: {width: 64, depth: 2, activation: relu}
fourier: {features: 8}
data: {source: synthetic_1d, n_train: 16}
grid: {block_size: 8}
train: {steps: 200, lr: 1e6, measure: every, measure_every: 1}
"""
    _, path = run_cfg("diverge", TEXT, 2, expect=4)
    with h5py.File(path, "r") as f:
        R.check(f.attrs["status"] == "diverged", "status diverged")
        ds = f.attrs["diverged_step"]
        steps = f["trajectory/step"][()]
        R.check(len(steps) >= 1 and all(len(f["trajectory"][k]) == len(steps) for k in f["trajectory"]),
                "every dataset has the rows measured before the divergence")
        R.check(np.all(np.isfinite(f["trajectory/train_loss"][()])), "kept rows are finite")
        R.check(steps[-1] <= ds, "diverged at step %d after the last kept row %d" % (ds, steps[-1]))

# ------------------------------------------------------- stochastic depth --
if section("masks"):
    BASE = """seed: 6
model: {width: 48, depth: 3, activation: tanh}
fourier: {features: 6}
data: {source: synthetic_1d, n_train: 24, n_test: 8}
grid: {block_size: 4}
train: {steps: 40, lr_scale: 0.5, measure: every, measure_every: 10}
"""
    _, plain = run_cfg("plain", BASE, 2)
    _, surv1 = run_cfg("surv1", BASE + "depth: {survival: 1.0, schedule: linear}\nntk: {network: mask}\n", 2)
    same(traj(surv1), traj(plain), "survival 1 vs no stochastic depth")
    SD = BASE + "depth: {survival: 0.5}\nntk: {network: mask}\n"
    runs = {}
    for np_ in (1, 2, 4):
        _, runs[np_] = run_cfg("sd%d" % np_, SD, np_)
    close(traj(runs[2]), traj(runs[1]), 1e-10, "survival 0.5, 2 vs 1 ranks")
    close(traj(runs[4]), traj(runs[1]), 1e-10, "survival 0.5, 4 vs 1 ranks")
    d = np.max(np.abs(traj(runs[1])["train_loss"] - traj(plain)["train_loss"]))
    R.check(d > 1e-4, "survival 0.5 training differs from survival 1 (%.2e)" % d)

# -------------------------------------------------------------------- sgd --
if section("sgd"):
    TEXT = """seed: 8
model: {width: 64, depth: 2, activation: gelu}
fourier: {features: 8}
data: {source: teacher, n_train: 32, dim: 2, outputs: 2}
grid: {block_size: 4}
train: {steps: 100, optimizer: sgd, batch_size: 8, lr_scale: 0.3, measure: list, measure_steps: [7, 50]}
"""
    _, s1 = run_cfg("sgd1", TEXT, 1)
    _, s2 = run_cfg("sgd2", TEXT, 2)
    a, b = traj(s1), traj(s2)
    close(b, a, 1e-10, "sgd 2 vs 1 ranks")
    R.check(a["step"].tolist() == [0, 7, 50, 100], "list schedule with 0 and T")
    R.check(a["train_loss"][-1] < 0.5 * a["train_loss"][0], "sgd lowers the loss %s" % a["train_loss"])
    _, g1 = run_cfg("sgd_as_gd", TEXT.replace("optimizer: sgd, batch_size: 8", "optimizer: gd"), 1)
    R.check(not np.array_equal(traj(g1)["train_loss"], a["train_loss"]), "sgd differs from gd")

# ----------------------------------------------------- signals and resume --
RESTART = """seed: 3
model: {width: 64, depth: 2, activation: tanh}
fourier: {features: 8}
depth: {survival: 0.7}
data: {source: synthetic_1d, n_train: 24, n_test: 8}
grid: {block_size: 4}
train: {steps: 3000, lr_scale: 0.5, measure: list, measure_steps: [%s]}
output: {save_params: true, save_ntk: true}
""" % ", ".join(str(20 * i) for i in range(1, 31))
# measured every 20 steps up to 600, then 2400 plain steps to 3000: the signals below
# follow the step-40/60/160 lines, and the whole run of 600 steps took 0.19 s on a quiet
# machine; the rest of the run must outlast mpirun's forwarding of a line
if section("restart"):
    cfg = H.write_config(tmp, "restart.yaml", RESTART)
    ref = os.path.join(tmp, "ref.h5")
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + ref], np=2)
    R.check(p.returncode == 0, "uninterrupted run: " + p.stderr[-500:])
    Tref = traj(ref)

    # SIGTERM to one rank only: the ranks agree at the next step boundary
    out = os.path.join(tmp, "term.h5")
    proc = start_run(cfg, out, 2)
    ok = wait_for(proc, "step 60:")
    R.check(ok, "the run reached step 60")
    kids = children(proc.pid)
    R.check(len(kids) == 2, "two rank processes (%s)" % kids)
    if kids:
        os.kill(kids[0], signal.SIGTERM)
    rest = proc.communicate(timeout=H.limit(600))[0]
    R.check(proc.returncode == 3, "SIGTERM: exit status 3 (%d): %s" % (proc.returncode, rest[-800:]))
    with h5py.File(out, "r") as f:
        st, last = f.attrs["status"], f.attrs["last_step"]
        nrows = len(f["trajectory/step"])
    R.check(st == "interrupted" and 60 <= last < 3000, "status interrupted at step %d" % last)
    R.check(os.path.exists(out + ".ckpt") and not os.path.exists(out + ".partial"), "checkpoint written, file closed")
    print("   SIGTERM: interrupted at step %d with %d rows" % (last, nrows))
    # resume copies: the same rank count (bitwise) and another (1e-10)
    for q in ("a", "b"):
        shutil.copy(out, os.path.join(tmp, "term_%s.h5" % q))
        shutil.copy(out + ".ckpt", os.path.join(tmp, "term_%s.h5.ckpt" % q))
    pa = os.path.join(tmp, "term_a.h5")
    p = H.run(["run", cfg, "-q", "--resume", "--set", "output.path=" + pa], np=2)
    R.check(p.returncode == 0, "resume on 2 ranks: " + p.stderr[-500:])
    same(traj(pa), Tref, "SIGTERM + resume (2 ranks) vs uninterrupted")
    with h5py.File(pa, "r") as f, h5py.File(ref, "r") as g:
        R.check(f.attrs["status"] == "complete" and f.attrs["resume_count"] == 1, "resumed file complete")
        R.check(np.array_equal(f["params/step_3000/W"][()], g["params/step_3000/W"][()]), "final parameters identical")
    pb = os.path.join(tmp, "term_b.h5")
    p = H.run(["run", cfg, "-q", "--resume", "--set", "output.path=" + pb, "--set", "grid.block_size=5"], np=1)
    R.check(p.returncode == 0, "resume on 1 rank: " + p.stderr[-500:])
    close(traj(pb), Tref, 1e-10, "SIGTERM on 2 ranks + resume on 1 rank vs uninterrupted")

    # SIGUSR1 to mpirun is forwarded to the ranks (what #SBATCH --signal does to the batch step)
    out = os.path.join(tmp, "usr1.h5")
    proc = start_run(cfg, out, 2)
    R.check(wait_for(proc, "step 40:"), "the run reached step 40")
    proc.send_signal(signal.SIGUSR1)
    proc.communicate(timeout=H.limit(600))
    R.check(proc.returncode == 3, "SIGUSR1 to mpirun: exit status 3 (%d)" % proc.returncode)
    p = H.run(["run", cfg, "-q", "--resume", "--set", "output.path=" + out], np=4)
    R.check(p.returncode == 0, "resume on 4 ranks: " + p.stderr[-500:])
    close(traj(out), Tref, 1e-10, "SIGUSR1 + resume on 4 ranks")

    # refusals: another configuration, no checkpoint (pa is complete: more steps, so that
    # the resume is refused for the width, not as "nothing to resume")
    p = H.run(["run", cfg, "-q", "--resume", "--set", "output.path=" + pa, "--set", "model.width=32",
               "--set", "train.steps=3100"], np=1)
    R.check(p.returncode == 2 and "model.width" in p.stderr, "resume refuses another width: " + p.stderr[-300:])
    with h5py.File(pa, "r") as f:
        R.check(f.attrs["status"] == "complete", "a refused resume leaves the file alone")
    p = H.run(["run", cfg, "-q", "--resume", "--set", "output.path=" + os.path.join(tmp, "none.h5")], np=1)
    R.check(p.returncode == 2 and "checkpoint" in p.stderr, "resume without a checkpoint: " + p.stderr[-300:])

    # --stop-at: a run in three pieces (stop at 100, resume and stop at 380, resume to the
    # end) equals the uninterrupted run bitwise; each piece ends as an interruption does
    pc = os.path.join(tmp, "pieces.h5")
    base = ["run", cfg, "-q", "--set", "output.path=" + pc]
    for extra, step in ((["--stop-at", "100"], 100), (["--resume", "--stop-at=380"], 380)):
        p = H.run(base + extra, np=2)
        R.check(p.returncode == 3, "--stop-at %d: exit status 3 (%d): %s" % (step, p.returncode, p.stderr[-300:]))
        with h5py.File(pc, "r") as f:
            R.check(f.attrs["status"] == "interrupted" and f.attrs["last_step"] == step,
                    "--stop-at %d: status %s at step %s" % (step, f.attrs["status"], f.attrs["last_step"]))
        with h5py.File(pc + ".ckpt", "r") as f:
            R.check(f.attrs["step"] == step, "--stop-at %d: checkpoint at step %d" % (step, f.attrs["step"]))
    # at or before the checkpoint: nothing to do, refused, the file left as it was
    p = H.run(base + ["--resume", "--stop-at", "380"], np=2)
    R.check(p.returncode == 2 and "--stop-at 380" in p.stderr and "step 380" in p.stderr,
            "--stop-at at the checkpoint's step refused: " + p.stderr[-300:])
    p = H.run(base + ["--resume"], np=2)
    R.check(p.returncode == 0, "resume after two pieces: " + p.stderr[-500:])
    same(traj(pc), Tref, "three --stop-at pieces vs uninterrupted")
    with h5py.File(pc, "r") as f:
        R.check(f.attrs["status"] == "complete" and f.attrs["resume_count"] == 2, "pieces: complete, resume_count 2")
    for bad in ("0", "-5", "12x", ""):
        p = H.run(["run", cfg, "-q", "--stop-at=" + bad, "--set", "output.path=" + os.path.join(tmp, "bad.h5")])
        R.check(p.returncode == 2 and "--stop-at" in p.stderr and len(p.stderr.strip().splitlines()) == 1,
                "--stop-at=%r refused in one line: %s" % (bad, p.stderr[-300:]))
    p = H.run(["run", cfg, "-q", "--stop-at", "5", "--set", "train.steps=0",
               "--set", "output.path=" + os.path.join(tmp, "bad.h5")])
    R.check(p.returncode == 2 and "train.steps" in p.stderr, "--stop-at without training refused: " + p.stderr[-300:])

if section("kill"):
    cfg = H.write_config(tmp, "restart_kill.yaml",
                         RESTART.replace("lr_scale: 0.5,", "lr_scale: 0.5, checkpoint_every: 50,"))
    ref = os.path.join(tmp, "ref_kill.h5")
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + ref], np=2)
    R.check(p.returncode == 0, "uninterrupted run: " + p.stderr[-500:])
    Tref = traj(ref)
    out = os.path.join(tmp, "kill.h5")
    proc = start_run(cfg, out, 2)
    R.check(wait_for(proc, "step 160:"), "the run reached step 160")
    for k in children(proc.pid):
        os.kill(k, signal.SIGKILL)
    proc.kill()
    proc.communicate(timeout=H.limit(120))
    R.check(os.path.exists(out + ".partial") and not os.path.exists(out), "a killed run leaves only PATH.partial")
    with h5py.File(out + ".partial", "r") as f:
        st = f.attrs["status"]
        T = {k: f["trajectory"][k][()] for k in f["trajectory"]}
    n = len(T["step"])
    R.check(st == "running", "status of a killed run stays 'running'")
    R.check(n >= 9 and T["step"].tolist() == Tref["step"][:n].tolist(), "every completed step readable (%d rows)" % n)
    R.check(all(len(v) == n for v in T.values()), "all datasets have the same rows")
    same({k: v for k, v in T.items()}, {k: v[:n] for k, v in Tref.items()}, "partial file vs reference prefix")
    with h5py.File(out + ".ckpt", "r") as f:
        ck = f.attrs["step"]
    R.check(ck % 50 == 0 and ck >= 150, "periodic checkpoint at step %d" % ck)
    p = H.run(["run", cfg, "-q", "--resume", "--set", "output.path=" + out], np=2)
    R.check(p.returncode == 0, "resume after SIGKILL: " + p.stderr[-500:])
    same(traj(out), Tref, "SIGKILL + resume from the periodic checkpoint vs uninterrupted")
    print("   SIGKILL after %d rows, checkpoint at step %d" % (n, ck))

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(R.finish())
