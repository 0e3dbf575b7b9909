#!/usr/bin/env bash
# The strong-scaling study over shaped links (docs/SCALING.md "Shaped links", issue 17):
# a test cluster of 4 hosts (scripts/testcluster.sh, under a name of its own so that
# nobody else's cluster is touched), each host's link shaped to RATE each way (tc tbf), one
# rank per host, ntkspec at 1, 2 and 4 hosts through mpirun over TCP; and bench_pingpong
# (2 and 4 hosts unshaped, 2 hosts at each rate), the transport's latency and pairwise
# exchanges measured apart from the runs.  Timing-based, so not in CI; run it on a machine
# as quiet as you can find, then compare with
#   tools/perf_model.py shaped OUT --cores C [--stat min|median] [--csv F] [--markdown]
#
#   scripts/shaped-scaling.sh [OUT] [REPEATS]          defaults: results/shaped, 3
# Variables: NTK_SHAPES (rates, tc units)  [500mbit 100mbit]
#            NTK_TCP_LINKS (Open MPI's btl_tcp_links: TCP connections per pair of ranks) [2 1]
#            NTK_SHAPED_ARGS (ntkspec --set arguments of the study; default N = n = 1024, L = 4)
#            NTK_PINGPONG_SIZES (MIN MAX: the shaped exchange benchmark's sizes; the pair factor
#              needs 2097152 within them; "1048576 2097152" below ~30 Mbit/s, where the small
#              sizes' 200 repeats take minutes)  [8 16777216]
# Writes OUT/s_RATE_lLINKS_pP_R.h5 (one run), OUT/pingpong_RATE_lLINKS.txt,
# OUT/pingpong_pK_unshaped.txt (K = 2, 4 hosts), OUT/pingpong_RATE_lLINKS_small.txt (8 B to
# 8 KiB, 200 back-to-back repeats each: the eager messages' sustained rate past tbf's burst,
# PDSYTTRD's per-column transposes), OUT/pingpong_RATE_lLINKS_idle.txt (2 MiB exchanges
# after 200 ms of idle link each: both directions at once, the other end of the pair
# factor), OUT/shape_RATE.txt (the tbf parameters),
# OUT/tcp_wmem.txt (TCP's send buffers) and OUT/runs.tsv (per run: the load average before
# it, and the bytes each host's link carried each way).  The cluster is torn down at the
# end, also after a failure or a signal.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
TC=$SRC/scripts/testcluster.sh
OUT=$(realpath -m "${1:-results/shaped}")
REPS=${2:-3}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "shaped-scaling: REPEATS must be a positive integer, got '$REPS'" >&2; exit 2; }
read -r -a SHAPES <<< "${NTK_SHAPES:-500mbit 100mbit}"
read -r -a LINKS <<< "${NTK_TCP_LINKS:-2 1}"
read -r PP_MIN PP_MAX <<< "${NTK_PINGPONG_SIZES:-8 16777216}"
read -r -a ARGS <<< "${NTK_SHAPED_ARGS:---set data.n_train=1024 --set model.width=1024 --set model.depth=4}"
NTKSPEC=$SRC/build/ntkspec
PINGPONG=$SRC/build/bench/bench_pingpong
for x in "$NTKSPEC" "$PINGPONG"; do
  [ -x "$x" ] || { echo "shaped-scaling: $x not built (scripts/build.sh)" >&2; exit 2; }
done
export NTK_CLUSTER=${NTK_CLUSTER:-ntkshp} NTK_CLUSTER_DIR=${NTK_CLUSTER_DIR:-/tmp/ntkshp}
export NTK_CLUSTER_NET=${NTK_CLUSTER_NET:-10.213.9}
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$OUT"

trap '"$TC" down' EXIT
trap 'exit 143' TERM INT
"$TC" down
"$TC" up 4 > /dev/null

hostfile() { # K: hosts 1..K, one slot each
  local i
  for ((i = 1; i <= $1; i++)); do echo "$NTK_CLUSTER$i slots=1"; done > "$OUT/hosts$1"
  echo "$OUT/hosts$1"
}
mpi() { # K CMD...: CMD on hosts 1..K, one rank each, launched from the head node
  local k=$1
  shift
  "$TC" exec head mpirun -q --hostfile "$(hostfile "$k")" --mca plm_rsh_agent "$TC rsh" \
    --mca btl_tcp_links "${links:-1}" -np "$k" "$@"
}
link_bytes() { # rx and tx bytes of hosts 1..4's ports on the switch
  ip -n "${NTK_CLUSTER}sw" -s -j link show | /usr/bin/python3 -c '
import json, sys
d = {l["ifname"]: l["stats64"] for l in json.load(sys.stdin) if "stats64" in l}
print(" ".join("%d %d" % (d["p%d" % i]["rx"]["bytes"], d["p%d" % i]["tx"]["bytes"]) for i in range(1, 5)))'
}

# the latency as the runs see it: 2 hosts, and 4 hosts in two pairs at once (4 ranks on
# this machine's cores: a message may wait for its receiver to be scheduled)
mpi 2 "$PINGPONG" 200 > "$OUT/pingpong_p2_unshaped.txt"
mpi 4 "$PINGPONG" 200 > "$OUT/pingpong_p4_unshaped.txt"
"$TC" exec 1 cat /proc/sys/net/ipv4/tcp_wmem > "$OUT/tcp_wmem.txt"   # TCP's largest send buffer (per host)
printf 'file\trate\tlinks\thosts\trepeat\tload1\tbytes_before\tbytes_after\n' > "$OUT/runs.tsv"
for rate in "${SHAPES[@]}"; do
  "$TC" shape "$rate" 0 > "$OUT/shape_$rate.txt"   # the tbf parameters, burst included
  for links in "${LINKS[@]}"; do
    # 200: 7 repeats of the sizes from 1 MiB on (the pair factor's 2 MiB row of 4 repeats
    # once came out 1.06 between 2.2 at 512 KiB and 2.0 at 8 MiB)
    mpi 2 "$PINGPONG" 200 "$PP_MAX" "$PP_MIN" > "$OUT/pingpong_${rate}_l$links.txt"
    mpi 2 "$PINGPONG" 200 8192 > "$OUT/pingpong_${rate}_l${links}_small.txt"
    mpi 2 "$PINGPONG" 200 2097152 2097152 200 > "$OUT/pingpong_${rate}_l${links}_idle.txt"
    for ((r = 1; r <= REPS; r++)); do
      for k in 1 2 4; do  # interleaved: a slow spell of the machine hits every host count alike
        f=$OUT/s_${rate}_l${links}_p${k}_$r.h5
        load=$(cut -d' ' -f1 /proc/loadavg)
        before=$(link_bytes)
        mpi "$k" "$NTKSPEC" run "$SRC/configs/quickstart.yaml" "${ARGS[@]}" --set ntk.top_k=16 \
          --set eigensolver.type=pdsyevr --set grid.block_size=64 --set train.steps=0 \
          --set data.n_test=0 --set output.save_data=false --set output.overwrite=true \
          --set "output.path=$f" -q > /dev/null
        printf '%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n' "$(basename "$f")" "$rate" "$links" "$k" "$r" "$load" \
          "$before" "$(link_bytes)" >> "$OUT/runs.tsv"
        echo "$(basename "$f"): done (load $load)"
      done
    done
  done
  "$TC" unshape
done
