#!/usr/bin/env python3
"""Performance model of ntkspec's NTK pipeline (docs/SCALING.md): flops, memory traffic and
communication per phase as functions of N, n, L, the rank count P (grid Pr x Pc, the one
ntk_grid_choose picks) and the block size; calibrated on measured runs; used to predict a
headline problem on a cluster.

    tools/perf_model.py calibrate --cores C [--fit SUBSTR] [--save rates.json] FILE.h5...
        fit the parameters on the files whose name contains SUBSTR (default: all), then
        print measured (median over repeats of a configuration) against model, phase by phase
    tools/perf_model.py predict --rates rates.json [--N 65536 --n 65536 --L 8] ...
    tools/perf_model.py shaped FOLDER [--stat min|median] [--csv OUT]
        scripts/shaped-scaling.sh's runs over tc-shaped links against the network model
    tools/perf_model.py predict-mf [--rates rates.json | --gemm-rate R] [--N 1000000 --n 1024
        --L 4 --K 16 --products 60] ...   ntk.method matrix_free (below)

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
On a network (predict, shaped) the term 8 W / beta + M alpha of the gathered products is
their exchanges one by one (gathers): each MPI_Allgatherv with the algorithm Open MPI's
tuned component picks (ring, neighbour exchange, bruck, two_proc), timed for the rank that
waits longest; where fewer than half the ranks of a gather contribute (on square grids the
gather along grid columns: the diagonal rank alone) ntkspec broadcasts each contributor's
block instead (ntk_gather_blocks: scatter and allgather of its pieces, gather_time); the
eigensolve's N tau log2 P is PDSYNTRD's own path (eig_network).
R: the phase's rate per core, from 1-rank runs; C: the cores the ranks share; beta: the
bandwidth per rank (fitted on the multi-rank runs here; the network's on a cluster); B_mem:
the memory bandwidth of the ranks' nodes (BLAS-2 does not speed up with more ranks on one
node), one value for a matrix that fits in the last-level cache and one for one that does
not; kappa: the eigensolve's extra on several ranks (one value for ranks with a core each,
one for ranks sharing cores); tau: the synchronisation cost per column and per level of the
reduction trees.

Matrix-free (ntk.method: matrix_free, issue 18): no N x N matrix.  A measurement is
S products Theta v (the eigensolve's, K residual checks, k for the targets' Rayleigh
quotient), each (ntk_ntkvp_flops, k outputs):
  F_v = k [2 N n k + 2 N n (L n + k) + 2 L N n^2 + 2 N n p + 2 N n p + 2 (2L) N n^2 + 4 N k n]
      ~ 8 k L N n^2: the backward from v, the weight directions g^T a, the tangent pass
  W_v: the forward's words twice (the tangent's h dW^T and dh W^T), the backward's once,
       and the directions' reduce-scatter of n x n per block over the grid column
and SLEPc's orthogonalisation against the ncv basis vectors per product: 4 ncv N / P flops
and one allreduce of ncv words.  t = S [F_v/(P R) max(1, P/C) + 8 W_v/beta + M_v alpha +
ncv alpha log2 P].  Memory per rank: the forward states (2L+1) N n, the tangent states and
the operator's copies ~ 3 N n + weights, the Krylov basis (ncv + 7) N, all over P."""
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


# ---------------------------------------------------------------- the network --------
# What a phase's exchanges cost on a network (docs/SCALING.md "Shaped links"): the gathered
# products' MPI_Allgatherv calls, one per panel and step, each in a grid row or column,
# with the algorithm Open MPI's tuned component picks and the rank that waits longest.
TCP_MSS, TCP_FRAME = 1448, 1514   # TCP payload and Ethernet frame of a 1500-byte MTU (timestamps on)
TCP_EAGER = 65536                 # Open MPI 4.1's btl_tcp_eager_limit [bytes]: sent without a handshake
EAGER_PROBE = 8192                # the exchange size pair_factor_eager reads


def net_tcp(rate_bps, alpha, burst=0.0, pair=1.0, bcast=True, pair_eager=None):
    """A TCP link of rate_bps bits/s each way (what tc tbf counts: whole frames), one-way
    latency alpha [s], the token bucket's burst [bytes] that an idle link passes at once,
    and `pair`: the time of a pairwise exchange (both ranks send and receive the same bytes
    at once) over that of a one-way transfer, 1 for a full-duplex link.  Open MPI over TCP
    does not get 1: with one connection per pair of ranks (btl_tcp_links = 1, its default)
    the two directions take turns (bench_pingpong: 2.0 at 0.5-8 MiB); with 2 they mostly
    overlap.  scripts/shaped-scaling.sh measures it at 2 MiB (pair_factor).  pair_eager: the
    same for messages under the TCP transport's eager limit (TCP_EAGER), which each rank
    writes to its socket at once, so the two directions overlap (pair_factor_eager: 1.01 at
    8 KiB, 10 Mbit/s, where 2 MiB gave 2.04); None: `pair`.  bcast: as in net_cluster."""
    return {"alpha": alpha, "bw": rate_bps / 8.0, "wire": TCP_FRAME / float(TCP_MSS), "burst": burst,
            "pair": pair, "bcast": bcast, "pair_eager": pair if pair_eager is None else pair_eager}


