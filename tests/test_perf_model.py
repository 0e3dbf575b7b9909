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

# ---- the network model (docs/SCALING.md "Shaped links") ----
# every exchange of gathers() is one that words() counts: their mean over the ranks agree
for N, n, L in [(1024, 1024, 4), (3000, 1000, 2)]:
    for P in [2, 3, 4, 6, 8, 9, 16, 64]:
        X, W = PM.gathers(N, n, L, P), PM.words(N, n, L, P)
        for ph in PM.COMM:
            mean, busy = PM.gather_words(X[ph], busiest=False), PM.gather_words(X[ph])
            R.check(abs(mean - W[ph]) <= 1e-9 * W[ph] and busy >= mean * (1 - 1e-12),
                    "P=%d %s: exchanges' mean %.6g, words() %.6g, busiest %.6g" % (P, ph, mean, W[ph], busy))
# square grids: the Gram's gather along grid columns is one-way, from the diagonal rank; a
# 2 x 2 grid's busiest rank receives N K/2 of it (all its C columns' rows) plus N K/4 along
# its grid row, K = (2L+2) n + k + p; a 2 x 1 grid is balanced: N K/2
K = 10 * 1024 + PM.K_OUT + PM.P_FEAT
R.check(abs(PM.gather_words(PM.gathers(1024, 1024, 4, 4)["gram"]) - 0.75 * 1024 * K) < 1e-6,
        "2x2 Gram: the busiest rank receives 3/4 N K")
R.check(abs(PM.gather_words(PM.gathers(1024, 1024, 4, 2)["gram"]) - 0.5 * 1024 * K) < 1e-6,
        "2x1 Gram: every rank receives N K/2")
one_rates = {"rates": {"forward": 4e10, "backward": 5e10, "gram": 3e10, "hadamard": 6e8}, "cache_mb": 32.0,
             "mem_bw": 1.5e10, "mem_bw_cache": 2.5e10, "beta": 3e8, "kappa": 0.1, "tau": 0.0}
# a TCP link as tbf counts it: whole 1514-byte frames per 1448 payload bytes, less the burst
net = PM.net_tcp(100e6, 25e-6, burst=131072, pair=2.0)
R.check(abs(PM.transfer(1048576, net) - (8 * 1048576 * 1514 / 1448 - 131072) / 12.5e6) < 1e-12,
        "transfer over tbf: %r" % PM.transfer(1048576, net))
R.check(PM.transfer(1000, net) == 0.0, "a message within the burst costs no bandwidth time")
# Open MPI 4.1's tuned allgatherv (coll_tuned_decision_fixed.c) at large sizes
R.check([PM.allgatherv_algorithm(q, 1 << 20) for q in (2, 4, 8, 32, 300, 1024)] ==
        ["two_proc", "neighbor", "bruck", "ring", "ring", "neighbor"], "allgatherv algorithms")
cl = PM.net_cluster(2e-6, 1e9)
x = PM.transfer(1e6, cl)
R.check(abs(x - 8e-3) < 1e-15, "cluster transfer: 8 MB at 1 GB/s")
R.check(abs(PM.allgatherv_time(32, 1, 1e6, cl) - 31 * (2e-6 + x)) < 1e-12,
        "ring with one contributor: the block hops q-1 times")
R.check(abs(PM.allgatherv_time(32, 32, 1e6, cl) - 31 * (2e-6 + x)) < 1e-12, "ring, all contribute")
R.check(abs(PM.allgatherv_time(2, 2, 1e6, net) - (25e-6 + 2.0 * PM.transfer(1e6, net))) < 1e-12,
        "two ranks both sending over one connection: the pair factor")
R.check(abs(PM.allgatherv_time(2, 1, 1e6, net) - (25e-6 + PM.transfer(1e6, net))) < 1e-12,
        "two ranks, one sending: one transfer")
