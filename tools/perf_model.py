#!/usr/bin/env python3
"""Performance model of ntkspec's NTK pipeline (docs/SCALING.md): flops, memory traffic and
communication per phase as functions of N, n, L, the rank count P (grid Pr x Pc, the one
ntk_grid_choose picks) and the block size; calibrated on measured runs; used to predict a
headline problem on a cluster.

    tools/perf_model.py calibrate --cores C [--fit SUBSTR] [--save rates.json] FILE.h5...
        fit the parameters on the files whose name contains SUBSTR (default: all), then
        print measured (median over repeats of a configuration) against model, phase by phase
    tools/perf_model.py predict --rates rates.json [--N 65536 --n 65536 --L 8] ...

Work per NTK evaluation (structured method, k outputs, p = 2m Fourier features):
  forward    F = 2 N n (p + L n + k) + 2 N d m per pass (ntkspec run: one pass per measurement,
             shared by the loss and the kernel; a file's own count is read from its flops)
  backward   F = 2 N n (L n + k)
  gram       F = N (N+1) ((2L+2) n + k + p)   (lower triangles, ntk_dmat_gram_lower)
  hadamard   N (N+1) (L+2) 3/2 entry updates  (memory bound)
  eigensolve PDSYTRD: 2/3 N^3 flops of BLAS-3 (PDSYR2K) and 4/3 N^3 bytes of BLAS-2
             (PDSYMV reads the trailing lower triangle once per column)
Words received per rank (8 bytes each):
  C(N x n) = A(N x K) B(K x n), PDGEMM's SUMMA (the k-column output products) and the
             backward's gathered A B (ntk_dmat_gemm_ab_gathered) alike:
             (N/Pr) K (Pc-1)/Pc + K (n/Pc) (Pr-1)/Pr
  C(M x n) = A(M x K) B(n x K)^T gathered (the forward pass, ntk_dmat_gemm_abt_gathered):
             (M K + n K)(Pc-1)/P + n K (Pr-1)/P
  Gram of N x K (two allgathers of row panels): N K ((Pc-1) + (Pr-1)) / P
Time of a phase:
  t = F / (P R) max(1, P/C) + 8 W / beta + M alpha
                                                               (forward, backward, gram)
  t = [(2/3 N^3) / (P R_gram) max(1, P/C) + (4/3 N^3) / B_mem] (1 + kappa [P > 1])
      + N tau log2 P                                           (eigensolve)
R: the phase's rate per core, from 1-rank runs; C: the cores the ranks share; beta: the
bandwidth per rank (fitted on the multi-rank runs here; the network's on a cluster); B_mem:
the memory bandwidth of the ranks' nodes (BLAS-2 does not speed up with more ranks on one
node), one value for a matrix that fits in the last-level cache and one for one that does
not; kappa: the eigensolve's extra on several ranks (one value for ranks with a core each,
one for ranks sharing cores); tau: the synchronisation cost per column and per level of the
reduction trees."""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

P_FEAT, K_OUT, D_IN = 128, 1, 1   # configs/quickstart.yaml: m = 64 Fourier features, k = 1, d = 1
PHASES = ["forward", "backward", "gram", "hadamard", "eigensolve"]
COMM = ["forward", "backward", "gram"]


def grid(P):
    """ntk_grid_choose: Pc the largest divisor of P with Pc^2 <= P, Pr = P / Pc."""
    pc = 1
    for k in range(1, int(math.isqrt(P)) + 1):
        if P % k == 0:
            pc = k
    return P // pc, pc


def flops(N, n, L, passes=1):
    return {"forward": passes * (2.0 * N * n * (P_FEAT + L * n + K_OUT) + N * D_IN * P_FEAT),
            "backward": 2.0 * N * n * (L * n + K_OUT),
            "gram": N * (N + 1.0) * ((2 * L + 2) * n + K_OUT + P_FEAT),
            "hadamard": 1.5 * N * (N + 1.0) * (L + 2),
            "eigensolve": 4.0 / 3.0 * N ** 3}


