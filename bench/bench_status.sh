#!/usr/bin/env bash
# bench_status.sh BUILD [TASKS] [REPS] - the status-file row (issue 17): what
# RESULTS.status (rewritten every second from on_tick) and the failure
# reasons grouped on each failure cost the command's fastest mode, a
# persistent worker (--worker-cmd, the line protocol) on 3 workers, TASKS
# (default 200000) task lines:
#   ok    every task succeeds (cat)
#   fail  every task fails (ERROR: lines): a reason counted per task
# each with --status-interval 1 (the default) against --status-interval 0
# (no status file, no reasons), REPS (default 3) runs each, interleaved.
# The rate is tasks / (last end - first start) of the results file's
# records, so that start-up is not counted.  Prints the median rates and
# their ratio (target: >= 0.99, i.e. at most 1 % slower).  No assertion.
set -euo pipefail
build=${1:?usage: bench_status.sh BUILD [TASKS] [REPS]}
n=${2:-200000}
reps=${3:-3}
gd=$build/gpudispatch
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seq 1 "$n" | sed 's/^/task-/' >"$tmp/tasks.txt"

rate() { # worker-cmd interval: tasks/s over the records' span
	rm -f "$tmp/r.jsonl" "$tmp/r.jsonl.status"
	mpirun -n 4 "$gd" run --tasks "$tmp/tasks.txt" --ui none --results "$tmp/r.jsonl" \
		--status-interval "$2" --worker-cmd "$1" >"$tmp/out" 2>"$tmp/err" || true
	awk -F'"start":|,"end":|,"duration"' 'NF >= 3 {
		s = $2 + 0; e = $3 + 0; n++
		if (n == 1 || s < lo) lo = s
		if (n == 1 || e > hi) hi = e
	} END { if (hi > lo) printf "%.1f\n", n / (hi - lo); else print 0 }' "$tmp/r.jsonl"
}
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

for kind in ok fail; do
	if [ "$kind" = ok ]; then cmd=cat; else cmd="sed -u 's/^/ERROR: bad /'"; fi
	on=() off=()
	for _ in $(seq 1 "$reps"); do
		off+=("$(rate "$cmd" 0)")
		on+=("$(rate "$cmd" 1)")
	done
	m_on=$(printf '%s\n' "${on[@]}" | median)
	m_off=$(printf '%s\n' "${off[@]}" | median)
	printf 'status file + reasons, %-4s tasks: %10.0f tasks/s with, %10.0f without (runs: %s | %s)\n' \
		"$kind" "$m_on" "$m_off" "${on[*]}" "${off[*]}"
	printf 'ratio with/without (%s): %.3f (target >= 0.99)\n' "$kind" \
		"$(awk -v a="$m_on" -v b="$m_off" 'BEGIN {print (b > 0 ? a / b : 0)}')"
done
