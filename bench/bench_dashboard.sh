#!/bin/bash
# Run bench_dashboard with a terminal, so that the dashboard is really drawn:
# directly when this shell has one, else inside a detached tmux session.
#   bench/bench_dashboard.sh BUILD_DIR [TASKS [REPS [NPROCS [aa]]]]
# "aa": both arms without the dashboard, the noise floor of the measurement.
set -eu
build=${1:?usage: $0 BUILD_DIR [TASKS [REPS [NPROCS [aa]]]]}
tasks=${2:-2000000}
reps=${3:-5}
np=${4:-3}
mode=${5:-}
exe=$(cd "$build" && pwd)/bench/bench_dashboard
report=$(mktemp)
trap 'rm -f "$report"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cmd="mpirun --oversubscribe -n $np $exe $tasks $reps $report $mode"
if { : </dev/tty; } 2>/dev/null; then
	$cmd >/dev/null
else
	command -v tmux >/dev/null || { echo "no terminal and no tmux" >&2; exit 1; }
	sock=gdbench$$
	tmux -L $sock -f /dev/null new-session -d -x 120 -y 40 "$cmd > /dev/null 2>&1; tmux -L $sock wait-for -S done"
	tmux -L $sock wait-for done
	tmux -L $sock kill-server 2>/dev/null || true
fi
cat "$report"