def eig_parts(N):
    """(BLAS-3 flops, BLAS-2 bytes) of the tridiagonal reduction."""
    return 2.0 / 3.0 * N ** 3, 4.0 / 3.0 * N ** 3


def words(N, n, L, P, passes=1):
    """Words received per rank per phase."""
    pr, pc = grid(P)

    def gemm(M, K, Nc):
        return M / pr * K * (pc - 1) / pc + K * Nc / pc * (pr - 1) / pr

    def abt(M, K, Nc):
        return (M * K + Nc * K) * (pc - 1) / P + Nc * K * (pr - 1) / P

    fwd = abt(N, P_FEAT, n) + L * abt(N, n, n) + gemm(N, n, K_OUT)
    K = (2 * L + 2) * n + K_OUT + P_FEAT
    return {"forward": passes * fwd,
            "backward": gemm(N, K_OUT, n) + L * gemm(N, n, n),
            "gram": N * K * ((pc - 1) + (pr - 1)) / P,
            "hadamard": 0.0, "eigensolve": 0.0}


def panels(K, rows, step, chunk_mb):
    """Panels of K columns that ntkspec's gathered products cut (ntk_dmat_panel_columns and
    ntk_dmat_panel_columns_ab): as wide as `rows` gathered doubles per column allow within
    chunk_mb, a multiple of `step`."""
    kb = int(chunk_mb * 2 ** 20 / 8.0 / (rows + 1.0)) // step * step
    return math.ceil(K / max(step, min(kb, K)))


def messages(N, n, L, P, b, passes=1, chunk_mb=256.0):
    """Messages per rank: a broadcast per block column and tree level of each PBLAS PDGEMM
    (the k-column output products); two allgathers per panel and tree level of ntkspec's
    gathered products (forward z = h W^T, backward gz W, the Grams); the eigensolve's are in
    its tau term."""
    if P == 1:
        return dict.fromkeys(PHASES, 0.0)
    pr, pc = grid(P)
    lg = 2 * math.log2(P)
    abt = panels(n, N / pr + n / pr + n / pc, b * pc, chunk_mb)
    copies = 2.0 + 1.0 / pr if pr > 1 else 1.0
    ab = panels(n, (N / pr if pc > 1 else 0.0) + copies * n / pc, b, chunk_mb)
    gram = panels(n, N / pr + N / pc, b * pc, chunk_mb)
    return {"forward": passes * ((L + 1) * abt + n / b) * lg,
            "backward": (L * ab + 1) * lg,
            "gram": (2 * L + 2) * gram * lg, "hadamard": 0.0, "eigensolve": 0.0}


def memory_per_rank(N, n, L, P):
    """Peak bytes per rank: assembly (activations, weights, 3 N x N) and eigensolve."""
    asm = (2 * L + 1) * N * n + L * n * n + n * P_FEAT + 2 * N * P_FEAT + 3.0 * N * N
    eig = 3.0 * N * N            # Theta, the solver's copy, workspace (no eigenvectors)
    return 8.0 * max(asm, eig) / P, 8.0 * asm / P, 8.0 * eig / P


def fits_cache(N, P, nodes, cache_mb):
    """Whether the matrix's share of one node fits in that node's last-level cache."""
    return 8.0 * N * N / max(1, nodes) <= cache_mb * 2 ** 20