def net_cluster(alpha, bw, bcast=True, pair=1.0):
    """An RDMA-class network: bw payload bytes/s per rank each way, full duplex.  bcast: the
    gathers where fewer than half the ranks contribute go as broadcasts from the
    contributors (ntk_gather_blocks, what ntkspec does since 2026-12-05); False: as one
    MPI_Allgatherv (what it did before: a what-if).  pair: a large pairwise exchange's time
    over a one-way transfer (1: full duplex; Open MPI over TCP with btl_tcp_links 2 measured
    1.07-1.12 on shaped links, run6 and run7); eager messages overlap (1)."""
    return {"alpha": alpha, "bw": bw, "wire": 1.0, "burst": 0.0, "pair": pair, "bcast": bcast,
            "pair_eager": 1.0}


def pair_factor(path, size=2097152):
    """bench_pingpong's output: a pairwise exchange of `size` bytes over a one-way transfer
    (the medians).  Two ends of the same exchange (run5, docs/SCALING.md): back to back
    (pingpong_RATE_lL.txt) the two directions of one TCP connection take turns, about 2;
    after 200 ms of idle link each (bench_pingpong's idle_ms, pingpong_RATE_lL_idle.txt)
    they run at once, about 1."""
    with open(path) as f:
        for line in f:
            x = line.split()
            if x and x[0] == str(size):
                return float(x[3]) / float(x[2])
    raise SystemExit("%s: no %d-byte row" % (path, size))


def pair_factor_eager(path, rate_bps):
    """bench_pingpong's output with back-to-back exchanges of EAGER_PROBE bytes (200 of
    them, far past tbf's burst): the exchange over the one-way time at the link's rate (the
    ping-pong's half round trip of a small message is not rate-bound: each direction's bucket
    refills while the other sends).  At least 1: an exchange under 1 did not drain the
    bucket, which a sustained stream (PDSYTTRD's columns) does."""
    with open(path) as f:
        for line in f:
            x = line.split()
            if x and x[0] == str(EAGER_PROBE):
                return max(1.0, float(x[3]) / (EAGER_PROBE * TCP_FRAME / float(TCP_MSS) / (rate_bps / 8.0)))
    raise SystemExit("%s: no %d-byte row" % (path, EAGER_PROBE))


def transfer(words, net):
    """Seconds to move `words` doubles one way between two ranks (after the latency)."""
    b = 8.0 * words * net["wire"] - net["burst"]
    return max(0.0, b) / net["bw"]


def allgatherv_algorithm(q, per_rank_bytes):
    """Open MPI 4.1's tuned allgatherv for q ranks (coll_tuned_decision_fixed.c, per-rank
    size = total / q): two_proc, ring, neighbor (neighbour exchange), bruck or linear."""
    s = per_rank_bytes
    if q == 2:
        return "ring" if s < 2048 or 4096 <= s < 8192 else "two_proc"
    if q < 8:
        return ("linear" if s < 256 else "neighbor" if s < 4096 else "ring" if s < 8192 else
                "neighbor" if s < 16384 else "bruck" if s < 262144 else "neighbor")
    if q < 16:
        return "linear" if s < 1024 else "bruck"
    if q < 32:
        return "linear" if s < 128 else "bruck" if s < 262144 else "ring"
    if q < 64:
        return "linear" if s < 256 else "bruck" if s < 8192 else "ring"
    if q < 128:
        return "linear" if s < 256 else "bruck" if s < 4096 else "ring"
    if q < 256:
        return "bruck" if s < 1024 else "neighbor" if s < 65536 else "ring"
    if q < 512:
        return "bruck" if s < 1024 else "ring"
    if q < 1024:
        return ("bruck" if s < 512 else "linear" if s < 1024 else "bruck" if s < 4096 else
                "neighbor" if s < 1048576 else "ring")
    return "bruck" if s < 4096 else "neighbor"


def bcast_time(q, words, net):
    """ntk_gather_blocks's broadcast of one block of `words` in q ranks: two ranks, one
    transfer (MPI_Bcast); more, an MPI_Scatterv of the block in q pieces (Open MPI's linear
    scatterv: the root sends the q - 1 pieces one after the other) and an MPI_Allgatherv of
    the pieces (all contribute): 2 (q-1)/q of the block through each link."""
    if q <= 1:
        return 0.0
    if q == 2:
        return net["alpha"] + transfer(words, net)
    piece = words / float(q)
    return (q - 1) * (net["alpha"] + transfer(piece, net)) + allgatherv_time(q, q, piece, net)


def gather_time(q, c, block, net):
    """ntk_gather_blocks: a gather in a group of q ranks where c of them contribute `block`
    words each.  Fewer than half contributing (or one of two): a broadcast from each
    contributor (bcast_time), unless net["bcast"] is False (the MPI_Allgatherv that ntkspec
    issued before 2026-12-05, a what-if); else one MPI_Allgatherv (allgatherv_time)."""
    if net.get("bcast", True) and block > 0 and c < q and (2 * c < q or q == 2):
        return c * bcast_time(q, block, net)
    return allgatherv_time(q, c, block, net)


