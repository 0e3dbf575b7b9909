"""The kernel-regime prediction of the test loss (issue 20), checked independently of the
C code: numpy rebuilds the network from /params/step_0, its Jacobians (explicit back-
propagation, per sample and output) and so Theta_0(train, train) and Theta_0(test, train),
and the relu infinite-width kernel by its own recursion on pairs; then it runs linearised
gradient descent explicitly,
    f_{s+1}(X) = f_s(X) - (eta/N) Theta(X, X_train) (f_s(X_train) - Y),
on both sets, and the test loss of that recursion must equal /trajectory/predicted_test_loss
(and _infinite) to 1e-10.  Cases: two outputs on a 2 x 1 grid with every eigenpair; exact
Fourier features with the input projection, the limit kernel without it; a top-K
spectrum (the directions outside the K vectors not learned) with a fixed stochastic-depth
mask measured (ntk.network mask) on 4 ranks.  Then the lazy regime: the trained network's
test loss approaches the prediction as the width grows.  Sections: exact topk fourier lazy."""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

R = H.Report()
tmp = H.tmpdir()
SW, SB = 1.0, 0.1

BASE = """
seed: 5
model: {width: %(width)d, depth: 2, activation: relu, weight_std: 1.0, bias_std: 0.1}
fourier: {features: 0}
residual: {alpha: 1.0, schedule: inv_sqrt_depth}
data: {source: teacher, n_train: 12, n_test: 5, dim: 3, outputs: 2}
train: {steps: %(steps)d, lr_scale: 0.5, measure: every, measure_every: 5}
analytic: {enabled: %(analytic)s}
grid: {block_size: 4}
output: {save_ntk: true, save_params: true, save_data: true}
"""


def run(name, np_, width=16, steps=20, analytic="true", extra="", sets=()):
    cfg = H.write_config(tmp, name + ".yaml",
                         BASE % dict(width=width, steps=steps, analytic=analytic) + extra)
    path = os.path.join(tmp, name + ".h5")
    args = ["run", cfg, "-q", "--set", "output.path=" + path]
    for kv in sets:
        args += ["--set", kv]
    p = H.run(args, np=np_, timeout=600)
    R.check(p.returncode == 0, "%s: rc %d: %s" % (name, p.returncode, p.stderr[-1500:]))
    return path


def relu(x):
    return np.maximum(x, 0.0)


def features(x, G, s):
    """phi(x): x itself without Fourier features, else [sin(2 pi s G x); cos(2 pi s G x)]."""
    if G is None:
        return x
    u = 2 * np.pi * s * G @ x
    return np.concatenate([np.sin(u), np.cos(u)])


class Net:
    """The network of MODEL.md (fixed Fourier features or none, with or without the input
    projection), from /params/step_0."""

    def __init__(self, f, alpha, xi, scale=1.0):
        P = f["params/step_0"]
        self.G = P["G"][()] if "G" in P else None
        self.s = scale
        self.project = "W0" in P
        self.W, self.b = P["W"][()], P["b"][()]
        self.V, self.bo = P["V"][()], P["b_out"][()]
        if self.project:
            self.W0, self.b0 = P["W0"][()], P["b0"][()]
        self.n = self.W.shape[1]
        self.L, self.k = self.W.shape[0], self.V.shape[0]
        self.a = np.asarray(alpha) * np.asarray(xi)  # alpha_l xi_l

    def forward(self, x):
        cw = SW / np.sqrt(self.n)
        phi = features(x, self.G, self.s)
        h0 = SW / np.sqrt(len(phi)) * self.W0 @ phi + SB * self.b0 if self.project else phi
        hs, zs = [h0], []
        for l in range(self.L):
            zs.append(cw * self.W[l] @ hs[-1] + SB * self.b[l])
            hs.append(hs[-1] + self.a[l] * relu(zs[-1]))
        return cw * self.V @ hs[-1] + SB * self.bo, hs, zs

    def jacobian(self, x):
        """(k, P): the gradient of each output over every parameter."""
        cw = SW / np.sqrt(self.n)
        phi = features(x, self.G, self.s)
        _, hs, zs = self.forward(x)
        rows = []
        for c in range(self.k):
            gV = np.zeros_like(self.V)
            gV[c] = cw * hs[-1]
            gbo = np.zeros(self.k)
            gbo[c] = SB
            dh = cw * self.V[c]
            parts = [gV.ravel(), gbo]
            for l in reversed(range(self.L)):
                dz = dh * self.a[l] * (zs[l] > 0)
                parts += [cw * np.outer(dz, hs[l]).ravel(), SB * dz]
                dh = dh + cw * self.W[l].T @ dz
            if self.project:
                parts += [SW / np.sqrt(len(phi)) * np.outer(dh, phi).ravel(), SB * dh]
            rows.append(np.concatenate(parts))
        return np.array(rows)


def ntk(net, A, B):
    JA = [net.jacobian(x) for x in A]
    JB = [net.jacobian(x) for x in B]
    return np.array([[np.sum(ja * jb) / net.k for jb in JB] for ja in JA])