def predict(m, N, n, L, P, cores, nodes=1, b=64, alpha=0.0, beta=None, mem_bw=None, tau=None,
            parts=None, passes=1, chunk_mb=256.0):
    """Seconds per phase for calibration `m`.  beta, mem_bw (per node) and tau replace the
    calibrated values (a cluster's).  `parts` receives the compute, bandwidth and latency sums.
    passes: forward passes per NTK evaluation; chunk_mb: ntk.chunk_mb (the panel widths)."""
    beta = beta or m["beta"]
    F, W = flops(N, n, L, passes), words(N, n, L, P, passes)
    M = messages(N, n, L, P, b, passes, chunk_mb)
    share = max(1.0, P / float(cores))
    t = {}
    acc = {"compute": 0.0, "bandwidth": 0.0, "latency": 0.0}
    for ph in ["forward", "backward", "gram", "hadamard"]:
        c = F[ph] / (P * m["rates"][ph]) * share
        w, l = W[ph] * 8.0 / beta, M[ph] * alpha
        t[ph] = c + w + l
        acc["compute"] += c
        acc["bandwidth"] += w
        acc["latency"] += l
    f3, b2 = eig_parts(N)
    if mem_bw is None:
        mem_bw = m["mem_bw_cache"] if fits_cache(N, P, nodes, m["cache_mb"]) else m["mem_bw"]
    c = (f3 / (P * m["rates"]["gram"]) * share + b2 / (nodes * mem_bw)) * (1.0 + kappa(m, P, cores))
    l = N * (m.get("tau", 0.0) if tau is None else tau) * math.log2(P)
    t["eigensolve"] = c + l
    acc["compute"] += c
    acc["latency"] += l
    if parts is not None:
        parts.update(acc)
    return t


def kappa(m, P, cores):
    """The eigensolve's overhead of several ranks: one value for ranks with a core each (what
    a cluster runs), one for ranks sharing cores (this VM's oversubscribed calibration runs)."""
    if P == 1:
        return 0.0
    return m.get("kappa_shared", m["kappa"]) if P > cores else m["kappa"]


def load_runs(files):
    import ntkfile
    runs = []
    for path in files:
        with ntkfile.open_file(path) as f:
            cfg, tim = ntkfile.effective_config(f), ntkfile.timing(f)
            N, n, L = int(cfg["data.n_train"]), int(cfg["model.width"]), int(cfg["model.depth"])
            # forward passes as the file counted them: 1 since the kernel reuses the loss's
            # states (2026-12-04), 2 in older files
            one = flops(N, n, L)["forward"]
            done = tim.get("forward", {}).get("flops", 0.0)
            passes = round(done / one, 3) if done > 0 else 1
            runs.append({"file": path, "P": int(ntkfile.attr(f, "mpi_size")), "N": N, "n": n,
                         "L": L, "passes": passes, "t": {ph: tim[ph]["max"] for ph in PHASES}})
    return runs