def allgatherv_time(q, c, block, net):
    """An MPI_Allgatherv in a group of q ranks where c of them (evenly spaced) contribute
    `block` words each and the others nothing.  Every algorithm moves a block one hop per
    step along a chain of dependent steps, so what counts is the blocks on the longest
    chain: ring q-1 steps of one block (c = 1 included: the block hops q-1 times);
    neighbour exchange q/2 steps of up to two blocks (pairwise: with one TCP connection per
    pair the two directions take turns); bruck log2 q steps of 2^k blocks of which
    ceil(2^k c/q) are not empty; two_proc one exchange."""
    if q <= 1:
        return 0.0
    alg = allgatherv_algorithm(q, 8.0 * c * block / q)
    a, x = net["alpha"], transfer(block, net)
    d = net["pair"] if c > 1 else 1.0       # both directions carry data at once
    if alg == "two_proc":
        return a + d * x
    if alg == "ring":
        return (q - 1) * (a + x)
    if alg == "neighbor":
        steps = q // 2 if q % 2 == 0 else q - 1
        blocks = (q - 1) if c == q else steps
        return steps * a + d * blocks * x
    if alg == "bruck":
        t, k = 0.0, 1
        while k < q:
            t += a + min(k, q - k, math.ceil(k * c / float(q))) * x
            k *= 2
        return t
    return 2 * math.ceil(math.log2(q)) * a + (q - 1) * x   # linear: gatherv to rank 0 + bcast


