# slurm_lib.sh - sourced by the tests that run on a local one-node Slurm
# (slurm_test.sh, slurm_campaign.sh): the ok/ko/finish counters, the checks
# that it can run (root, a built binary), the local Slurm started with 8 fake
# GPUs on a fake 2-socket node (stopped again at exit unless
# GD_SLURM_KEEP=1), and a work directory /tmp/$GD_SLURM_WORK-XXXXXX made
# the current directory and removed at exit.

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${GD_BUILD_DIR:-$SRC/build}
SHARED=${GD_SHARED:-$SRC/../shared}
GD_BIN=$BUILD/gpudispatch
pass=0 fail=0
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
ko() { echo "FAIL - $*"; fail=$((fail + 1)); }
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit $?
}

[ "$(id -u)" = 0 ] || { ko "needs root (it starts slurmctld/slurmd)"; finish; }
[ -x "$GD_BIN" ] || { ko "no gpudispatch binary at $GD_BIN (build first, or set GD_BUILD_DIR)"; finish; }

export SLURM_LOCAL_GPUS=8 SLURM_LOCAL_TOPO=$SHARED/topologies/node-2s-8gpu.xml
if ! "$SHARED/scripts/slurm-local-up.sh" >/tmp/gd-slurm-up.log 2>&1; then
	tail -20 /tmp/gd-slurm-up.log
	ko "slurm-local-up.sh failed"
	finish
fi
cleanup() {
	[ "${GD_SLURM_KEEP:-0}" = 1 ] || "$SHARED/scripts/slurm-local-down.sh" >/dev/null 2>&1
	rm -rf "$WORK"
}
WORK=$(mktemp -d "/tmp/${GD_SLURM_WORK:-gd-slurm}-XXXXXX")
trap cleanup EXIT
cd "$WORK"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export GD_BIN