def input_kernel(A, B, fourier):
    """K_phi(A, B), each set's diagonal and feature means: raw inputs (fourier None), the
    exact features (G, s) or their m -> infinity limit ("limit", s)."""
    if fourier is None:
        d = A.shape[1]
        return (A @ B.T) / d, np.sum(A * A, 1) / d, np.sum(B * B, 1) / d, A.mean(1), B.mean(1)
    if isinstance(fourier[0], str):  # ("limit", s)
        c = -2 * np.pi**2 * fourier[1]**2
        r2 = np.sum(A * A, 1)[:, None] + np.sum(B * B, 1)[None, :] - 2 * A @ B.T
        return (0.5 * np.exp(c * np.maximum(r2, 0)), np.full(len(A), 0.5), np.full(len(B), 0.5),
                0.5 * np.exp(c * np.sum(A * A, 1)), 0.5 * np.exp(c * np.sum(B * B, 1)))
    FA = np.array([features(x, *fourier) for x in A])
    FB = np.array([features(x, *fourier) for x in B])
    p = FA.shape[1]
    return FA @ FB.T / p, np.sum(FA * FA, 1) / p, np.sum(FB * FB, 1) / p, FA.mean(1), FB.mean(1)


def ntk_inf(A, B, alpha, same=False, fourier=None, project=True):
    """Theta_inf(A, B) for relu, MODEL.md's recursion on pairs, each set with its own
    diagonal quantities (K(x,x), mu(x)); same: A is B, whose diagonal has rho = 1 exactly
    (arccos there turns a rounding of 1e-16 in rho into 1e-8 in the angle)."""
    K, kA, kB, muA, muB = input_kernel(A, B, fourier)
    if project:
        K, kA, kB = SW**2 * K + SB**2, SW**2 * kA + SB**2, SW**2 * kB + SB**2
        muA, muB = np.zeros(len(A)), np.zeros(len(B))
    T = K.copy() if project else np.zeros_like(K)
    for al in alpha:
        S, SA, SBd = SW**2 * K + SB**2, SW**2 * kA + SB**2, SW**2 * kB + SB**2
        nrm = np.sqrt(np.outer(SA, SBd))
        rho = np.clip(S / nrm, -1.0, 1.0)
        th = np.arccos(rho)
        if same:
            np.fill_diagonal(th, 0.0)
        Ess = nrm / (2 * np.pi) * (np.sin(th) + (np.pi - th) * np.cos(th))
        Edd = (np.pi - th) / (2 * np.pi)
        cA, cB = np.sqrt(SA / (2 * np.pi)), np.sqrt(SBd / (2 * np.pi))
        if al != 0.0:
            K = K + al**2 * Ess + al * (np.outer(muA, cB) + np.outer(cA, muB))
            T = T * (1 + al**2 * SW**2 * Edd) + al**2 * S * Edd
            kA = kA + al**2 * SA / 2 + 2 * al * muA * cA  # E[relu(u)^2] = S/2
            kB = kB + al**2 * SBd / 2 + 2 * al * muB * cB
            muA, muB = muA + al * cA, muB + al * cB
    return SW**2 * K + SB**2 + SW**2 * T


def linearised_test_losses(Th, Tx, F, Ft, Y, Yt, lr, steps, topk=None):
    """Explicit linearised GD; with topk, the train kernel's action restricted to its top
    eigenvectors (what is outside them is not learned)."""
    N = len(Y)
    if topk is not None:
        w, U = np.linalg.eigh(Th)
        U = U[:, np.argsort(w)[::-1][:topk]]
        Pk = U @ U.T
    out = {}
    F, Ft = F.copy(), Ft.copy()
    for s in range(steps + 1):
        out[s] = np.sum((Ft - Yt) ** 2) / (2 * len(Yt))
        r = F - Y
        if topk is not None:
            r = Pk @ r
        Ft = Ft - lr / N * Tx @ r
        F = F - lr / N * Th @ r
    return out