def fit(runs, cores, cache_mb):
    """Rates from the 1-rank runs; beta, the memory bandwidths and tau by least squares
    on what the compute terms leave."""
    ones = [r for r in runs if r["P"] == 1]
    if not ones:
        raise SystemExit("calibration needs 1-rank runs")
    rates = {}
    for ph in ["forward", "backward", "gram", "hadamard"]:
        # geometric mean: the rate that makes the 1-rank relative errors cancel
        logs = [math.log(flops(r["N"], r["n"], r["L"], r.get("passes", 1))[ph] / r["t"][ph])
                for r in ones]
        rates[ph] = math.exp(sum(logs) / len(logs))
    m = {"rates": rates, "cache_mb": cache_mb}
    bw = {True: [], False: []}
    for r in ones:
        f3, b2 = eig_parts(r["N"])
        rest = r["t"]["eigensolve"] - f3 / rates["gram"]
        if rest > 0:
            bw[fits_cache(r["N"], 1, 1, cache_mb)].append(b2 / rest)
    if not bw[False] and not bw[True]:
        raise SystemExit("calibration: no 1-rank eigensolve time to fit the memory bandwidth")
    # one regime missing: take the other's (the prediction then says which one was seen)
    m["mem_bw"] = sum(bw[False]) / len(bw[False]) if bw[False] else sum(bw[True]) / len(bw[True])
    m["mem_bw_cache"] = sum(bw[True]) / len(bw[True]) if bw[True] else m["mem_bw"]
    multi = [r for r in runs if r["P"] > 1]
    # excess over the compute term = 8 W / beta: least squares through the origin for 1/beta.
    # Every large product is one DGEMM per gathered panel, so there is no compute overhead of
    # several ranks to fit (PDGEMM's SUMMA rounds had one, docs/SCALING.md)
    sxx = sxy = 0.0
    for r in multi:
        q = r.get("passes", 1)
        F, W = flops(r["N"], r["n"], r["L"], q), words(r["N"], r["n"], r["L"], r["P"], q)
        share = max(1.0, r["P"] / float(cores))
        for ph in COMM:
            c = F[ph] / (r["P"] * rates[ph]) * share
            sxx += (8.0 * W[ph]) ** 2
            sxy += 8.0 * W[ph] * (r["t"][ph] - c)
    inv = sxy / sxx if sxx > 0 else 0.0
    m["beta"] = 1.0 / inv if inv > 0 else float("inf")
    # the eigensolve on several ranks of one node: the measured time over the compute and
    # memory terms, less one (load imbalance and waiting inside PDSYTRD), for ranks with a
    # core each and for ranks sharing cores (each of PDSYTRD's per-column reductions then
    # waits for descheduled ranks); the latency term N tau log2 P is too small to separate
    # here (shared-memory latency ~1 us) and is the network's on a cluster (predict)
    m["kappa"], m["tau"] = 0.0, 0.0
    over = {False: [], True: []}
    for r in multi:
        t = predict(m, r["N"], r["n"], r["L"], r["P"], cores, passes=r.get("passes", 1))["eigensolve"]
        over[r["P"] > cores].append(r["t"]["eigensolve"] / t - 1.0)
    mean = {k: max(0.0, sum(v) / len(v)) for k, v in over.items() if v}
    m["kappa"] = mean.get(False, mean.get(True, 0.0))
    m["kappa_shared"] = mean.get(True, m["kappa"])
    return m