R.check(abs(PM.allgatherv_time(2, 2, 1e6, PM.net_cluster(2e-6, 1e9, pair=1.12)) - (2e-6 + 1.12 * x)) < 1e-12
        and PM.net_cluster(2e-6, 1e9, pair=1.12)["pair_eager"] == 1.0,
        "a cluster's pair factor (TCP, two connections): the large exchanges only")
R.check(abs(PM.allgatherv_time(8, 8, 1e4, cl) - (3 * 2e-6 + 7 * PM.transfer(1e4, cl))) < 1e-12,
        "bruck, all contribute: log2 q steps, q-1 blocks")
# ntk_gather_blocks: one contributor of 32 broadcasts by a linear scatter of 32 pieces and a
# ring allgather of them (250 kB per rank): 2 x 31 steps, 2 (q-1)/q of the block; the old
# MPI_Allgatherv (bcast=False) forwarded the whole block 31 times
R.check(abs(PM.gather_time(32, 1, 1e6, cl) - (62 * 2e-6 + 62 * PM.transfer(1e6 / 32, cl))) < 1e-12,
        "one contributor of 32: scatter and allgather of its pieces")
R.check(abs(PM.gather_time(32, 1, 1e6, PM.net_cluster(2e-6, 1e9, bcast=False)) - 31 * (2e-6 + x)) < 1e-12,
        "the allgatherv what-if: the ring")
R.check(PM.gather_time(2, 1, 1e6, net) == PM.allgatherv_time(2, 1, 1e6, net) == 25e-6 + PM.transfer(1e6, net),
        "one of two: MPI_Bcast, one transfer as MPI_Allgatherv's two_proc")
R.check(PM.gather_time(4, 2, 1e6, cl) == PM.allgatherv_time(4, 2, 1e6, cl) and
        PM.gather_time(8, 8, 1e6, cl) == PM.allgatherv_time(8, 8, 1e6, cl),
        "half or all contributing: MPI_Allgatherv")
R.check(abs(PM.gather_time(8, 3, 1e6, cl) - 3 * PM.bcast_time(8, 1e6, cl)) < 1e-12,
        "3 of 8 contributing: a broadcast each")
# 2 x 2 (the shaped links' 4 hosts): the broadcast of a grid column of two ranks is the one
# transfer MPI_Allgatherv made, so the prediction does not change; 8 x 8 it does
old_net = dict(net, bcast=False)
R.check(PM.predict(one_rates, 1024, 1024, 4, 4, 4, net=net) == PM.predict(one_rates, 1024, 1024, 4, 4, 4, net=old_net),
        "2 x 2: the same prediction with broadcasts and with MPI_Allgatherv")
R.check(PM.predict(one_rates, 8192, 8192, 4, 64, 64, net=cl)["gram"] <
        PM.predict(one_rates, 8192, 8192, 4, 64, 64, net=PM.net_cluster(2e-6, 1e9, bcast=False))["gram"],
        "8 x 8: broadcasts are faster than the ring")
# PDSYNTRD: one rank reduces when isqrt(P) = 1 (the triangle moves there and back)
R.check(abs(PM.eig_network(1000, 2, net) - 2 * (25e-6 + PM.transfer(1000 * 1001 / 4.0, net))) < 1e-12,
        "eigensolve on 2 ranks: two transfers of half the triangle")
R.check(PM.eig_network(1000, 1, net) == 0.0 and PM.eig_network(1000, 8, net) == PM.eig_network(1000, 4, net),
        "eigensolve: 8 ranks reduce on the 2 x 2 subgrid like 4")
# PDSYTTRD's transposes: eager messages (N/q words under 64 KiB) overlap their directions
# (pair_eager); above the eager limit the large exchanges' pair factor applies
eager = PM.net_tcp(100e6, 25e-6, burst=131072, pair=2.0, pair_eager=1.0)
R.check(net["pair_eager"] == 2.0, "pair_eager defaults to pair")
R.check(abs(PM.eig_network(1024, 4, net) - PM.eig_network(1024, 4, eager) -
            PM.transfer(1.62 * 1024 * 1024 / 2, net)) < 1e-12,
        "eigensolve on 2 x 2, N = 1024 (4 KiB transposes): pair_eager replaces pair")
