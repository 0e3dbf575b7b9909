#!/usr/bin/env bash
# Installs the Debian 12 packages ntkspec builds, tests and runs with.  Needs root (or sudo).
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin
  libscalapack-openmpi-dev libopenblas-dev
  libhdf5-openmpi-dev hdf5-tools
  libyaml-dev zlib1g-dev librandom123-dev
  libcmocka-dev
  dataset-fashion-mnist
  python3-h5py python3-numpy python3-yaml
  libelpa-dev
  libslepc-real-dev
  slurm-wlm slurmctld slurmd slurm-client
  iproute2 util-linux
  python3-matplotlib
  python3-sklearn
  clang libclang-rt-14-dev llvm valgrind
)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
