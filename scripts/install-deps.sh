#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages gpudispatch needs to build,
# test and run, when they are missing.  Idempotent; needs root (or sudo) only
# when something is missing.
#   GD_DEPS_EXTRA="pkg ..."  also install these (e.g. what the benchmarks use)
set -euo pipefail

# Open MPI is the default MPI (mpicc, mpirun); MPICH is installed beside it
# for the MPICH stage (mpicc.mpich, mpiexec.mpich): update-alternatives keeps
# Open MPI first (priority 50 against 40) whatever the order of installation.
PKGS=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhwloc-dev hwloc
      mpich libmpich-dev man-db file dpkg-dev libncurses-dev libcunit1-dev tmux time zlib1g-dev iproute2 util-linux
      python3 python3-pip python3-setuptools python3-wheel python3-pytest python3-mpi4py ${GD_DEPS_EXTRA:-})

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: need root to install ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