R.check(abs(PM.eig_network(32768, 4, net) - PM.eig_network(32768, 4, eager)) < 1e-12,
        "eigensolve on 2 x 2, N = 32768 (128 KiB transposes, rendezvous): pair")
pe = os.path.join(tmp, "pp_small.txt")
one_way = 8192 * 1514 / 1448 / 1.25e6   # 8 KiB at 10 Mbit/s
with open(pe, "w") as f:
    f.write("# bytes half_rtt_min_s half_rtt_median_s exchange_s exchange_bytes_per_s\n"
            "2048 2e-05 3e-04 1.7e-03 1\n8192 3e-05 3e-03 %r 1\n" % (1.5 * one_way))
R.check(abs(PM.pair_factor_eager(pe, 10e6) - 1.5) < 1e-12, "eager pair factor: exchange over the rate's time")
with open(pe, "w") as f:
    f.write("8192 3e-05 3e-05 %r 1\n" % (0.1 * one_way))
R.check(PM.pair_factor_eager(pe, 10e6) == 1.0, "eager pair factor: at least 1 (an undrained bucket)")
# the band's two ends differ on a two_proc exchange by (pair - pair_idle) one-way transfers
n1 = PM.net_tcp(30e6, 25e-6, burst=131072, pair=2.06)
n2 = PM.net_tcp(30e6, 25e-6, burst=131072, pair=1.03)
R.check(abs(PM.allgatherv_time(2, 2, 262144, n1) - PM.allgatherv_time(2, 2, 262144, n2) -
            1.03 * PM.transfer(262144, n1)) < 1e-12, "2 MiB exchange: turns minus at once = 1.03 transfers")
# one rank: the network changes nothing
one = one_rates
R.check(PM.predict(one, 1024, 1024, 4, 1, 2, net=net) == PM.predict(one, 1024, 1024, 4, 1, 2),
        "one rank: the same prediction with and without a network")
# the backward's maximum carries the Grams' one-way tails on square grids only
R.check(PM.backward_drain(1024, 1024, 4, 2, net, 4194304) == 0.0 and
        abs(PM.backward_drain(1024, 1024, 4, 4, net, 4194304) - 4 * PM.transfer(524288, net)) < 1e-12,
        "backward drain: none on 2 x 1, one Gram message per layer on 2 x 2")

