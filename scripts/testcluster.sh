#!/usr/bin/env bash
# A small SLURM cluster of K hosts on this machine, to run the job scripts across nodes
# before a real cluster (and in CI: tests/test_cluster.py).  Every host is a Linux network
# namespace with its own network stack, address and hostname; a bridge in a switch
# namespace joins them through veth pairs, so ranks on different hosts talk real TCP and
# only ranks on the same host can share memory.  The hosts share the file system (it plays
# the cluster's parallel file system).  Needs root and iproute2, util-linux, slurm-wlm.
#
#   scripts/testcluster.sh up [K]           K compute hosts (default 4) + a head node
#   scripts/testcluster.sh down             stop everything, remove every namespace (idempotent)
#   scripts/testcluster.sh exec HOST CMD..  run CMD on HOST (head, 1..K or its name)
#   scripts/testcluster.sh status           hosts, sinfo, squeue
#   scripts/testcluster.sh link I up|down   connect / disconnect host I (a network partition)
#   scripts/testcluster.sh kill-node I      host I dies: link cut, every process on it killed
#   scripts/testcluster.sh rsh HOST CMD..   remote shell for mpirun --mca plm_rsh_agent
#   scripts/testcluster.sh shape RATE US    every host's link: RATE each way (tc units:
#                                           10gbit, 1gbit), US microseconds host to host
#   scripts/testcluster.sh unshape          the links unshaped again
#
# Hosts: PREFIXhead (slurmctld, the login node, NET.1) and PREFIX1..PREFIXK (slurmd -N,
# NET.10+i), partition PREFIX; the switch namespace PREFIXsw holds the bridge; nothing is
# added to the machine's own network namespace.  Variables (defaults in brackets):
#   NTK_CLUSTER       name prefix of namespaces, hosts and partition   [ntkc]
#   NTK_CLUSTER_DIR   slurm.conf, state, spool, pid and log files      [/tmp/$NTK_CLUSTER]
#   NTK_CLUSTER_NET   first three octets of the hosts' /24             [10.213.7]
#   NTK_CLUSTER_CPUS  CPUs each slurmd offers                          [2]
# `exec` sets SLURM_CONF and, unless set, Open MPI's transports (TCP on NET.0/24 between
# hosts, shared memory within one) and yield-when-idle (the hosts share this machine's
# cores); the rest of the caller's environment travels along (sbatch --export=ALL).
set -euo pipefail

P=${NTK_CLUSTER:-ntkc}
DIR=${NTK_CLUSTER_DIR:-/tmp/$P}
NET=${NTK_CLUSTER_NET:-10.213.7}
CPUS=${NTK_CLUSTER_CPUS:-2}
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
CONF=$DIR/slurm.conf

die() { echo "testcluster: $1" >&2; exit "${2:-1}"; }
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$SELF" >&2; exit 2; }

# what a hostname and a SLURM node name both accept; a last letter keeps PREFIX1 + 2 apart
# from PREFIX + 12
[[ $P =~ ^[a-z][a-z0-9]{0,6}[a-z]$ ]] || die "NTK_CLUSTER must be 2-8 lowercase letters/digits ending in a letter, got '$P'" 2
[[ $NET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "NTK_CLUSTER_NET must be three octets, got '$NET'" 2

SW=${P}sw
HEAD=${P}head

# our namespaces that exist now: head, switch, compute hosts (also those of a crashed run)
our_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${P}(head|sw|[0-9]+)$" || true
}

# host_ns HOST: the namespace of HOST (head, I, or the host name)
host_ns() {
  case "$1" in
    head | "$HEAD") echo "$HEAD" ;;
    [0-9]*) echo "$P$1" ;;
    "$P"[0-9]*) echo "$1" ;;
    *) die "unknown host '$1' (head, 1..K, $HEAD, ${P}1...)" 2 ;;
  esac
}

