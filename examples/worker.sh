#!/usr/bin/env bash
# worker.sh - a small persistent worker for `gpudispatch run --worker-cmd`.
#
#   mpirun -n 5 gpudispatch run --tasks words.txt --worker-cmd "bash examples/worker.sh"
#
# The line protocol: gpudispatch starts this program once per worker (after
# GPU placement: CUDA_VISIBLE_DEVICES etc. are set, GPUDISPATCH_WORKER_ID and
# GPUDISPATCH_GPU tell who it is), writes one task line to its standard input
# per task, and reads exactly one line back from its standard output.  A line
# starting with "ERROR:" marks the task failed (the rest is the message); any
# other line is the task's result.  Logs go to standard error, never to
# standard output.  At the end gpudispatch closes standard input: finish and
# exit 0.
#
# Here the "model" is trivial: the result is a small JSON object with the
# line's length and its words reversed.  A real worker loads its model once
# before the loop and runs it per line.
set -euo pipefail

echo "worker ${GPUDISPATCH_WORKER_ID:-?} starting on GPU ${GPUDISPATCH_GPU:--1} (CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset})" >&2
n=0
while IFS= read -r line; do
	n=$((n + 1))
	if [ -z "$line" ]; then
		echo "ERROR: empty task"
		continue
	fi
	# reverse the words, escape for JSON (backslash and double quote)
	rev=$(printf '%s\n' "$line" | awk '{ for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "") }')
	rev=${rev//\\/\\\\}
	rev=${rev//\"/\\\"}
	printf '{"worker":%s,"n":%d,"length":%d,"reversed":"%s"}\n' \
		"${GPUDISPATCH_WORKER_ID:-0}" "$n" "${#line}" "$rev"
done
echo "worker ${GPUDISPATCH_WORKER_ID:-?} done after $n tasks" >&2