def gathers(N, n, L, P, b=64, passes=1, chunk_mb=256.0):
    """The exchanges of each phase: {phase: [(q, c, block, count)]}, a gather in a group of
    q ranks where c contribute `block` words each, issued `count` times (gather_time: an
    MPI_Allgatherv, or broadcasts from the contributors where fewer than half contribute).
      A B^T gathered (forward z = h W^T, ntk_dmat_gemm_abt_gathered with N >= n; the Grams
      with B = A): per panel of kp columns, my rows of A (and of B) along the grid row
      (q = Pc, all contribute (rows/Pr) kp/Pc), then the rows of B that are my C columns
      along the grid column: q = Pr, and only the ranks whose grid row r = c mod gcd(Pr, Pc)
      hold such rows (C's column blocks and B's row blocks are dealt the same way), so
      c = Pr/g contribute (rows/Pc)(g/Pr) kp each: on a square grid the diagonal rank alone
      sends (a broadcast since 2026-12-05), and the others receive all rows/Pc of them.
      A B gathered (backward gz W, ntk_dmat_gemm_ab_gathered): my rows of A along the grid
      row, and the panel's rows of B in my C columns along the grid column, every grid row
      sending its share (balanced).
    The k-column output products (PDGEMM) and the counts exchanged before each Allgatherv
    are latency only (block 0).  Every call here is also counted in words() (its mean over
    the ranks): tests/test_perf_model.py checks the two agree."""
    pr, pc = grid(P)
    g = math.gcd(pr, pc)
    out = {ph: [] for ph in PHASES}
    if P == 1:
        return out

    def abt(ph, M, K, Nb, same, times):
        kb_cols = panels(K, M / pr + (0 if same else Nb / pr) + Nb / pc, b * pc, chunk_mb)
        kp = K / float(kb_cols)
        calls = [(pc, pc, M / pr * kp / pc), (pr, pr // g, Nb / pc * g / pr * kp)]
        if not same:
            calls.append((pc, pc, Nb / pr * kp / pc))
        for q, c, blk in calls:
            if q > 1:
                out[ph].append((q, c, blk, times * kb_cols))
                out[ph].append((q, q, 0.0, times * kb_cols))   # the counts (MPI_Allgather)

    def ab(ph, M, K, Nc, times):
        copies = 2.0 + 1.0 / pr if pr > 1 else 1.0
        kb_cols = panels(K, (M / pr if pc > 1 else 0.0) + copies * Nc / pc, b, chunk_mb)
        kp = K / float(kb_cols)
        for q, c, blk in [(pc, pc, M / pr * kp / pc), (pr, pr, kp / pr * Nc / pc)]:
            if q > 1:
                out[ph].append((q, c, blk, times * kb_cols))
                if q == pc:
                    out[ph].append((q, q, 0.0, times * kb_cols))

    def pdgemm(ph, M, K, Nc, times):
        # SUMMA: K/b rounds of a broadcast along the grid row and one along the grid column
        words = M / pr * K * (pc - 1) / pc + K * Nc / pc * (pr - 1) / pr
        out[ph].append((P, P, words / (P - 1), times))   # its words as one exchange, counted
        out[ph].append((2, 2, 0.0, times * math.ceil(K / float(b)) *
                        (math.ceil(math.log2(pc)) + math.ceil(math.log2(pr)))))

    abt("forward", N, P_FEAT, n, False, passes)
    abt("forward", N, n, n, False, passes * L)
    pdgemm("forward", N, n, K_OUT, passes)
    ab("backward", N, n, n, L)
    pdgemm("backward", N, K_OUT, n, 1)
    for K, times in [(n, 2 * L + 2), (P_FEAT, 1), (K_OUT, 1)]:
        abt("gram", N, K, N, True, times)
    return out


def gather_words(ex, busiest=True):
    """Words received per rank by a list of exchanges: by the rank that receives most
    (busiest) or on average over the ranks (what words() counts)."""
    tot = 0.0
    for q, c, blk, count in ex:
        if busiest:
            tot += count * blk * (c if c < q else c - 1)
        else:
            tot += count * blk * c * (q - 1) / float(q)
    return tot


def comm_time(ex, net):
    """Seconds of a phase's exchanges on network `net` (one after the other: ntkspec does not
    overlap them with its DGEMMs)."""
    return sum(count * gather_time(q, c, blk, net) for q, c, blk, count in ex)


def backward_drain(N, n, L, P, net, sndbuf):
    """What the backward's maximum over ranks carries of the Grams before it.  Each of its L
    gathered products follows the Grams of a layer; where the Grams' gather along grid
    columns goes one way (some ranks send, others only receive: on square grids), a sender's
    MPI_Allgatherv returns once its data sits in TCP's send buffer (up to sndbuf bytes), so
    it starts the backward's exchange while its partner is still receiving.  That wait is
    the partner's Gram time too (the Gram's own maximum has it): it moves time between the
    two phases' maxima, not into the run.  Two ranks a grid column: the gather is one
    transfer (MPI_Bcast, as MPI_Allgatherv's two_proc was); more, with broadcasts: none (the
    allgather of the pieces ends only when every rank has its piece)."""
    pr, pc = grid(P)
    g = math.gcd(pr, pc)
    if P == 1 or pr // g == pr or (pr > 2 and net.get("bcast", True)):
        return 0.0
    last = N / pc * g / pr * n / float(panels(n, N / pr + N / pc, 64 * pc, 256.0))
    return L * transfer(min(last, sndbuf / 8.0), net)


def eig_network(N, P, net):
    """The network part of PDSYEVR's tridiagonal reduction, PDSYNTRD (ScaLAPACK): it copies
    the lower triangle onto the largest square subgrid, q = isqrt(P) ranks a side
    (PDTRMR2D), reduces it there and copies it back.  q = 1 (P = 2, 3): DSYTRD on rank 0
    alone, after the other ranks' (1 - 1/P) of the N(N+1)/2 words came to it, one way then
    the other.  q >= 2: PDSYTTRD (block size 1 on the subgrid): per column two transposes
    between ranks (r, c) and (c, r) (the vectors v and w, (N - j)/q words each) and two
    combines (a vector along the grid row, scalars along the grid column; log2 q steps
    each): (2 + 2 log2 q) messages in a row.  Open MPI's pml_monitoring at q = 2,
    N = 1024 counted 4.2 messages per column from the busiest rank, 0.81 N^2 words to its
    transposed partner and 0.375 N^2 in the row combine: (1.62 + 0.75 log2 q) N^2/q.  A
    transpose's message, at most N/q words, is eager below TCP_EAGER: its two directions
    overlap (pair_eager), unlike the large exchanges' (pair)."""
    if P == 1:
        return 0.0
    q = math.isqrt(P)
    tri = N * (N + 1) / 2.0
    if q == 1:
        return 2.0 * (net["alpha"] + transfer(tri * (1.0 - 1.0 / P), net))
    move = 2.0 * (net["alpha"] + transfer(tri / (q * q) * (1.0 - 1.0 / (q * q)), net))
    lg = math.log2(q)
    # the transposes go both ways at once (a pairwise exchange), the combine one way per step
    pair = net["pair_eager"] if 8.0 * N / q <= TCP_EAGER else net["pair"]
    return (move + N * (2.0 + 2.0 * lg) * net["alpha"] + pair * transfer(1.62 * N * N / q, net)
            + transfer(0.75 * lg * N * N / q, net))


def memory_per_rank(N, n, L, P):
    """Peak bytes per rank: assembly (activations, weights, 3 N x N) and eigensolve."""
    asm = (2 * L + 1) * N * n + L * n * n + n * P_FEAT + 2 * N * P_FEAT + 3.0 * N * N
    eig = 3.0 * N * N            # Theta, the solver's copy, workspace (no eigenvectors)
    return 8.0 * max(asm, eig) / P, 8.0 * asm / P, 8.0 * eig / P


def fits_cache(N, P, nodes, cache_mb):
    """Whether the matrix's share of one node fits in that node's last-level cache."""
    return 8.0 * N * N / max(1, nodes) <= cache_mb * 2 ** 20


def predict(m, N, n, L, P, cores, nodes=1, b=64, alpha=0.0, beta=None, mem_bw=None, tau=None,
            parts=None, passes=1, chunk_mb=256.0, net=None):
    """Seconds per phase for calibration `m`.  beta, mem_bw (per node) and tau replace the
    calibrated values (a cluster's).  `parts` receives the compute, bandwidth and latency sums.
    passes: forward passes per NTK evaluation; chunk_mb: ntk.chunk_mb (the panel widths).
    net (net_tcp, net_cluster): the exchanges on that network (gathers, eig_network) instead
    of the on-node terms 8 W / beta + M alpha and N tau log2 P."""
    beta = beta or m["beta"]
    F, W = flops(N, n, L, passes), words(N, n, L, P, passes)
    M = messages(N, n, L, P, b, passes, chunk_mb)
    X = gathers(N, n, L, P, b, passes, chunk_mb) if net else None
    share = max(1.0, P / float(cores))
    t = {}
    acc = {"compute": 0.0, "bandwidth": 0.0, "latency": 0.0}
    for ph in ["forward", "backward", "gram", "hadamard"]:
        c = F[ph] / (P * m["rates"][ph]) * share
        if net:
            l = comm_time([x for x in X[ph] if x[2] == 0.0], net)
            w = comm_time(X[ph], net) - l
        else:
            w, l = W[ph] * 8.0 / beta, M[ph] * alpha
        t[ph] = c + w + l
        acc["compute"] += c
        acc["bandwidth"] += w
        acc["latency"] += l
    f3, b2 = eig_parts(N)
    q = math.isqrt(P)
    if net and q == 1:
        # PDSYNTRD reduces on one rank (eig_network): the compute of one rank, no kappa
        one = m["mem_bw_cache"] if fits_cache(N, 1, 1, m["cache_mb"]) else m["mem_bw"]
        c = f3 / m["rates"]["gram"] + b2 / (mem_bw or one)
        l = eig_network(N, P, net)
    else:
        ranks = q * q if net else P   # PDSYTTRD works on the square subgrid
        if mem_bw is None:
            mem_bw = m["mem_bw_cache"] if fits_cache(N, ranks, nodes, m["cache_mb"]) else m["mem_bw"]
        c = (f3 / (ranks * m["rates"]["gram"]) * max(1.0, ranks / float(cores)) + b2 / (nodes * mem_bw)) * \
            (1.0 + kappa(m, ranks, cores))
        l = eig_network(N, P, net) if net else N * (m.get("tau", 0.0) if tau is None else tau) * math.log2(P)
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


def tc_rate(text):
    """A tc rate (100mbit, 1gbit, 500kbit, 1000bit) in bits/s."""
    for unit, mult in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * mult
    raise SystemExit("not a tc rate: %r" % text)


def read_shaped(folder):
    """scripts/shaped-scaling.sh's results: the runs (with their rate, links and load), the
    one-way latency (bench_pingpong on the unshaped link: the median half round trip of
    8 bytes) and each rate's token-bucket burst (the shape line testcluster.sh printed)."""
    import csv
    meta = {}
    with open(os.path.join(folder, "runs.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            meta[row["file"]] = row
    alpha = {}
    for k in (2, 4):
        path = os.path.join(folder, "pingpong_p%d_unshaped.txt" % k)
        with open(path) as f:
            for line in f:
                x = line.split()
                if x and x[0] == "8":
                    alpha[k] = float(x[2])
        if k not in alpha:
            raise SystemExit("%s: no 8-byte row" % path)
    with open(os.path.join(folder, "tcp_wmem.txt")) as f:
        sndbuf = float(f.read().split()[-1])
    bursts = {}
    for rate in {r["rate"] for r in meta.values()}:
        with open(os.path.join(folder, "shape_%s.txt" % rate)) as f:
            words_ = f.read().split()
        bursts[rate] = float(words_[words_.index("burst") + 1])
    runs = load_runs([os.path.join(folder, name) for name in sorted(meta)])
    for r in runs:
        row = meta[os.path.basename(r["file"])]
        r.update(rate=row["rate"], links=int(row["links"]), load=float(row["load1"]))
    return runs, alpha, bursts, sndbuf


def shaped(folder, cores, stat, csv_path=None, runs_csv=None, markdown=False):
    """Measured against predicted, phase by phase, for every rate, links and host count:
    compute rates from the 1-host runs (the cores' speed, nothing about the network),
    alpha from the ping-pong with as many ranks as the run, beta from the tbf rate and the
    pair factor from the exchange benchmark; nothing fitted to the multi-host runs."""
    runs, alpha, bursts, sndbuf = read_shaped(folder)
    if runs_csv:
        import csv
        with open(runs_csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "rate", "links", "hosts", "load1"] + PHASES)
            for r in runs:
                w.writerow([os.path.basename(r["file"]), r["rate"], r["links"], r["P"], r["load"]] +
                           ["%.4f" % r["t"][ph] for ph in PHASES])
    m = fit([r for r in runs if r["P"] == 1], cores, 32.0)
    m["kappa"] = m["kappa_shared"] = 0.0
    print("alpha %s us (ping-pong on 2 and 4 hosts, unshaped); rates per core from the %d 1-host runs "
          "(GFLOP/s): %s" % ("/".join("%.1f" % (a * 1e6) for _, a in sorted(alpha.items())),
                             sum(1 for r in runs if r["P"] == 1),
        ", ".join("%s %.1f" % (k, v / 1e9) for k, v in m["rates"].items())))
    print("measured: the %s over the repeats (max over ranks); error = predicted / measured - 1" % stat)
    print("%-10s %5s %8s %5s %5s %5s %4s %6s %9s %9s %9s %7s %9s %7s %7s" % (
        "phase", "hosts", "rate", "links", "pair", "eager", "runs", "load", "min", "median", "predicted", "error",
        "duplex", "error", "band"))
    rows, worst = [], 0.0
    # 1-host rows: the compute rates' own fit (all 1-host runs together), for reference
    keys = sorted({(r["rate"], r["links"], r["P"]) for r in runs},
                  key=lambda k: (-tc_rate(k[0]), -k[1], k[2]))
    for rate, links, P in keys:
        rs = [r for r in runs if (r["rate"], r["links"], r["P"]) == (rate, links, P)]
        r0 = rs[0]
        pair = pair_factor(os.path.join(folder, "pingpong_%s_l%d.txt" % (rate, links)))
        # the eager exchanges' benchmark (since run4); without it, as before: `pair`
        small = os.path.join(folder, "pingpong_%s_l%d_small.txt" % (rate, links))
        eager = pair_factor_eager(small, tc_rate(rate)) if os.path.exists(small) else None
        net = net_tcp(tc_rate(rate), alpha[min(max(P, 2), 4)], bursts[rate], pair, pair_eager=eager)
        t = predict(m, r0["N"], r0["n"], r0["L"], P, cores, 1, net=net, passes=r0["passes"])
        # the timers' maximum over ranks: the backward carries the Grams' one-way tails
        t["backward"] += backward_drain(r0["N"], r0["n"], r0["L"], P, net, sndbuf)
        # the other end of the band (since run5): every large exchange with its two
        # directions at once, the pair factor of exchanges after an idle link; without the
        # benchmark (run2-run4) the band is the one prediction
        idle = os.path.join(folder, "pingpong_%s_l%d_idle.txt" % (rate, links))
        pair_idle = pair_factor(idle) if os.path.exists(idle) else pair
        net_d = net_tcp(tc_rate(rate), alpha[min(max(P, 2), 4)], bursts[rate], pair_idle, pair_eager=eager)
        td = predict(m, r0["N"], r0["n"], r0["L"], P, cores, 1, net=net_d, passes=r0["passes"])
        td["backward"] += backward_drain(r0["N"], r0["n"], r0["L"], P, net_d, sndbuf)
        for ph in COMM + ["eigensolve"]:
            v = sorted(r["t"][ph] for r in rs)
            med = v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])
            meas = v[0] if stat == "min" else med
            err = t[ph] / meas - 1.0
            err_d = td[ph] / meas - 1.0
            lo, hi = min(td[ph], t[ph]), max(td[ph], t[ph])
            band = 0.0 if lo <= meas <= hi else (lo / meas - 1.0 if meas < lo else hi / meas - 1.0)
            worst = max(worst, abs(err))
            load = sum(r["load"] for r in rs) / len(rs)
            rows.append({"phase": ph, "hosts": P, "rate": rate, "links": links, "pair": pair,
                         "pair_eager": net["pair_eager"], "pair_idle": pair_idle, "runs": len(rs),
                         "load": round(load, 2), "measured_min": v[0], "measured_median": med,
                         "predicted": t[ph], "error": err, "predicted_duplex": td[ph],
                         "error_duplex": err_d, "outside_band": band})
            print("%-10s %5d %8s %5d %5.2f %5.2f %4d %6.1f %9.3f %9.3f %9.3f %+6.0f%% %9.3f %+6.0f%% %+6.0f%%" % (
                ph, P, rate, links, pair, net["pair_eager"], len(rs), load, v[0], med, t[ph], 100 * err,
                td[ph], 100 * err_d, 100 * band))
    print("largest error: %.0f%%" % (100 * worst))
    if markdown:
        def bold(e):
            return "%s%+.0f%%%s" % ("**" if abs(e) > 0.25 else "", 100 * e, "**" if abs(e) > 0.25 else "")
        print("\n| phase | hosts | rate | links | pair | idle | eager | runs | load | min [s] | median [s] "
              "| model [s] | error | duplex [s] | error | outside band |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print("| %s | %d | %s | %d | %.2f | %.2f | %.2f | %d | %.1f | %.3f | %.3f | %.3f | %s | %.3f | %s | %s |" % (
                r["phase"], r["hosts"], r["rate"], r["links"], r["pair"], r["pair_idle"], r["pair_eager"],
                r["runs"], r["load"], r["measured_min"], r["measured_median"], r["predicted"], bold(r["error"]),
                r["predicted_duplex"], bold(r["error_duplex"]), bold(r["outside_band"])))
    if csv_path:
        import csv
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            for r in rows:
                w.writerow({k: ("%.4g" % v if isinstance(v, float) else v) for k, v in r.items()})
    return worst


