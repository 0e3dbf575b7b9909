#!/usr/bin/env python3
"""Performance model of ntkspec's NTK pipeline (docs/SCALING.md): flops, memory and
communication per phase as functions of N, n, L, ranks P (grid Pr x Pc) and block size b;
calibrated on measured 1-rank runs; checked against measured multi-rank runs; used to
predict a headline problem on a cluster.

    tools/perf_model.py calibrate --cores C FILE.h5...   # fit on the 1-rank files, compare all
    tools/perf_model.py predict [--N 65536 --n 65536 --L 8] [--rates rates.json] ...

Model (per NTK evaluation, structured method, k outputs, p = 2m Fourier features):
  forward    F = 2 N n (p + L n + k) per pass (ntkspec run does 2 passes: NTK + loss)
  backward   F = 2 N n (L n + k)
  gram       F = N (N+1) ((2L+2) n + k + p)          (PDSYRK, lower triangle)
  hadamard   B = 3 * 8 (L+2) N^2 / 2 bytes streamed   (memory bound)
  eigensolve F = 4/3 N^3 (tridiagonal reduction; half BLAS-2) + latency N c_tri log2 P alpha
Time of a phase on P ranks sharing C cores: t = F / (P R) * max(1, P / C) + words * 8 / beta
+ messages * alpha, with R the phase's rate per core calibrated at P = 1.  Words per rank:
PDGEMM (N x K)(K x n): N K / Pr + K n / Pc;  PDSYRK (N x K): N K (1/Pr + 1/Pc)."""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

P_FEAT, K_OUT = 128, 1      # configs/quickstart.yaml: m = 64 Fourier features, k = 1
PHASES = ["forward", "backward", "gram", "hadamard", "eigensolve"]


def grid(P):
    pc = int(math.sqrt(P))
    while P % pc:
        pc -= 1
    return P // pc, pc


def flops(N, n, L, passes=2):
    return {"forward": passes * 2.0 * N * n * (P_FEAT + L * n + K_OUT),
            "backward": 2.0 * N * n * (L * n + K_OUT),
            "gram": N * (N + 1.0) * ((2 * L + 2) * n + K_OUT + P_FEAT),
            "hadamard": 1.5 * N * (N + 1.0) * (L + 2),
            "eigensolve": 4.0 / 3.0 * N ** 3}


def words(N, n, L, P, passes=2):
    """Words received per rank per phase (SUMMA-style PBLAS)."""
    pr, pc = grid(P)
    if P == 1:
        return dict.fromkeys(PHASES, 0.0)
    gemm = N * n / pr + n * n / pc
    return {"forward": passes * L * gemm, "backward": L * gemm,
            "gram": (2 * L + 2) * N * n * (1.0 / pr + 1.0 / pc),
            "hadamard": 0.0,
            # PDSYTRD: two panel broadcasts of the trailing matrix per column block
            "eigensolve": 2.0 * N * N * (1.0 / pr + 1.0 / pc) / 2.0}


def messages(N, n, L, P, b, passes=2):
    if P == 1:
        return dict.fromkeys(PHASES, 0.0)
    lg = math.log2(P)
    per_gemm = (n / b) * 2 * lg
    return {"forward": passes * L * per_gemm, "backward": L * per_gemm,
            "gram": (2 * L + 2) * (n / b) * 2 * lg, "hadamard": 0.0,
            "eigensolve": 6.0 * N * lg}     # a few reductions per column of PDSYTRD


def memory_per_rank(N, n, L, P):
    """Peak bytes per rank: assembly (activations, weights, 3 N x N) and eigensolve."""
    asm = (2 * L + 1) * N * n + L * n * n + n * P_FEAT + 2 * N * P_FEAT + 3.0 * N * N
    eig = 3.0 * N * N            # Theta, the solver's copy, workspace (no eigenvectors)
    return 8.0 * max(asm, eig) / P, 8.0 * asm / P, 8.0 * eig / P


def predict(rates, N, n, L, P, cores, b=64, alpha=0.0, beta=float("inf"), parts=None):
    """Seconds per phase; `parts` (a dict) receives the compute, bandwidth and latency sums."""
    F, W, M = flops(N, n, L), words(N, n, L, P), messages(N, n, L, P, b)
    share = max(1.0, P / float(cores))
    t = {}
    for ph in PHASES:
        c, w, l = F[ph] / (P * rates[ph]) * share, W[ph] * 8.0 / beta, M[ph] * alpha
        t[ph] = c + w + l
        if parts is not None:
            for k, v in (("compute", c), ("bandwidth", w), ("latency", l)):
                parts[k] = parts.get(k, 0.0) + v
    return t


