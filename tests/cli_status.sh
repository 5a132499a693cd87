#!/usr/bin/env bash
# cli_status.sh - end-to-end tests of the status file (RESULTS.status) and
# `gpudispatch status RESULTS [--watch [SECONDS]] [--json]` from another
# process: a running job (its counts agree with the journal), a finished one,
# one killed with kill -9 (stale, not running), one whose heartbeat stopped,
# a halted one, the journal alone, and bad usage.  Prints "N passed, N failed".
source "$(dirname "$0")/cli_lib.sh"
export CLI_PIDDIR=$WORK
st() { "$GD_CLI" status "$@"; }
# jget JSON KEY: a number or string member of one line of JSON
# (the first: the report's own keys come before its workers')
jget() { grep -o "\"$2\":\(\"[^\"]*\"\|[^,}]*\)" <<<"$1" | head -1 | sed 's/^"[^"]*"://' | tr -d '"'; }
# ok records in the journal (final record of each id)
jok() { grep -o '^{"id":[0-9]*,"status":"[a-z]*"' "$1" 2>/dev/null | awk -F'[:,"]+' '{s[$3]=$5} END {n=0; for (i in s) if (s[i]=="ok") n++; print n}'; }
wait_for() { # seconds command...: poll until the command succeeds
	local t=$1
	shift
	for _ in $(seq 1 $((t * 10))); do
		if "$@"; then return 0; fi
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------ a running job
{
	for i in $(seq 1 38); do echo "sleep 0.4"; done
	echo "fail a"
	echo "fail b"
} >run.txt
timeout 120 "$MPIEXEC" -n 3 $MPIEXEC_FLAGS "$GD_CLI" run --tasks run.txt --ui none \
	--window 1 --results r.jsonl -- bash "$HELPER" {} >run.out 2>run.err &
job=$!
check "running: the status file appears" wait_for 60 test -s r.jsonl.status
wait_for 30 bash -c '[ "$(cat r.jsonl 2>/dev/null | wc -l)" -ge 2 ]' || true
wait_for 30 grep -q '"in_flight":[1-9]' r.jsonl.status || true
before=$(jok r.jsonl)
js=$(st r.jsonl --json)
after=$(jok r.jsonl)
c=$(jget "$js" completed)
check "running: state running ($(jget "$js" state))" [ "$(jget "$js" state)" = running ]
check "running: completed $c agrees with the journal ($before..$after)" \
	[ "$before" -le "$c" ] && [ "$c" -le "$after" ] && [ "$c" -ge 1 ]
check "running: in flight" [ "$(jget "$js" in_flight)" -ge 1 ]
check "running: total known" [ "$(jget "$js" total)" = 40 ]
check "running: a fresh heartbeat" awk -v a="$(jget "$js" heartbeat_age_s)" 'BEGIN {exit !(a >= 0 && a < 10)}'
check "running: two workers" [ "$(grep -o '"id":[0-9]*,"host"' <<<"$js" | wc -l)" = 2 ]
check "running: keys" bash -c 'for k in rate eta_s elapsed_s timed_out failed workers; do grep -q "\"$k\":" <<<"$1" || exit 1; done' _ "$js"
echo "$js" >js.txt
check "running: valid JSON" valid_json js.txt
st r.jsonl >human.txt
check "running: human report" grep -q '^state      running (updated' human.txt
check "running: a row per worker with its task" grep -Eq '^ +[01] +[^ ]+ +(cpu|[0-9]+) +processing +[0-9]+ ' human.txt
# --watch follows it to its end
RC=0
timeout 100 "$GD_CLI" status r.jsonl --watch 0.5 >watch.txt || RC=$?
check "watch: returns when the run ends (exit $RC)" [ "$RC" = 0 ]
check "watch: reported more than once, the last finished" \
	[ "$(grep -c '^state' watch.txt)" -ge 2 ] && [ "$(grep '^state' watch.txt | tail -1 | cut -c12-19)" = finished ]
wait "$job" || true

# ------------------------------------------------------------ finished
js=$(st r.jsonl --json)
check "finished: state" [ "$(jget "$js" state)" = finished ]
check "finished: counts" [ "$(jget "$js" completed)" = 38 ] && [ "$(jget "$js" failed)" = 2 ] &&
	[ "$(jget "$js" in_flight)" = 0 ]
check "finished: the reasons" grep -q '"reasons":\[{"count":2,"reason":"command exited with status 3; stderr: boom: task # failed","tasks":\[38,39\]}\]' <<<"$js"
st r.jsonl >human.txt
check "finished: human report" grep -q '^tasks      40/40 done: 38 ok, 2 failed, 0 timed out$' human.txt
check "finished: reasons in the report" grep -q '^failures   2x command exited with status 3; stderr: boom: task # failed (tasks 38, 39)$' human.txt
check "finished: no temporary file left" [ ! -e r.jsonl.status.tmp ]
check "finished: --watch returns at once" timeout 20 "$GD_CLI" status r.jsonl --watch 1

# ------------------------------------------------------------ no heartbeat
sed -e 's/"state":"[a-z]*"/"state":"running"/' -e 's/"updated":[0-9.]*/"updated":1000/' \
	-e 's/"host":"[^"]*"/"host":"elsewhere"/' r.jsonl.status >old.jsonl.status
cp r.jsonl old.jsonl
js=$(st old.jsonl --json)
check "no heartbeat: stale, not running" [ "$(jget "$js" state)" = stale ]
check "no heartbeat: its age" awk -v a="$(jget "$js" heartbeat_age_s)" 'BEGIN {exit !(a > 1000)}'
check "no heartbeat: says so" bash -c 'st() { "$GD_CLI" status "$@"; }; st old.jsonl | grep -q "^state      stale (no heartbeat"'

# ------------------------------------------------------------ kill -9
for i in $(seq 1 6); do echo "sleep 60"; done >long.txt
timeout 120 "$MPIEXEC" -n 3 $MPIEXEC_FLAGS "$GD_CLI" run --tasks long.txt --ui none \
	--results k.jsonl -- bash "$HELPER" {} >k.out 2>k.err &
job=$!
wait_for 60 grep -q '"in_flight":[1-9]' k.jsonl.status 2>/dev/null || true
pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' k.jsonl.status)
check "kill -9: running before ($pid)" [ "$(jget "$(st k.jsonl --json)" state)" = running ]
kill -9 "$pid"
wait_for 30 gone "$pid" || true
js=$(st k.jsonl --json)
check "kill -9: stale, not running" [ "$(jget "$js" state)" = stale ]
check "kill -9: nothing in flight is claimed" [ "$(jget "$js" in_flight)" = 0 ]
check "kill -9: the report says the process is gone" bash -c '"$GD_CLI" status k.jsonl | grep -q "^state      stale (its process is gone"'
kill "$job" 2>/dev/null || true
wait "$job" 2>/dev/null || true

# ------------------------------------------------------------ halted, journal alone
for i in $(seq 1 30); do echo "fail $i"; done >f.txt
gd 3 run --tasks f.txt --ui none --window 1 --results h.jsonl --halt soon,fail=2 -- bash "$HELPER" {}
check "halted: state" [ "$(jget "$(st h.jsonl --json)" state)" = halted ]
rm -f h.jsonl.status
js=$(st h.jsonl --json)
check "journal alone: state unknown, counts from the journal" [ "$(jget "$js" state)" = unknown ] &&
	[ "$(jget "$js" failed)" = "$(grep -c '"status":"error"' h.jsonl)" ]
check "journal alone: the report says so" bash -c '"$GD_CLI" status h.jsonl | grep -q "no status file: from h.jsonl alone"'
# a damaged record (its status edited, its checksum not) counts for nothing,
# as on resume: the journal's counts and gpudispatch results agree
sed '1s/"status":"error"/"status":"ok"/' h.jsonl >d.jsonl
js=$(st d.jsonl --json)
check "journal alone: a damaged record is not counted" [ "$(jget "$js" completed)" = 0 ] &&
	[ "$(jget "$js" failed)" = "$("$GD_CLI" results d.jsonl --status error 2>/dev/null | grep -c '')" ]
gd 2 run --tasks f.txt --ui none --results n.jsonl --status-interval 0 -- true
check "--status-interval 0: no status file" [ "$RC" = 0 ] && [ ! -e n.jsonl.status ]

# ------------------------------------------------------------ bad usage
RC=0; st >u.out 2>u.err || RC=$?
check "usage: no file: exit 2" [ "$RC" = 2 ] && grep -q 'missing the results file' u.err
RC=0; st nosuch.jsonl >u.out 2>u.err || RC=$?
check "usage: nothing to read: exit 2 naming it" [ "$RC" = 2 ] && grep -q 'nosuch.jsonl' u.err
RC=0; st r.jsonl --bogus >u.out 2>u.err || RC=$?
check "usage: unknown option: exit 2" [ "$RC" = 2 ] && grep -q "unknown option '--bogus'" u.err
RC=0; st r.jsonl --watch=abc >u.out 2>u.err || RC=$?
check "usage: bad --watch: exit 2" [ "$RC" = 2 ] && grep -q "'abc'" u.err
gd 2 run --tasks f.txt --ui none --status-interval x -- true
check "usage: bad --status-interval: exit 2" [ "$RC" = 2 ] && grep -q -- "--status-interval: 'x'" err.txt
finish