def check_file(name, path, alpha, xi_eval, xi_kernel, topk=None, analytic=True, fourier=None,
               project=True):
    with h5py.File(path, "r") as f:
        X, Y = f["data/x_train"][()], f["data/y_train"][()]
        Xt, Yt = f["data/x_test"][()], f["data/y_test"][()]
        T = {k: f["trajectory"][k][()] for k in f["trajectory"]}
        lr = f.attrs["learning_rate"]
        scale = fourier[1] if fourier else 1.0
        ev = Net(f, alpha, xi_eval, scale)
        kn = Net(f, alpha, xi_kernel, scale)
        if fourier and fourier[0] == "exact":
            fourier = (ev.G, scale)
        ainf = f["analytic/ntk"][()] if analytic else None
    F = np.array([ev.forward(x)[0] for x in X])
    Ft = np.array([ev.forward(x)[0] for x in Xt])
    R.check(abs(np.sum((Ft - Yt) ** 2) / (2 * len(Yt)) / T["test_loss"][0] - 1) < 1e-12,
            "%s: numpy's network gives the file's test loss at step 0" % name)
    Th, Tx = ntk(kn, X, X), ntk(kn, Xt, X)
    e = np.abs(Th - T["ntk"][0]).max() / np.abs(Th).max()
    R.check(e < 1e-12, "%s: numpy's Jacobian kernel = /trajectory/ntk[0] (%.1e)" % (name, e))
    steps = T["step"]
    ref = linearised_test_losses(Th, Tx, F, Ft, Y, Yt, lr, int(steps[-1]), topk)
    want = np.array([ref[int(s)] for s in steps])
    got = T["predicted_test_loss"]
    e = np.abs(got / want - 1).max()
    print("   %s: predicted_test_loss %s, linearised GD %s, max rel. diff %.1e" % (
        name, np.array2string(got, precision=5), np.array2string(want, precision=5), e))
    R.check(e < 1e-10, "%s: predicted_test_loss = explicit linearised GD on Theta_0 (%.1e)" % (name, e))
    if not analytic:
        return
    a_kernel = np.asarray(alpha) * np.asarray(xi_kernel)
    Ti = ntk_inf(X, X, a_kernel, True, fourier, project)
    e = np.abs(Ti - ainf).max() / np.abs(Ti).max()
    R.check(e < 1e-12, "%s: numpy's relu recursion = /analytic/ntk (%.1e)" % (name, e))
    Tix = ntk_inf(Xt, X, a_kernel, False, fourier, project)
    # Theta_inf's reference has all N eigenpairs, whatever ntk.top_k
    refi = linearised_test_losses(Ti, Tix, F, Ft, Y, Yt, lr, int(steps[-1]))
    wanti = np.array([refi[int(s)] for s in steps])
    e = np.abs(T["predicted_test_loss_infinite"] / wanti - 1).max()
    R.check(e < 1e-10, "%s: predicted_test_loss_infinite = explicit linearised GD on Theta_inf (%.1e)"
            % (name, e))


ALPHA = [1 / np.sqrt(2)] * 2
if H.section("exact"):
    path = run("exact", 2)
    check_file("exact", path, ALPHA, [1, 1], [1, 1])
    # no test set: the series exists (training) and is NaN, as test_loss is
    cfg = H.write_config(tmp, "notest.yaml", BASE % dict(width=16, steps=5, analytic="true"))
    out = os.path.join(tmp, "notest.h5")
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + out, "--set", "data.n_test=0"], np=1)
    R.check(p.returncode == 0, "no test set: rc %d %s" % (p.returncode, p.stderr[-500:]))
    if p.returncode == 0:
        with h5py.File(out, "r") as f:
            t = f["trajectory"]
            R.check(np.isnan(t["predicted_test_loss"][()]).all()
                    and np.isnan(t["predicted_test_loss_infinite"][()]).all()
                    and np.isnan(t["test_loss"][()]).all(), "no test set: NaN like test_loss")

if H.section("topk"):
    # top 4 of 12; the kernel of the fixed mask [1, 0], the losses of the evaluation network
    # (xi = p = 0.5); 4 ranks on a 2 x 2 grid
    path = run("topk", 4, extra="ntk: {top_k: 4, network: mask}\n"
                                "depth: {survival: 0.5, mask: [1, 0]}\n")
    check_file("topk", path, ALPHA, [0.5, 0.5], [1, 0], topk=4)

if H.section("fourier"):
    # the exact Fourier kernel with the input projection; the limit kernel without it (the
    # relu means enter the recursion): both cross input kernels and their diagonals
    path = run("fourier_exact", 2, sets=["fourier.features=4", "fourier.scale=0.5",
                                         "analytic.fourier=exact"])
    check_file("fourier_exact", path, ALPHA, [1, 1], [1, 1], fourier=("exact", 0.5))
    path = run("fourier_limit", 2, sets=["fourier.features=8", "fourier.scale=0.5",
                                         "fourier.project=false", "model.width=16",
                                         "analytic.fourier=limit"])
    check_file("fourier_limit", path, ALPHA, [1, 1], [1, 1], fourier=("limit", 0.5), project=False)

if H.section("lazy"):
    # the GD-trained network against its kernel-regime prediction: the gap shrinks with width
    gaps = {}
    for width in (64, 1024):
        path = run("lazy%d" % width, 2, width=width, steps=100, analytic="false")
        with h5py.File(path, "r") as f:
            t = f["trajectory"]
            gaps[width] = np.abs(t["test_loss"][1:] / t["predicted_test_loss"][1:] - 1).max()
    print("   largest relative gap test_loss / predicted_test_loss - 1: %s" % gaps)
    # measured 0.28 and 0.043: about the n^-1/2 law (a factor 4 for 16 times the width)
    R.check(gaps[1024] < 0.1, "width 1024: test loss within 10%% of the prediction (%.2e)" % gaps[1024])
    R.check(gaps[1024] < gaps[64] / 3, "the gap shrinks with width (%.2e -> %.2e)" % (gaps[64], gaps[1024]))

sys.exit(R.finish())