# `shaped` reads scripts/shaped-scaling.sh's folder: here the runs above as if shaped
if len(files) == 4:
    import shutil
    sh = os.path.join(tmp, "shaped")
    os.makedirs(sh)
    pp = "# bytes half_rtt_min_s half_rtt_median_s exchange_s exchange_bytes_per_s\n8 2e-05 2.5e-05 5e-05 1\n" \
         "2097152 0.1 0.17 0.34 1\n"
    for name in ["pingpong_p2_unshaped.txt", "pingpong_p4_unshaped.txt", "pingpong_100mbit_l1.txt"]:
        with open(os.path.join(sh, name), "w") as f:
            f.write(pp)
    with open(os.path.join(sh, "shape_100mbit.txt"), "w") as f:
        f.write("links: tbf rate 100mbit burst 131072 latency 10ms at each end\n")
    with open(os.path.join(sh, "tcp_wmem.txt"), "w") as f:
        f.write("4096\t16384\t4194304\n")
    with open(os.path.join(sh, "runs.tsv"), "w") as f:
        f.write("file\trate\tlinks\thosts\trepeat\tload1\tbytes_before\tbytes_after\n")
        for path in files[:2] + files[3:]:
            shutil.copy(path, sh)
            P = int(path.split("_p")[-1].split(".")[0])
            f.write("%s\t100mbit\t1\t%d\t1\t0.5\t0\t0\n" % (os.path.basename(path), P))
    out = os.path.join(sh, "comparison.csv")
    p = subprocess.run([sys.executable, os.path.join(H.SOURCE_DIR, "tools", "perf_model.py"), "shaped", sh,
                        "--cores", "2", "--csv", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rows = open(out).read().splitlines() if os.path.exists(out) else []
    R.check(p.returncode == 0 and "alpha 25.0/25.0 us" in p.stdout and len(rows) == 1 + 3 * 4 and
            rows[1].startswith("forward,1,") and rows[5].startswith("forward,2,100mbit,1,2,"),
            "shaped: one row per phase and host count (1, 2, 4), pair factor 2: %s %s" % (p.stdout[-600:], rows[:6]))
    import csv
    # without the idle-link benchmark the band is the one prediction
    got = list(csv.DictReader(open(out))) if os.path.exists(out) else []
    R.check(len(got) == 12 and all(r["pair_idle"] == "2" and r["predicted_duplex"] == r["predicted"] for r in got),
            "shaped without pingpong_RATE_l1_idle.txt: duplex = model")
    # with it (exchanges at the one-way time after an idle link): the 2-host Gram's two
    # 0.5 MiB exchanges per Gram lose one one-way transfer each, 1-host rows do not change
    with open(os.path.join(sh, "pingpong_100mbit_l1_idle.txt"), "w") as f:
        f.write(pp.replace("0.34 1", "0.17 1"))
    with open(os.path.join(sh, "shape_100mbit.txt"), "w") as f:   # these runs' exchanges fit a burst
        f.write("links: tbf rate 100mbit burst 0 latency 10ms at each end\n")
    p = subprocess.run([sys.executable, os.path.join(H.SOURCE_DIR, "tools", "perf_model.py"), "shaped", sh,
                        "--cores", "2", "--csv", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    got = {(r["phase"], r["hosts"]): r for r in csv.DictReader(open(out))} if p.returncode == 0 else {}
    g2 = got.get(("gram", "2"), {})
    e2 = got.get(("eigensolve", "2"), {})
    R.check(len(got) == 12 and all(got[(ph, "1")]["predicted_duplex"] == got[(ph, "1")]["predicted"]
                                   for ph in PM.COMM) and
            g2.get("pair_idle") == "1" and float(g2["predicted_duplex"]) < float(g2["predicted"]) and
            e2.get("predicted_duplex") == e2.get("predicted"),
            "shaped with the idle-link benchmark: 1 host and the 2-host eigensolve (one-way copies) "
            "unchanged, the 2-host Gram's exchanges shorter: %s" % (p.stdout[-400:]))

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
        # the matrix-free method (issue 18) from the same rates
        p = subprocess.run([sys.executable, tool, "predict-mf", "--rates", rates, "--N", "1000000",
                            "--nodes", "16,64"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rows = [l.split() for l in p.stdout.splitlines()[2:]]
        R.check(p.returncode == 0 and [r[0] for r in rows] == ["16", "64"],
                "predict-mf prints one row per node count: " + p.stdout)
        if len(rows) == 2:
            R.check(float(rows[1][5]) < float(rows[0][5]) and float(rows[1][8]) < float(rows[0][8]),
                    "matrix-free compute and memory per rank fall from 16 to 64 nodes: %s" % rows)

# the matrix-free product's flops are ntk_ntkvp_flops's (its leading term 8 k L N n^2) and
# its words on a tall grid do not depend on N
f = PM.mf_product_flops(4096, 1024, 4)
R.check(abs(f / (8.0 * 4 * 4096 * 1024 ** 2) - 1) < 0.1, "mf flops ~ 8 L N n^2: %g" % f)
R.check(PM.mf_words(4096, 256, 4, 16, tall=True) == PM.mf_words(65536, 256, 4, 16, tall=True),
        "tall-grid words independent of N")

sys.exit(R.finish())