# ------------------------------------------------------- matrix-free (issue 18) --

def mf_product_flops(N, n, L, k=K_OUT, p=P_FEAT):
    """Flops of one product Theta v: ntk_ntkvp_flops for fixed Fourier features with the
    projection (the configuration of the benchmarks)."""
    f = 2.0 * N * n * k + L * 2.0 * N * n * n          # backward
    f += 2.0 * k * N * n + L * 2.0 * N * n * n + 2.0 * N * n * p   # directions dV, dW^l, dW0
    f += 2.0 * N * n * p                                # dh0
    f += L * 2.0 * N * n * n + L * 2.0 * N * n * n      # dz^l: h dW^T and dh W^T
    f += 2.0 * N * k * n * 2                            # df
    return f * k


def mf_words(N, n, L, P, k=K_OUT, tall=False):
    """Words received per rank per product.  Square grid (ntk_grid_choose's): the tangent's
    products are forward-shaped (two per block), the backward's as in words(), the
    directions' A^T B one reduce-scatter of its n x n (n x p) block over the grid column.
    Tall grid (grid.rows = P, grid.cols = 1, the layout for N >> n): no activation moves,
    only the weights and directions, n x n per product and block, four times."""
    if tall:
        return k * (4.0 * L * n * n + 2.0 * n * P_FEAT) * (P - 1) / P
    pr, pc = grid(P)
    w = words(N, n, L, P)
    dirs = (L * n * n + n * P_FEAT) * (pr - 1) / P
    return k * (2 * w["forward"] + w["backward"] + dirs)


