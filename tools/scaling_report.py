#!/usr/bin/env python3
"""Strong- or weak-scaling table of ntkspec runs: one row per result file, sorted by ranks.

    tools/scaling_report.py [--mode strong|weak] [--basis total|assembly]
                            [--csv OUT.csv] [--png OUT.png] [--ranks-per-node R] FILE.h5...

Times are the maximum over ranks of each phase (/timing/max): the time the run waited
for.  Speedup and efficiency are relative to the smallest rank count P0:
  strong:  speedup = t(P0)/t(P),        efficiency = speedup * P0/P
  weak:    efficiency = t(P0)/t(P),     speedup = efficiency * P/P0  (scaled speedup)
with t the total time (--basis total, default) or the NTK assembly time, forward +
backward + gram + hadamard + jacobian (--basis assembly).  GFLOP/s per rank is the flops
counted in all phases / total time / ranks.  The node count is the file's `slurm_nodes`
attribute when present, else ceil(ranks / --ranks-per-node) (default: 1 node).

The CSV has exactly these columns (other tools read them):
ranks,nodes,N,n,L,time_total,time_forward,time_backward,time_gram,time_hadamard,
time_eigensolve,time_output,time_comm_wait,speedup,efficiency,gflops_per_rank"""
import argparse
import csv
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkfile  # noqa: E402

COLUMNS = ["ranks", "nodes", "N", "n", "L", "time_total", "time_forward", "time_backward",
           "time_gram", "time_hadamard", "time_eigensolve", "time_output", "time_comm_wait",
           "speedup", "efficiency", "gflops_per_rank"]
PHASES = ["total", "forward", "backward", "gram", "hadamard", "eigensolve", "output", "comm_wait"]
ASSEMBLY = ["forward", "backward", "gram", "hadamard", "jacobian"]


def read_run(path, ranks_per_node):
    with ntkfile.open_file(path) as f:
        cfg = ntkfile.effective_config(f)
        tim = ntkfile.timing(f)
        if not tim:
            raise SystemExit("%s: no /timing group (not a finished ntkspec run?)" % path)
        ranks = int(ntkfile.attr(f, "mpi_size", 1))
        nodes = ntkfile.attr(f, "slurm_nodes", "")
        status = ntkfile.attr(f, "status", "")
    try:
        nodes = int(nodes)
    except (TypeError, ValueError):
        nodes = int(math.ceil(ranks / float(ranks_per_node))) if ranks_per_node else 1
    row = {"file": path, "status": status, "ranks": ranks, "nodes": nodes,
           "N": int(cfg.get("data.n_train", 0)), "n": int(cfg.get("model.width", 0)),
           "L": int(cfg.get("model.depth", 0))}
    for p in PHASES:
        row["time_" + p] = tim.get(p, {}).get("max", 0.0)
    row["assembly"] = sum(tim.get(p, {}).get("max", 0.0) for p in ASSEMBLY)
    flops = sum(v.get("flops", 0.0) for k, v in tim.items() if k != "total")
    row["gflops_per_rank"] = flops / row["time_total"] / ranks / 1e9 if row["time_total"] > 0 else 0.0
    return row


def add_scaling(rows, mode, basis):
    key = "time_total" if basis == "total" else "assembly"
    base = rows[0]
    for r in rows:
        ratio = base[key] / r[key] if r[key] > 0 else float("nan")
        rel = r["ranks"] / float(base["ranks"])
        if mode == "strong":
            r["speedup"], r["efficiency"] = ratio, ratio / rel
        else:
            r["speedup"], r["efficiency"] = ratio * rel, ratio
        # the assembly's own efficiency, shown in the text table whatever the basis
        a = base["assembly"] / r["assembly"] if r["assembly"] > 0 else float("nan")
        r["assembly_eff"] = a / rel if mode == "strong" else a


def text_table(rows, mode, basis):
    head = ("%5s %5s %6s %6s %3s %9s %9s %9s %9s %9s %9s %9s %9s %8s %7s %8s %9s" %
            ("ranks", "nodes", "N", "n", "L", "total", "forward", "backward", "gram", "hadamard",
             "eigen", "output", "commwait", "speedup", "eff", "asm_eff", "GF/s/rank"))
    out = ["%s scaling (times in s, max over ranks; speedup/efficiency on %s time)" % (mode, basis), head]
    for r in rows:
        out.append("%5d %5d %6d %6d %3d %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %8.2f %6.1f%% %7.1f%% %9.2f" % (
            r["ranks"], r["nodes"], r["N"], r["n"], r["L"], r["time_total"], r["time_forward"],
            r["time_backward"], r["time_gram"], r["time_hadamard"], r["time_eigensolve"],
            r["time_output"], r["time_comm_wait"], r["speedup"], 100 * r["efficiency"],
            100 * r["assembly_eff"], r["gflops_per_rank"]))
    return "\n".join(out)


def write_png(rows, mode, basis, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    P = [r["ranks"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for p in PHASES:
        pts = [(x, r["time_" + p]) for x, r in zip(P, rows) if r["time_" + p] > 0]
        if pts:  # a log axis: phases that took no time are left out
            a1.plot([x for x, _ in pts], [t for _, t in pts], "o-", label=p, lw=2.2 if p == "total" else 1.2)
    if mode == "strong" and rows[0]["time_total"] > 0:
        a1.plot(P, [rows[0]["time_total"] * P[0] / p for p in P], "k--", lw=0.8, label="ideal")
    a1.set_xscale("log", base=2)
    a1.set_yscale("log")
    a1.set_xlabel("ranks")
    a1.set_ylabel("time [s] (max over ranks)")
    a1.set_title("%s scaling, N=%d n=%d L=%d (P=%d)" % (mode, rows[0]["N"], rows[0]["n"], rows[0]["L"], P[0]))
    a1.legend(fontsize=7)
    a2.plot(P, [100 * r["efficiency"] for r in rows], "o-", label="efficiency (%s)" % basis)
    if basis != "assembly":
        a2.plot(P, [100 * r["assembly_eff"] for r in rows], "s--", label="efficiency (assembly)")
    a2.axhline(100, color="k", lw=0.8)
    a2.set_xscale("log", base=2)
    a2.set_ylim(0, 120)
    a2.set_xlabel("ranks")
    a2.set_ylabel("parallel efficiency [%]")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--mode", choices=["strong", "weak"], default="strong")
    ap.add_argument("--basis", choices=["total", "assembly"], default="total")
    ap.add_argument("--csv")
    ap.add_argument("--png")
    ap.add_argument("--ranks-per-node", type=int, default=0)
    a = ap.parse_args(argv)
    rows = sorted((read_run(p, a.ranks_per_node) for p in a.files), key=lambda r: (r["ranks"], r["file"]))
    add_scaling(rows, a.mode, a.basis)
    print(text_table(rows, a.mode, a.basis))
    bad = [r["file"] for r in rows if r["status"] not in ("complete", "")]
    if bad:
        print("warning: not complete: " + ", ".join(bad))
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for r in rows:
                w.writerow([r[c] if isinstance(r[c], int) else "%.6g" % r[c] for c in COLUMNS])
    if a.png:
        write_png(rows, a.mode, a.basis, a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