# in_ns NS CMD...: CMD inside network namespace NS with hostname NS (a fresh UTS
# namespace, so gethostname, MPI's processor name and slurmd's node name agree) and the
# cluster's hosts file as /etc/hosts (a private mount namespace).  nsenter rather than
# `ip netns exec`, which remounts /sys and so hides the cgroup mounts slurmd needs.
in_ns() {
  local ns=$1
  shift
  [ -e "/run/netns/$ns" ] || die "host $ns is not up (scripts/testcluster.sh up)"
  # shellcheck disable=SC2016 # $0, $@ and the hosts file are the inner shell's
  SLURM_CONF=$CONF NTK_CLUSTER_HOSTS=$DIR/hosts exec nsenter --net="/run/netns/$ns" \
    unshare --uts --mount -- /bin/sh -c \
    'mount --bind "$NTK_CLUSTER_HOSTS" /etc/hosts && hostname "$0" && exec "$@"' "$ns" "$@"
}

# mpi_site_defaults: what a site's openmpi-mca-params.conf would say for this cluster,
# unless the caller set it: TCP between hosts on the cluster's subnet only, shared memory
# within a host; and yield when idle, because all hosts share this machine's cores (a
# rank busy-polling for a message from another host would take the core its sender needs:
# a 4-host run of seconds otherwise takes a minute)
mpi_site_defaults() {
  export OMPI_MCA_btl=${OMPI_MCA_btl:-tcp,self,vader}
  export OMPI_MCA_btl_tcp_if_include=${OMPI_MCA_btl_tcp_if_include:-$NET.0/24}
  export OMPI_MCA_oob_tcp_if_include=${OMPI_MCA_oob_tcp_if_include:-$NET.0/24}
  export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
}

write_conf() { # K
  local k=$1 i
  mkdir -p "$DIR"/{state,spool,log,run,tmp}
  : > "$DIR/plugstack.conf"
  {
    echo "127.0.0.1 localhost"
    echo "$NET.1 $HEAD"
    for ((i = 1; i <= k; i++)); do echo "$NET.$((10 + i)) $P$i"; done
  } > "$DIR/hosts"
  cat > "$CONF" <<EOF
# generated by scripts/testcluster.sh: $k hosts in network namespaces, see jobs/README.md
ClusterName=$P
SlurmctldHost=$HEAD($NET.1)
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
# per-host temporary folders: the hosts share /tmp, where the pmix plugin would put every
# host's client folder for a step under one name
TmpFS=$DIR/tmp/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
PlugStackConfig=$DIR/plugstack.conf
Include $(dirname "$SELF")/testcluster-slurm.conf
# a host that stops answering is DOWN after 20 s and its jobs are requeued (--requeue)
SlurmdTimeout=20
MessageTimeout=5
EOF
  for ((i = 1; i <= k; i++)); do
    echo "NodeName=$P$i NodeAddr=$NET.$((10 + i)) NodeHostname=$P$i CPUs=$CPUS RealMemory=1000 State=UNKNOWN"
  done >> "$CONF"
  echo "PartitionName=$P Nodes=${P}[1-$k] Default=YES MaxTime=INFINITE State=UP" >> "$CONF"
}

# add_host NS ADDR PORT: namespace NS, linked to the bridge through veth PORT (switch side)
# and eth0 (host side) with ADDR/24
add_host() {
  local ns=$1 addr=$2 port=$3
  ip netns add "$ns"
  ip -n "$SW" link add "$port" type veth peer name eth0 netns "$ns"
  ip -n "$SW" link set "$port" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
}