def mf_messages(N, n, L, P, b, k=K_OUT, chunk_mb=256.0):
    msg = messages(N, n, L, P, b, 1, chunk_mb)
    return k * (2 * msg["forward"] + msg["backward"] + (L + 1) * (2 * math.log2(P) if P > 1 else 0))


def mf_memory_per_rank(N, n, L, P, ncv=32, k=K_OUT):
    """Peak bytes per rank of a matrix-free measurement: forward states, the operator's
    tangent states and signals (~ 4 N n), weights and their direction, the Krylov basis."""
    states = (2 * L + 1) * N * n + 4.0 * N * n + 2 * N * P_FEAT
    weights = 2.0 * (L * n * n + n * P_FEAT)
    return 8.0 * (states + weights + (ncv + 8.0) * N) / P


def mf_predict(N, n, L, P, cores, rate, K=16, products=None, ncv=None, nodes=1, b=64,
               alpha=0.0, beta=None, k=K_OUT, chunk_mb=256.0, tall=True):
    """Seconds of one matrix-free measurement.  rate: the GEMM rate per core of the products
    (the calibration's backward rate: the same gathered products); products: the eigensolve's
    (default 2.6 K, measured: 41 for K = 16); beta: bandwidth per rank."""
    ncv = ncv or max(2 * K, K + 15)
    S = (products if products is not None else 2.6 * K) + K + k
    share = max(1.0, P / float(cores))
    compute = mf_product_flops(N, n, L, k) / (P * rate) * share + 4.0 * ncv * N / (P * rate)
    bandwidth = mf_words(N, n, L, P, k, tall) * 8.0 / beta if beta and P > 1 else 0.0
    latency = (mf_messages(N, n, L, P, b, k, chunk_mb) + ncv * (math.log2(P) if P > 1 else 0)) * alpha
    per = compute + bandwidth + latency
    return {"per_product": per, "products": S, "total": S * per, "compute": S * compute,
            "bandwidth": S * bandwidth, "latency": S * latency,
            "memory": mf_memory_per_rank(N, n, L, P, ncv, k)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("files", nargs="+")
    c.add_argument("--cores", type=int, default=os.cpu_count())
    c.add_argument("--cache-mb", type=float, default=32.0, help="last-level cache per node [MiB]")
    c.add_argument("--fit", default="", help="fit only on files whose name contains this")
    c.add_argument("--save")
    sh = sub.add_parser("shaped", help="scripts/shaped-scaling.sh's runs against the model")
    sh.add_argument("folder")
    sh.add_argument("--cores", type=int, default=os.cpu_count(), help="cores the hosts share")
    sh.add_argument("--stat", choices=["min", "median"], default="min")
    sh.add_argument("--csv", help="the comparison table")
    sh.add_argument("--runs-csv", help="every run's phase times (max over ranks)")
    sh.add_argument("--markdown", action="store_true", help="the table in Markdown too")
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
    p.add_argument("--nodes", default="16,64,256,1024")
    p.add_argument("--column-gather", choices=["bcast", "allgatherv"], default="bcast",
                   help="how the one-way gathers along grid columns move: broadcasts from the "
                        "contributing ranks (what ntkspec does since 2026-12-05) or one "
                        "MPI_Allgatherv (what it did before: a what-if)")
    p.add_argument("--pair", type=float, default=1.0,
                   help="a large pairwise exchange's time over a one-way transfer: 1 on a "
                        "full-duplex (RDMA) network; 1.07-1.12 measured for Open MPI over TCP "
                        "with btl_tcp_links 2 (docs/SCALING.md, run6 and run7)")
    q = sub.add_parser("predict-mf", help="ntk.method matrix_free: one measurement's top K")
    q.add_argument("--rates", help="JSON from calibrate --save (its backward rate per core)")
    q.add_argument("--gemm-rate", type=float, default=10e9,
                   help="flop rate per core of the products, without --rates [flop/s]")
    q.add_argument("--N", type=int, default=1000000)
    q.add_argument("--n", type=int, default=1024)
    q.add_argument("--L", type=int, default=4)
    q.add_argument("--K", type=int, default=16)
    q.add_argument("--products", type=float, help="the eigensolve's products (default 2.6 K)")
    q.add_argument("--block", type=int, default=64)
    q.add_argument("--ranks-per-node", type=int, default=64)
    q.add_argument("--alpha", type=float, default=2e-6, help="network latency [s]")
    q.add_argument("--node-bw", type=float, default=12.5e9, help="injection bandwidth per node [B/s]")
    q.add_argument("--nodes", default="16,64,256,1024")
    q.add_argument("--grid", choices=["tall", "square"], default="tall",
                   help="tall: grid.rows = P, grid.cols = 1 (samples split only); square: ntkspec's default")
    a = ap.parse_args(argv)
    if a.cmd == "predict-mf":
        rate = json.load(open(a.rates))["rates"]["backward"] if a.rates else a.gemm_rate
        print("matrix-free top %d, %s grid: N=%d n=%d L=%d, %d ranks/node, %.1f GFLOP/s per core, alpha %.1e s, "
              "%.1f GB/s network per node; %.2e flops per product; the dense kernel alone: %.3g TB"
              % (a.K, a.grid, a.N, a.n, a.L, a.ranks_per_node, rate / 1e9, a.alpha, a.node_bw / 1e9,
                 mf_product_flops(a.N, a.n, a.L), 8.0 * a.N * a.N / 1e12))
        print("%6s %7s %11s %9s %10s %9s %9s %9s %9s %12s" % (
            "nodes", "ranks", "s/product", "products", "total [s]", "compute", "bandwidth",
            "latency", "GiB/rank", "dense GiB/rk"))
        for nodes in [int(x) for x in a.nodes.split(",")]:
            P = nodes * a.ranks_per_node
            t = mf_predict(a.N, a.n, a.L, P, P, rate, a.K, a.products, None, nodes, a.block, a.alpha,
                           a.node_bw / a.ranks_per_node, tall=a.grid == "tall")
            print("%6d %7d %11.3f %9.0f %10.1f %9.1f %9.1f %9.1f %9.3f %12.1f" % (
                nodes, P, t["per_product"], t["products"], t["total"], t["compute"], t["bandwidth"],
                t["latency"], t["memory"] / 2 ** 30, 3 * 8.0 * a.N * a.N / P / 2 ** 30))
        return 0
    if a.cmd == "calibrate":
        runs = load_runs(a.files)
        fitted = [r for r in runs if a.fit in os.path.basename(r["file"])]
        m = fit(fitted, a.cores, a.cache_mb)
        compare(m, runs, a.cores, {r["file"] for r in fitted})
        if a.save:
            with open(a.save, "w") as f:
                json.dump(m, f, indent=1)
        return 0
    if a.cmd == "shaped":
        shaped(a.folder, a.cores, a.stat, a.csv, a.runs_csv, a.markdown)
        return 0
    if not a.rates:
        raise SystemExit("predict needs --rates (from calibrate --save)")
    if not 1.0 <= a.pair <= 2.5:
        raise SystemExit("predict: --pair must lie in [1, 2.5] (1: full duplex; 2: the two directions "
                         "in turns), got %g" % a.pair)
    m = json.load(open(a.rates))
    print("N=%d n=%d L=%d, %d ranks/node, alpha %.1e s, %.1f GB/s network and %.0f GB/s memory "
          "per node; column gathers by %s; PDSYEVR's reduction on the square grid%s" % (
              a.N, a.n, a.L, a.ranks_per_node, a.alpha, a.node_bw / 1e9, a.node_mem_bw / 1e9, a.column_gather,
              "" if a.pair == 1.0 else "; pair factor %.2f" % a.pair))
    print("%6s %7s %9s %9s %9s %9s %9s %9s %9s %9s %9s %10s %9s" % (
        "nodes", "ranks", "forward", "backward", "gram", "hadamard", "eigen", "total", "compute",
        "bandwidth", "latency", "limit", "GiB/rank"))
    for nodes in [int(x) for x in a.nodes.split(",")]:
        P = nodes * a.ranks_per_node
        parts = {}
        # all ranks of a node communicate at once through its one network port
        net = net_cluster(a.alpha, a.node_bw / a.ranks_per_node, a.column_gather == "bcast", a.pair)
        t = predict(m, a.N, a.n, a.L, P, P, nodes, a.block, mem_bw=a.node_mem_bw, parts=parts,
                    chunk_mb=a.chunk_mb, net=net)
        mem = memory_per_rank(a.N, a.n, a.L, P)[0] / 2 ** 30
        print("%6d %7d %9.2f %9.2f %9.2f %9.3f %9.2f %9.2f %9.2f %9.2f %9.2f %10s %9.3f" % (
            nodes, P, t["forward"], t["backward"], t["gram"], t["hadamard"], t["eigensolve"],
            sum(t.values()), parts["compute"], parts["bandwidth"], parts["latency"],
            max(t, key=t.get), mem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