def calibrate(files, cores, b, effective=None):
    import ntkfile
    runs = []
    for path in files:
        with ntkfile.open_file(path) as f:
            cfg, tim = ntkfile.effective_config(f), ntkfile.timing(f)
            runs.append({"file": path, "P": int(ntkfile.attr(f, "mpi_size")),
                         "N": int(cfg["data.n_train"]), "n": int(cfg["model.width"]),
                         "L": int(cfg["model.depth"]),
                         "t": {ph: tim[ph]["max"] for ph in PHASES}})
    ones = [r for r in runs if r["P"] == 1]
    if not ones:
        raise SystemExit("calibration needs 1-rank runs")
    rates = {}
    for ph in PHASES:
        # the fastest 1-rank observation of each phase (least disturbed by other load)
        rates[ph] = max(flops(r["N"], r["n"], r["L"])[ph] / r["t"][ph] /
                        min(1.0, (effective or {}).get(os.path.basename(r["file"]), 1.0)) for r in ones)
    print("rates per core (flop/s; hadamard: 'flop' = entry updates): " +
          ", ".join("%s %.3g" % (k, v) for k, v in rates.items()))
    print("%-44s %3s %10s %10s %7s" % ("run", "P", "measured", "model", "error"))
    for r in sorted(runs, key=lambda r: (r["N"], r["P"], r["file"])):
        # on a shared machine the cores a run really got (CPU time / wall time, from the
        # process accounting) replace the nominal core count
        c = (effective or {}).get(os.path.basename(r["file"]), cores)
        m = predict(rates, r["N"], r["n"], r["L"], r["P"], c, b)
        for ph in PHASES:
            e = (m[ph] - r["t"][ph]) / r["t"][ph] if r["t"][ph] > 0 else float("nan")
            print("%-44s %3d %10.3f %10.3f %+6.0f%%  %s" % (os.path.basename(r["file"]), r["P"], r["t"][ph],
                                                         m[ph], 100 * e, ph))
    return rates


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("files", nargs="+")
    c.add_argument("--cores", type=int, default=os.cpu_count())
    c.add_argument("--block", type=int, default=64)
    c.add_argument("--save")
    c.add_argument("--effective-cores", default="",
                   help="FILE=C,...: cores a run actually got (CPU time / wall time)")
    p = sub.add_parser("predict")
    p.add_argument("--rates", help="JSON from calibrate --save")
    p.add_argument("--N", type=int, default=65536)
    p.add_argument("--n", type=int, default=65536)
    p.add_argument("--L", type=int, default=8)
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--ranks-per-node", type=int, default=64)
    p.add_argument("--alpha", type=float, default=2e-6, help="latency [s]")
    p.add_argument("--node-bw", type=float, default=12.5e9, help="injection bandwidth per node [B/s]")
    p.add_argument("--nodes", default="16,64,256,1024")
    a = ap.parse_args(argv)
    if a.cmd == "calibrate":
        eff = dict((kv.split("=")[0], float(kv.split("=")[1])) for kv in a.effective_cores.split(",") if kv)
        rates = calibrate(a.files, a.cores, a.block, eff)
        if a.save:
            with open(a.save, "w") as f:
                json.dump(rates, f, indent=1)
        return 0
    rates = json.load(open(a.rates)) if a.rates else None
    if rates is None:
        raise SystemExit("predict needs --rates (from calibrate --save)")
    print("N=%d n=%d L=%d, %d ranks/node, alpha %.1e s, %.1f GB/s per node" % (
        a.N, a.n, a.L, a.ranks_per_node, a.alpha, a.node_bw / 1e9))
    print("%6s %7s %9s %9s %9s %9s %9s %9s %9s %9s %9s %10s %9s" % (
        "nodes", "ranks", "forward", "backward", "gram", "hadamard", "eigen", "total", "compute",
        "bandwidth", "latency", "limit", "GiB/rank"))
    for nodes in [int(x) for x in a.nodes.split(",")]:
        P = nodes * a.ranks_per_node
        beta = a.node_bw / a.ranks_per_node       # all ranks of a node communicate at once
        parts = {}
        t = predict(rates, a.N, a.n, a.L, P, P, a.block, a.alpha, beta, parts)
        tot = sum(t.values())
        mem = memory_per_rank(a.N, a.n, a.L, P)[0] / 2 ** 30
        print("%6d %7d %9.2f %9.2f %9.2f %9.3f %9.2f %9.2f %9.2f %9.2f %9.2f %10s %9.3f" % (
            nodes, P, t["forward"], t["backward"], t["gram"], t["hadamard"], t["eigensolve"], tot,
            parts["compute"], parts["bandwidth"], parts["latency"], max(t, key=t.get), mem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