wait_idle() { # K: until sinfo reports K idle nodes
  local k=$1 t0=$SECONDS out=""
  while ((SECONDS - t0 < 90)); do
    out=$( (in_ns "$HEAD" sinfo -h -o '%T %D') 2>/dev/null || true)
    [ "$out" = "idle $k" ] && return 0
    sleep 0.5
  done
  echo "nodes not idle after 90 s: $out" >&2
  tail -n 20 "$DIR"/log/*.log >&2 || true
  return 1
}

cmd_up() {
  local k=${1:-4} i
  if ! [[ $k =~ ^[0-9]+$ ]] || ((k < 1 || k > 200)); then die "K must be 1..200, got '$k'" 2; fi
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces, SLURM daemons as root)"
  for c in ip nsenter unshare slurmctld slurmd sinfo; do
    command -v "$c" >/dev/null || die "$c not found (scripts/install-deps.sh)"
  done
  [ -z "$(our_namespaces)" ] ||
    die "cluster $P is (partly) up: scripts/testcluster.sh down first"
  # a failure half-way leaves nothing behind
  trap 'echo "testcluster: up failed, tearing down" >&2; cmd_down >&2' EXIT
  rm -rf "$DIR"/{state,spool,log,run,tmp}
  write_conf "$k"
  ip netns add "$SW"
  ip -n "$SW" link set lo up
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up
  add_host "$HEAD" "$NET.1" p0
  for ((i = 1; i <= k; i++)); do
    add_host "$P$i" "$NET.$((10 + i))" "p$i"
    mkdir -p "$DIR/spool/$P$i" "$DIR/tmp/$P$i"
  done
  (in_ns "$HEAD" slurmctld -i -f "$CONF")
  for ((i = 1; i <= k; i++)); do
    (in_ns "$P$i" slurmd -N "$P$i" -f "$CONF")
  done
  wait_idle "$k"
  trap - EXIT
  echo "cluster $P up: $k hosts ${P}[1-$k] ($NET.11-$((10 + k))), head $HEAD ($NET.1), partition $P"
  echo "  run on the head node: $SELF exec head sbatch ...   (SLURM_CONF=$CONF)"
}

# kill_ns_processes NS: every process in namespace NS (all started by this script or by
# the daemons it started there): TERM, then KILL
kill_ns_processes() {
  local ns=$1 pids t0
  for sig in TERM KILL; do
    pids=$(ip netns pids "$ns" 2>/dev/null | grep -vx "$$" || true)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -s "$sig" $pids 2>/dev/null || true
    t0=$SECONDS
    while ((SECONDS - t0 < 10)) && [ -n "$(ip netns pids "$ns" 2>/dev/null)" ]; do sleep 0.2; done
  done
  [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] || echo "testcluster: processes left in $ns: $(ip netns pids "$ns")" >&2
}

cmd_down() {
  local ns pf pid
  [ "$(id -u)" = 0 ] || die "needs root"
  # cancel the jobs while the controller still runs (their steps end cleanly)
  if [ -e "/run/netns/$HEAD" ] && [ -f "$DIR/run/slurmctld.pid" ]; then
    (in_ns "$HEAD" timeout 10 scancel --full --partition="$P") >/dev/null 2>&1 || true
  fi
  # the daemons by pid file, then whatever is left in our namespaces
  for pf in "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid"; do
    [ -f "$pf" ] || continue
    pid=$(cat "$pf" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
    rm -f "$pf"
  done
  for ns in $(our_namespaces); do
    kill_ns_processes "$ns"
    ip netns del "$ns" 2>/dev/null || true
  done
  # deleting a namespace removes its veth ends and the bridge with it
  [ -z "$(our_namespaces)" ] || die "namespaces left: $(our_namespaces | tr '\n' ' ')"
  return 0
}

cmd_status() {
  local ns
  echo "namespaces: $(our_namespaces | tr '\n' ' ')"
  [ -e "/run/netns/$HEAD" ] || { echo "cluster $P is down"; return 0; }
  for ns in $(our_namespaces); do
    [ "$ns" = "$SW" ] && continue
    echo "$ns: $(ip -n "$ns" -br addr show dev eth0 2>/dev/null | awk '{print $2, $3}'), $(ip netns pids "$ns" | wc -l) processes"
  done
  (in_ns "$HEAD" sinfo) || true
  (in_ns "$HEAD" squeue) || true
}

cmd_link() { # I up|down
  local i=$1 state=${2:-}
  if ! [[ $i =~ ^[0-9]+$ && $state =~ ^(up|down)$ ]]; then die "usage: link I up|down" 2; fi
  [ -e "/run/netns/$P$i" ] || die "no host $P$i"
  ip -n "$SW" link set "p$i" "$state"
}

cmd_kill_node() { # I: the host dies without a word: no FIN, no RST leaves it
  local i=$1
  [[ $i =~ ^[0-9]+$ ]] || die "usage: kill-node I" 2
  [ -e "/run/netns/$P$i" ] || die "no host $P$i"
  ip -n "$SW" link set "p$i" down
  local pids
  pids=$(ip netns pids "$P$i" || true)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  rm -f "$DIR/run/slurmd-$P$i.pid"
}

# hosts' links, each as seen from both its ends: (namespace, device) pairs
link_ends() {
  local ns
  for ns in $(our_namespaces); do
    [ "$ns" = "$SW" ] && continue
    echo "$ns eth0"
    if [ "$ns" = "$HEAD" ]; then echo "$SW p0"; else echo "$SW p${ns#"$P"}"; fi
  done
}

# shape RATE US: a NIC of RATE on every host (a queue on the egress of both ends of its
# link, so sending and receiving are both limited) and US microseconds from host to host
# (a message crosses two of these queues: the sender's link out and the receiver's link
# in, each adding half).  The delay needs netem (sch_netem); without it only US = 0 works,
# with tbf (a token bucket of 1 ms of traffic, at least one 64 KiB GSO packet).
cmd_shape() {
  local rate=${1:-} us=${2:-} ns dev bits half burst
  if ! [[ $rate =~ ^[0-9]+(\.[0-9]+)?[kmg]?bit$ && $us =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    die "usage: shape RATE US (e.g. shape 1gbit 50)" 2
  fi
  [ -e "/run/netns/$SW" ] || die "the cluster is not up"
  bits=$(awk -v r="$rate" 'BEGIN { m = 1; if (r ~ /kbit$/) m = 1e3; if (r ~ /mbit$/) m = 1e6; if (r ~ /gbit$/) m = 1e9; print r * m }')
  half=$(awk -v u="$us" 'BEGIN { printf "%.3fus", u / 2 }')
  burst=$(awk -v b="$bits" 'BEGIN { v = b / 8 * 1e-3; printf "%d", (v < 131072 ? 131072 : v) }')
  local qdisc=(netem delay "$half" rate "$rate" limit 100000)
  if ! tc -n "$SW" qdisc replace dev p0 root "${qdisc[@]}" 2>/dev/null; then
    awk -v u="$us" 'BEGIN { exit !(u > 0) }' &&
      die "this kernel has no netem queue (sch_netem): only the rate can be shaped (shape $rate 0)"
    qdisc=(tbf rate "$rate" burst "$burst" latency 10ms)
  fi
  while read -r ns dev; do
    tc -n "$ns" qdisc replace dev "$dev" root "${qdisc[@]}"
  done < <(link_ends)
  echo "links: ${qdisc[*]} at each end"
}

cmd_unshape() {
  local ns dev
  while read -r ns dev; do
    tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null || true
  done < <(link_ends)
}

# rsh HOST CMD...: what ssh would do for mpirun (plm_rsh_agent): CMD through a shell on HOST
cmd_rsh() {
  local ns
  ns=$(host_ns "$1")
  shift
  in_ns "$ns" /bin/sh -c "$*"
}

[ $# -ge 1 ] || usage
sub=$1
shift
case "$sub" in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  exec)
    [ $# -ge 2 ] || die "usage: exec HOST CMD..." 2
    ns=$(host_ns "$1")
    shift
    mpi_site_defaults
    in_ns "$ns" "$@" ;;
  rsh) [ $# -ge 2 ] || die "usage: rsh HOST CMD..." 2; mpi_site_defaults; cmd_rsh "$@" ;;
  link) cmd_link "$@" ;;
  kill-node) cmd_kill_node "$@" ;;
  shape) cmd_shape "$@" ;;
  unshape) cmd_unshape ;;
  *) usage ;;
esac
