#!/bin/bash
# Run bench_dashboard with a terminal, so that the dashboard is really drawn:
# directly when this shell has one, else inside a detached tmux session.
#   bench/bench_dashboard.sh BUILD_DIR [TASKS [REPS [NPROCS [LAUNCHES [aa]]]]]
# LAUNCHES separate mpirun launches of REPS interleaved pairs each.  On a
# node whose ranks share the cores a launch settles into its own speed (how
# the kernel spreads the ranks), and one launch's pairs share it: the ratio
# of one launch swung by +-4 % here, so the pairs of all the launches are
# pooled.  "aa": both arms without the dashboard, the noise floor of the
# measurement.
set -eu
usage="usage: $0 BUILD_DIR [TASKS [REPS [NPROCS [LAUNCHES [aa]]]]]"
build=${1:?$usage}
tasks=${2:-2000000}
reps=${3:-5}
np=${4:-3}
launches=${5:-1}
mode=${6:-}
case "$launches" in '' | *[!0-9]* | 0) echo "$usage" >&2 && exit 2 ;; esac
exe=$(cd "$build" && pwd)/bench/bench_dashboard
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
one="mpirun --oversubscribe -n $np $exe $tasks $reps"
all="for l in \$(seq $launches); do $one $dir/report.\$l $mode; done"
if { : </dev/tty; } 2>/dev/null; then
	bash -c "$all" >/dev/null
else
	command -v tmux >/dev/null || { echo "no terminal and no tmux" >&2; exit 1; }
	sock=gdbench$$
	tmux -L $sock -f /dev/null new-session -d -x 120 -y 40 \
		"bash -c '$all' > /dev/null 2>&1; tmux -L $sock wait-for -S done"
	tmux -L $sock wait-for done
	tmux -L $sock kill-server 2>/dev/null || true
fi
if [ "$launches" = 1 ]; then
	cat "$dir/report.1"
	exit 0
fi
# Pool the launches: every pair, each launch's median pair, the medians.
for l in $(seq "$launches"); do
	[ -s "$dir/report.$l" ] || { echo "bench_dashboard: launch $l wrote no report" >&2; exit 1; }
done
head -n 1 "$dir/report.1" | sed "s/\$/, $launches launches/"
grep -h -e '^terminal:' -e '^mode:' "$dir/report.1"
for l in $(seq "$launches"); do
	sed -n "s/^rep /launch $l rep /p" "$dir/report.$l"
	sed -n "s/^ratio on\/off: \([0-9.]*\).*/launch $l median of its pairs: \1/p" "$dir/report.$l"
done
median() { sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
reps_of() { sed -n 's/^rep [0-9]*: off \([0-9]*\) tasks\/s, on \([0-9]*\) tasks\/s$/\1 \2/p' "$dir"/report.*; }
off=$(reps_of | awk '{print $1}' | median)
on=$(reps_of | awk '{print $2}' | median)
pairs=$(reps_of | awk '$1 > 0 {print $2 / $1}' | median)
printf 'median: off %.0f tasks/s, on %.0f tasks/s (all launches)\n' "$off" "$on"
awk -v a="$on" -v b="$off" 'BEGIN {printf "ratio of the medians: %.3f\n", a / b}'
printf "ratio on/off: %.3f (the median of all %d pairs' ratios; target >= 0.97)\n" "$pairs" \
	"$(reps_of | wc -l)"
