#!/usr/bin/env python3
"""Width sweep summary from per-run ntkspec files (one width and seed each, as written by
jobs/sweep_task.sbatch): how far the empirical NTK at initialisation is from its
infinite-width limit, per width, and the fitted power law.

    tools/sweep_aggregate.py [--csv OUT.csv] FILE.h5...

Per file: d = ||Theta - Theta_inf||_F / ||Theta_inf||_F with Theta = /trajectory/ntk[0]
and Theta_inf = /analytic/ntk, and e = |lambda_max - lambda_max,inf| / lambda_max,inf
from /trajectory/eigenvalues[0] and /analytic/eigenvalues.  Per width: mean, standard
deviation (over seeds), min and max of d, and the mean of e.  The slope is the least-squares
fit of log(mean d) against log(width); finite-width fluctuations of the NTK predict -1/2.
Files without /analytic or /trajectory/ntk are listed and skipped for what they lack.

CSV columns: width,seeds,N,dist_mean,dist_std,dist_min,dist_max,lambda_max_rel_mean"""
import argparse
import collections
import csv
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkfile  # noqa: E402


def read_one(path):
    with ntkfile.open_file(path) as f:
        cfg = ntkfile.effective_config(f)
        r = {"file": path, "width": int(cfg.get("model.width", 0)), "seed": cfg.get("seed", "?"),
             "N": int(cfg.get("data.n_train", 0)), "dist": None, "lam": None, "missing": []}
        ntk, inf_ntk = ntkfile.dataset("trajectory/ntk"), ntkfile.dataset("analytic/ntk")
        eig, inf_eig = ntkfile.dataset("trajectory/eigenvalues"), ntkfile.dataset("analytic/eigenvalues")
        has_ntk, has_inf = ntk in f, inf_ntk in f
        if has_ntk and has_inf:
            theta = f[ntk][0]
            inf = f[inf_ntk][()]
            r["dist"] = float(np.linalg.norm(theta - inf) / np.linalg.norm(inf))
        else:
            r["missing"] += [n for n, ok in ((ntk, has_ntk), (inf_ntk, has_inf)) if not ok]
        if inf_eig in f and eig in f:
            lam = float(f[eig][0][0])
            lam_inf = float(f[inf_eig][0])
            r["lam"] = abs(lam - lam_inf) / abs(lam_inf)
        elif inf_eig not in r["missing"]:
            r["missing"].append(inf_eig)
    return r


def slope(xs, ys):
    if len(xs) < 2:
        return float("nan")
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--csv")
    a = ap.parse_args(argv)
    runs = [read_one(p) for p in a.files]
    by_w = collections.OrderedDict()
    for r in sorted(runs, key=lambda r: (r["width"], str(r["seed"]))):
        by_w.setdefault(r["width"], []).append(r)
    rows = []
    for w, rs in by_w.items():
        d = [r["dist"] for r in rs if r["dist"] is not None]
        lam = [r["lam"] for r in rs if r["lam"] is not None]
        rows.append({"width": w, "seeds": len(rs), "N": rs[0]["N"],
                     "dist_mean": float(np.mean(d)) if d else float("nan"),
                     "dist_std": float(np.std(d, ddof=1)) if len(d) > 1 else float("nan"),
                     "dist_min": min(d) if d else float("nan"), "dist_max": max(d) if d else float("nan"),
                     "lambda_max_rel_mean": float(np.mean(lam)) if lam else float("nan")})
    print("width sweep: %d files, %d widths" % (len(runs), len(rows)))
    print("%8s %6s %6s %12s %12s %12s %12s %14s" % ("width", "seeds", "N", "dist_mean", "dist_std",
                                                  "dist_min", "dist_max", "lmax_rel_mean"))
    for r in rows:
        print("%8d %6d %6d %12.4e %12.4e %12.4e %12.4e %14.4e" % (
            r["width"], r["seeds"], r["N"], r["dist_mean"], r["dist_std"], r["dist_min"],
            r["dist_max"], r["lambda_max_rel_mean"]))
    ok = [r for r in rows if not math.isnan(r["dist_mean"]) and r["dist_mean"] > 0]
    s = slope([r["width"] for r in ok], [r["dist_mean"] for r in ok])
    print("fitted slope d(log dist)/d(log width): %.3f  (finite-width theory: -0.5)" % s)
    for r in runs:
        if r["missing"]:
            print("note: %s lacks %s" % (r["file"], ", ".join(r["missing"])))
    if a.csv:
        cols = ["width", "seeds", "N", "dist_mean", "dist_std", "dist_min", "dist_max", "lambda_max_rel_mean"]
        with open(a.csv, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(cols)
            for r in rows:
                wr.writerow([r[c] if isinstance(r[c], int) else "%.6g" % r[c] for c in cols])
    return 0 if any(r["dist"] is not None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
