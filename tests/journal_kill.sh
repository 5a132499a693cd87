#!/usr/bin/env bash
# Fault injection: kill -9 the whole mpirun job midway through a journaled
# run, then resume: every task must end ok exactly once across both runs.
set -euo pipefail
exe=$1 # the mpi_journal executable (its journal_run and journal_resume scenarios)
MPIEXEC=${GD_MPIEXEC:-mpirun}
MPIEXEC_FLAGS=${GD_MPIEXEC_FLAGS---oversubscribe} # none for MPICH
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export GD_TEST_JOURNAL=$dir/journal.jsonl

# shellcheck disable=SC2086
setsid "$MPIEXEC" -n 3 $MPIEXEC_FLAGS "$exe" journal_run >"$dir/run1.log" 2>&1 &
pid=$!
# wait until some records are durable, then kill everything at once
for _ in $(seq 100); do
	[ -s "$GD_TEST_JOURNAL" ] && [ "$(wc -l <"$GD_TEST_JOURNAL")" -ge 20 ] && break
	sleep 0.1
done
sleep 0.3
kill -9 -- -"$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
n1=$(wc -l <"$GD_TEST_JOURNAL")
echo "first run killed with $n1 journal line(s)"
[ "$n1" -ge 1 ] && [ "$n1" -lt 400 ] || { echo "FAIL: expected a partial journal"; cat "$dir/run1.log"; exit 1; }
# half a record at the end, as a kill in the middle of a write leaves it
printf '{"id":999,"status":"ok","dig' >>"$GD_TEST_JOURNAL"
# shellcheck disable=SC2086
"$MPIEXEC" -n 3 $MPIEXEC_FLAGS "$exe" journal_resume