def group(runs):
    """Repeats of one configuration (N, n, L, P) as one row: the median of each phase (a
    run on a shared node scatters; the median is what a repeat is expected to give) and
    the spread (max/min - 1)."""
    by = {}
    for r in runs:
        by.setdefault((r["N"], r["n"], r["L"], r["P"], r.get("passes", 1)), []).append(r)
    out = []
    for (N, n, L, P, q), rs in sorted(by.items()):
        t, spread = {}, {}
        for ph in PHASES:
            v = sorted(r["t"][ph] for r in rs)
            k = len(v)
            t[ph] = v[k // 2] if k % 2 else 0.5 * (v[k // 2 - 1] + v[k // 2])
            spread[ph] = v[-1] / v[0] - 1.0 if v[0] > 0 else 0.0
        out.append({"N": N, "n": n, "L": L, "P": P, "passes": q, "t": t, "spread": spread, "runs": rs})
    return out


def compare(m, runs, cores, fitted):
    print("parameters: rates per core (flop/s; hadamard: entry updates/s) " +
          ", ".join("%s %.3g" % (k, v) for k, v in m["rates"].items()))
    print("            beta %.3g B/s per rank, memory bandwidth "
          "%.3g B/s (matrix in cache: %.3g), eigensolve overhead on several ranks kappa %.2f (ranks sharing "
          "cores: %.2f)" % (m["beta"], m["mem_bw"], m["mem_bw_cache"], m["kappa"],
                            m.get("kappa_shared", m["kappa"])))
    print("measured: median over the repeats of a configuration (spread: max/min - 1)")
    print("%6s %6s %3s %3s %4s %5s %10s %10s %7s %7s" % ("N", "n", "L", "P", "runs", "fit", "measured",
                                                       "model", "error", "spread"))
    worst = 0.0
    for c in group(runs):
        t = predict(m, c["N"], c["n"], c["L"], c["P"], cores, passes=c["passes"])
        fit = "yes" if all(r["file"] in fitted for r in c["runs"]) else "no"
        for ph in PHASES:
            e = (t[ph] - c["t"][ph]) / c["t"][ph] if c["t"][ph] > 0 else float("nan")
            worst = max(worst, abs(e))
            print("%6d %6d %3d %3d %4d %5s %10.3f %10.3f %+6.0f%% %6.0f%%  %s" % (
                c["N"], c["n"], c["L"], c["P"], len(c["runs"]), fit, c["t"][ph], t[ph], 100 * e,
                100 * c["spread"][ph], ph))
    print("largest error: %.0f%%" % (100 * worst))
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("files", nargs="+")
    c.add_argument("--cores", type=int, default=os.cpu_count())
    c.add_argument("--cache-mb", type=float, default=32.0, help="last-level cache per node [MiB]")
    c.add_argument("--fit", default="", help="fit only on files whose name contains this")
    c.add_argument("--save")
    p = sub.add_parser("predict")
    p.add_argument("--rates", help="JSON from calibrate --save")
    p.add_argument("--N", type=int, default=65536)
    p.add_argument("--n", type=int, default=65536)
    p.add_argument("--L", type=int, default=8)
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--chunk-mb", type=float, default=256.0,
                   help="ntk.chunk_mb of the runs: the gathered products' panel widths (latency)")
    p.add_argument("--ranks-per-node", type=int, default=64)
    p.add_argument("--alpha", type=float, default=2e-6, help="network latency [s]")
    p.add_argument("--node-bw", type=float, default=12.5e9, help="injection bandwidth per node [B/s]")
    p.add_argument("--node-mem-bw", type=float, default=200e9, help="memory bandwidth per node [B/s]")
    p.add_argument("--sync-messages", type=float, default=6.0,
                   help="messages per column and tree level of the tridiagonal reduction")
    p.add_argument("--nodes", default="16,64,256,1024")
    a = ap.parse_args(argv)
    if a.cmd == "calibrate":
        runs = load_runs(a.files)
        fitted = [r for r in runs if a.fit in os.path.basename(r["file"])]
        m = fit(fitted, a.cores, a.cache_mb)
        compare(m, runs, a.cores, {r["file"] for r in fitted})
        if a.save:
            with open(a.save, "w") as f:
                json.dump(m, f, indent=1)
        return 0
    if not a.rates:
        raise SystemExit("predict needs --rates (from calibrate --save)")
    m = json.load(open(a.rates))
    tau = a.sync_messages * a.alpha
    print("N=%d n=%d L=%d, %d ranks/node, alpha %.1e s, %.1f GB/s network and %.0f GB/s memory "
          "per node, tau %.1e s" % (a.N, a.n, a.L, a.ranks_per_node, a.alpha, a.node_bw / 1e9,
                                    a.node_mem_bw / 1e9, tau))
    print("%6s %7s %9s %9s %9s %9s %9s %9s %9s %9s %9s %10s %9s" % (
        "nodes", "ranks", "forward", "backward", "gram", "hadamard", "eigen", "total", "compute",
        "bandwidth", "latency", "limit", "GiB/rank"))
    for nodes in [int(x) for x in a.nodes.split(",")]:
        P = nodes * a.ranks_per_node
        parts = {}
        # all ranks of a node communicate at once through its one network port
        t = predict(m, a.N, a.n, a.L, P, P, nodes, a.block, a.alpha, a.node_bw / a.ranks_per_node,
                    a.node_mem_bw, tau, parts, chunk_mb=a.chunk_mb)
        mem = memory_per_rank(a.N, a.n, a.L, P)[0] / 2 ** 30
        print("%6d %7d %9.2f %9.2f %9.2f %9.3f %9.2f %9.2f %9.2f %9.2f %9.2f %10s %9.3f" % (
            nodes, P, t["forward"], t["backward"], t["gram"], t["hadamard"], t["eigensolve"],
            sum(t.values()), parts["compute"], parts["bandwidth"], parts["latency"],
            max(t, key=t.get), mem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
