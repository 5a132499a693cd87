#!/usr/bin/env bash
# cli_safety.sh - `gpudispatch run` is safe by default: the results file is
# locked while a run lasts, a fresh run never replaces results silently, no
# process a task started outlives its task (setsid() included), more worker
# ranks than GPUs is a usage error, --timeout 0 means no limit, and with
# `mpirun -q` the command's own message stands alone.
source "$(dirname "$0")/cli_lib.sh"

host=$(hostname)
# Open MPI's banner about a non-zero exit: off with -q (docs/cli.md)
QUIET=
if "$MPIEXEC" --version 2>&1 | grep -Eq 'Open MPI|OpenRTE'; then QUIET=-q; fi
gdq() { # like gd, with mpirun -q
	local np=$1
	shift
	RC=0
	timeout 120 "$MPIEXEC" $QUIET -n "$np" $MPIEXEC_FLAGS "$GD_CLI" "$@" >out.txt 2>err.txt || RC=$?
}

# ------------------------------------------------------------ no overwrite
seq 3 >t.txt
gd 2 run --tasks t.txt --ui none --results r.jsonl -- true
check "fresh run: exit 0" [ "$RC" = 0 ]
cp r.jsonl r.before
gd 2 run --tasks t.txt --ui none --results r.jsonl -- false
check "fresh run on a file with records: exit 2 (got $RC)" [ "$RC" = 2 ]
check "fresh run on a file with records: names it, suggests --resume and --force" grep -q 'results file r.jsonl already holds .* --resume .* --force' err.txt
check "fresh run on a file with records: the file is untouched" cmp -s r.jsonl r.before
gd 2 run --tasks t.txt --ui none --results r.jsonl --force -- false
check "--force: replaces the file (exit 1, 3 failed records)" eval '[ "$RC" = 1 ] && [ "$(grep -c '\''"status":"error"'\'' r.jsonl)" = 3 ] && [ "$(wc -l <r.jsonl)" = 3 ]'
gd 2 run --tasks t.txt --ui none --results r.jsonl --force --resume -- true
check "--force with --resume: exit 2" eval '[ "$RC" = 2 ] && grep -q -- '\''--force and --resume'\'' err.txt'
: >empty.jsonl
gd 2 run --tasks t.txt --ui none --results empty.jsonl -- true
check "an empty results file is no obstacle" [ "$RC" = 0 ]

# ------------------------------------------------------------------ lock
seq 4 | sed 's/.*/sleep 3/' >slow.txt
"$MPIEXEC" -n 2 $MPIEXEC_FLAGS "$GD_CLI" run --tasks slow.txt --ui none --window 1 \
	--results l.jsonl -- sh -c '$0' >first.out 2>first.err &
first=$!
for _ in $(seq 200); do [ -s l.jsonl.lock ] && break; sleep 0.1; done
check "lock: RESULTS.lock exists while the run lasts, with host and pid" grep -Eq "^$host [0-9]+\$" l.jsonl.lock
holder=$(awk '{print $2}' l.jsonl.lock 2>/dev/null || true)
start=$SECONDS
gd 2 run --tasks slow.txt --ui none --results l.jsonl --resume -- sh -c '$0'
check "lock: a second run (--resume) exits 2 (got $RC)" [ "$RC" = 2 ]
check "lock: at once" [ $((SECONDS - start)) -lt 30 ]
check "lock: the message names the file, host and pid" grep -q "results file l.jsonl is in use by another run (host $host, pid $holder" err.txt
gd 2 run --tasks slow.txt --ui none --results l.jsonl --force -- true
check "lock: a second run with --force exits 2 too" eval '[ "$RC" = 2 ] && grep -q '\''in use'\'' err.txt'
RC=0
wait "$first" || RC=$?
check "lock: the first run was not disturbed (exit 0, 4 records)" eval '[ "$RC" = 0 ] && [ "$(ids l.jsonl)" = "0 1 2 3" ]'
check "lock: removed at the end" [ ! -e l.jsonl.lock ]
# left behind by a run that died on this host: taken over
echo "$host 999999999" >l.jsonl.lock
gd 2 run --tasks t.txt --ui none --results l2.jsonl -- true
echo "$host 999999999" >l2.jsonl.lock
gd 2 run --tasks t.txt --ui none --results l2.jsonl --resume -- true
check "lock: a stale lock of this host is taken over" eval '[ "$RC" = 0 ] && [ ! -e l2.jsonl.lock ]'
# another host's lock is never taken over (it may be alive there)
echo "node-elsewhere 4242" >l2.jsonl.lock
gd 2 run --tasks t.txt --ui none --results l2.jsonl --resume -- true
check "lock: another host's lock: exit 2, names host and pid, says what to do" eval '[ "$RC" = 2 ] && grep -q '\''host node-elsewhere, pid 4242.*remove the lock file'\'' err.txt'
rm -f l2.jsonl.lock

