"""The performance model (tools/perf_model.py, docs/SCALING.md) against what ntkspec counts:
the model's flops per phase must equal the flops /timing records (exact counts of the
GEMMs, Grams and Hadamard updates issued) on 1, 2 and 4 ranks and for another depth and
width; the grid it assumes must be the one ntkspec chose; `calibrate` must fit on these
files and `predict` must produce the cluster table from the saved parameters."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

sys.path.insert(0, os.path.join(H.SOURCE_DIR, "tools"))
import ntkfile  # noqa: E402
import perf_model as PM  # noqa: E402

R = H.Report()

# fit() must recover the parameters of runs the model itself generated (1, 2 and 4 ranks on 2
# cores; one matrix in a 1 MiB cache, two not)
true = {"rates": {"forward": 4e10, "backward": 5e10, "gram": 3e10, "hadamard": 6e8}, "cache_mb": 1.0,
        "mem_bw": 1.5e10, "mem_bw_cache": 2.5e10, "beta": 3e8, "kappa": 0.1,
        "kappa_shared": 0.5, "tau": 0.0}
synth = [{"file": "synthetic", "N": N, "n": n, "L": L, "P": P,
          "t": PM.predict(true, N, n, L, P, 2)}
         for N, n, L in [(256, 256, 4), (384, 384, 4), (512, 256, 8)] for P in [1, 2, 4]]
got = PM.fit(synth, 2, 1.0)
for key in ["beta", "kappa", "kappa_shared", "mem_bw", "mem_bw_cache"]:
    R.check(abs(got[key] - true[key]) <= 1e-9 * true[key], "fit recovers %s: %r, true %r" % (key, got[key], true[key]))
R.check(all(abs(got["rates"][ph] - v) <= 1e-9 * v for ph, v in true["rates"].items()),
        "fit recovers the rates: %s" % got["rates"])

tmp = H.tmpdir()
cfg = os.path.join(H.SOURCE_DIR, "configs", "quickstart.yaml")
files = []
for N, n, L, P in [(96, 48, 2, 1), (96, 48, 2, 2), (80, 40, 3, 4), (96, 48, 2, 4)]:
    out = os.path.join(tmp, "pm_N%d_n%d_L%d_p%d.h5" % (N, n, L, P))
    p = H.run(["run", cfg, "-q", "--set", "data.n_train=%d" % N, "--set", "data.n_test=0",
               "--set", "model.width=%d" % n, "--set", "model.depth=%d" % L, "--set", "ntk.top_k=8",
               "--set", "train.steps=0", "--set", "output.save_data=false",
               "--set", "grid.block_size=8", "--set", "output.path=" + out], np=P)
    R.check(p.returncode == 0, "run N=%d n=%d L=%d on %d ranks: %s" % (N, n, L, P, p.stderr[-300:]))
    if p.returncode:
        continue
    files.append(out)
    with ntkfile.open_file(out) as f:
        t = ntkfile.timing(f)
        grid = ntkfile.attr(f, "process_grid")
        stored = ntkfile.effective_config(f)
    # the tools' one reader of the stored configuration: typed values, every section
    R.check((stored.get("data.n_train"), stored.get("model.width"), stored.get("model.depth"),
             stored.get("train.steps"), stored.get("output.save_data"), stored.get("output.path"))
            == (N, n, L, 0, False, out), "stored configuration read back: %r" % stored)
    F = PM.flops(N, n, L)
    for ph in ["forward", "backward", "gram", "hadamard"]:
        R.check(abs(t[ph]["flops"] - F[ph]) <= 1e-12 * F[ph],
                "P=%d N=%d n=%d L=%d %s: recorded %.0f flops, model %.0f" % (P, N, n, L, ph, t[ph]["flops"], F[ph]))
    R.check("%dx%d" % PM.grid(P) == grid, "grid of %d ranks: model %s, ntkspec %s" % (P, PM.grid(P), grid))
    R.check(all(v == 0 for v in PM.words(N, n, L, 1).values()), "one rank receives nothing")
    R.check(PM.words(N, n, L, P)["gram"] >= 0 and (P == 1 or PM.words(N, n, L, P)["forward"] > 0),
            "P=%d: the forward pass communicates" % P)

# a measurement runs one forward pass: the kernel is assembled from the loss's states
R.check(all(r["passes"] == 1 for r in PM.load_runs(files)),
        "forward passes read from the files: %s" % [r["passes"] for r in PM.load_runs(files)])
# narrower panels (a smaller ntk.chunk_mb) cut more of them: more messages, the same words
R.check(PM.messages(4096, 4096, 4, 4, 64, chunk_mb=8.0)["forward"] >
        PM.messages(4096, 4096, 4, 4, 64)["forward"], "chunk_mb sets the gathered products' panel count")

if len(files) == 4:
    rates = os.path.join(tmp, "rates.json")
    tool = os.path.join(H.SOURCE_DIR, "tools", "perf_model.py")
    p = subprocess.run([sys.executable, tool, "calibrate", "--cores", "2", "--save", rates] + files,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    R.check(p.returncode == 0 and "largest error" in p.stdout, "calibrate: " + p.stdout[-500:])
    # every file and phase has a row: measured and model side by side
    R.check(sum(1 for l in p.stdout.splitlines() if l.endswith(" eigensolve")) == 4, "one eigensolve row per file")
    if os.path.exists(rates):
        m = json.load(open(rates))
        R.check(all(m["rates"][ph] > 0 for ph in ["forward", "backward", "gram", "hadamard"]) and m["beta"] > 0,
                "positive fitted rates and bandwidth: %s" % m)
        p = subprocess.run([sys.executable, tool, "predict", "--rates", rates, "--nodes", "16,64"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rows = [l.split() for l in p.stdout.splitlines()[2:]]
        R.check(p.returncode == 0 and len(rows) == 2 and [r[0] for r in rows] == ["16", "64"],
                "predict prints one row per node count: " + p.stdout)
        # more nodes: less compute per rank, never more memory per rank
        if len(rows) == 2:
            R.check(float(rows[1][8]) < float(rows[0][8]) and float(rows[1][12]) <= float(rows[0][12]),
                    "compute and memory per rank fall from 16 to 64 nodes: %s" % rows)

sys.exit(R.finish())
