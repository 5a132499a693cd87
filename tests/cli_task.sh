#!/usr/bin/env bash
# cli_task.sh LINE - a task command for the end-to-end tests: what it does
# depends on the task line.
set -euo pipefail
line=${1-}
case "$line" in
failid*) for i in ${FAIL_IDS:-}; do [ "$i" != "$GPUDISPATCH_TASK_ID" ] || exit 1; done ;;
fail*) echo "some output"; echo "first"; echo "boom: task $GPUDISPATCH_TASK_ID failed" >&2; exit 3 ;;
segv*) kill -SEGV $$ ;;
hang*) # a grandchild in the same process group: a timeout must kill it too
	sleep 300 &
	echo $! >"$CLI_PIDDIR/gc-$GPUDISPATCH_TASK_ID.pid"
	sleep 300 ;;
sleep\ *) sleep "${line#sleep }" ;;
*) echo "out [$line] id=$GPUDISPATCH_TASK_ID worker=$GPUDISPATCH_WORKER_ID attempt=$GPUDISPATCH_ATTEMPT mpi=${OMPI_COMM_WORLD_RANK:-none}"
	echo "err [$line]" >&2 ;;
esac