# -------------------------------------------- every descendant dies
mkdir -p pids
cat >kids.txt <<'EOF'
setsid sleep 300 & echo $! >pids/done.pid
setsid sleep 301 & echo $! >pids/timeout.pid; sleep 100
sleep 302 & echo $! >pids/bg.pid
EOF
gd 2 run --tasks kids.txt --ui none --results k.jsonl --shell --timeout 3
check "descendants: exit 1 (one timeout)" eval '[ "$RC" = 1 ] && grep -q '\''"status":"timeout"'\'' k.jsonl'
for f in done timeout bg; do
	pid=$(cat "pids/$f.pid" 2>/dev/null || echo 0)
	check "descendants: the $f task's child ($pid) is gone" eval '[ "$pid" != 0 ] && gone "$pid"'
done
# --keep-children: lives on to the next task, dies when the worker ends
cat >keep.txt <<'EOF'
setsid sleep 303 & echo $! >pids/kept.pid
kill -0 "$(cat pids/kept.pid)"
EOF
gd 2 run --tasks keep.txt --ui none --window 1 --results kc.jsonl --shell --keep-children
check "--keep-children: the child outlived its task (exit 0)" [ "$RC" = 0 ]
pid=$(cat pids/kept.pid 2>/dev/null || echo 0)
check "--keep-children: gone after the run" eval '[ "$pid" != 0 ] && gone "$pid"'
gd 2 run --tasks keep.txt --ui none --window 1 --results kc2.jsonl --shell
check "without --keep-children the next task finds it gone (exit 1)" eval '[ "$RC" = 1 ] && [ "$(field kc2.jsonl 1 status)" = '\''"error"'\'' ]'

# -------------------------------------------- more workers than GPUs
topo=${GD_TOPO_DIR:-$SRC/../shared/topologies}/node-1s-2gpu.xml
if [ -f "$topo" ]; then
	HWLOC_XMLFILE=$topo gdq 4 run --tasks t.txt --ui none -- true
	check "3 workers, 2 GPUs: exit 2 (got $RC)" [ "$RC" = 2 ]
	check "3 workers, 2 GPUs: says how many GPUs and what to do" eval 'grep -q '\''only 2 usable GPUs'\'' err.txt && grep -q -- '\''--workers-per-gpu'\'' err.txt && grep -q '\''fewer worker ranks'\'' err.txt'
	HWLOC_XMLFILE=$topo gdq 4 run --tasks t.txt --ui none --workers-per-gpu 2 -- true
	check "3 workers, 2 GPUs, --workers-per-gpu 2: exit 0" [ "$RC" = 0 ]
else
	echo "skip - no fake topology at $topo"
fi

# ------------------------------------------------------- --timeout 0
echo 1.5 >one.txt
gd 2 run --tasks one.txt --ui none --timeout 0 -- sleep
check "--timeout 0: no limit (exit 0)" [ "$RC" = 0 ]
"$GD_CLI" --help >help.txt
check "--timeout 0: --help says so" grep -q 'default, or 0: no limit' help.txt

# ------------------------------------------- our message stands alone
if [ -n "$QUIET" ]; then
	gdq 2 run --tasks t.txt --ui none --results q.jsonl -- false
	check "mpirun -q, failed tasks: exit 1" [ "$RC" = 1 ]
	check "mpirun -q, failed tasks: our message, no Open MPI banner" eval 'grep -q '\''tasks failed'\'' err.txt && ! grep -q '\''Primary job'\'' err.txt && ! grep -q '\''non-zero'\'' err.txt'
	gdq 2 run --tasks t.txt --ui none --results q.jsonl -- true
	check "mpirun -q, usage error: exit 2, no banner" eval '[ "$RC" = 2 ] && ! grep -q '\''Primary job'\'' err.txt'
fi

# ----------------- SIGINT to mpirun: Open MPI ends the job; --resume goes on
if [ -n "$QUIET" ]; then
	seq 0 9 | sed 's/.*/sleep 1/' >int.txt
	"$MPIEXEC" -n 2 $MPIEXEC_FLAGS "$GD_CLI" run --tasks int.txt --ui none --window 1 \
		--results i.jsonl -- sh -c '$0' >int.out 2>int.err &
	pid=$!
	sleep 3
	kill -INT "$pid"
	RC=0
	wait "$pid" || RC=$?
	check "SIGINT to Open MPI's mpirun: the job ends, exit $RC (not 0)" [ "$RC" != 0 ]
	gd 2 run --tasks int.txt --ui none --window 1 --results i.jsonl --resume -- sh -c '$0'
	check "SIGINT, then --resume: runs the rest, every task once" eval '[ "$RC" = 0 ] && [ "$(ids i.jsonl)" = "$(seq -s '\'' '\'' 0 9)" ]'
fi

finish
