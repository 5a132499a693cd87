#!/usr/bin/env bash
# cli_halt.sh - end-to-end tests of `gpudispatch run --halt` (GNU parallel's
# conditions: soon/now, fail=N, fail=P%, success=N; the rest resumable; exit
# 1 or 0), the failure reasons grouped on stderr in text mode (bounded), the
# summary's verdict, and a placement warning said once with a count.
# Prints "N passed, N failed".
source "$(dirname "$0")/cli_lib.sh"
export CLI_PIDDIR=$WORK
nrec() { if [ -e "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# ------------------------------------------------------------ soon,fail=N
for i in $(seq 1 40); do echo "fail $i"; done >fail40.txt
gd 3 run --tasks fail40.txt --ui text --window 1 --results h1.jsonl --halt soon,fail=2 \
	-- bash "$HELPER" {}
check "soon,fail=2: exit 1 (got $RC)" [ "$RC" = 1 ]
check "soon,fail=2: says it halted" grep -q 'halted (--halt soon,fail=2)' err.txt
check "soon,fail=2: summary verdict halted" grep -q '^result     halted (a halt condition was met: no new tasks' out.txt
n=$(nrec h1.jsonl)
check "soon,fail=2: stopped early ($n of 40 records), those in flight finished" \
	[ "$n" -ge 2 ] && [ "$n" -le 6 ]
check "soon,fail=2: every record is a finished task" [ "$(grep -c '"status":"error"' h1.jsonl)" = "$n" ]
check "soon,fail=2: the message says how to run the rest" grep -q 'run again with --resume' err.txt
# the rest runs with --resume (failed ones again too)
gd 3 run --tasks fail40.txt --ui none --window 1 --results h1.jsonl --resume -- bash "$HELPER" {}
check "soon,fail=2: --resume runs the rest (exit 1: they fail)" [ "$RC" = 1 ]
check "soon,fail=2: after --resume every task has a record" \
	[ "$(ids h1.jsonl | tr ' ' '\n' | sort -un | wc -l)" = 40 ]

# ------------------------------------------------------------ now,fail=1
{
	echo "sleep 1; exit 3" # fails once the other worker runs its task
	for i in $(seq 1 6); do echo "sleep 30"; done
} >now.txt
gd 3 run --tasks now.txt --ui none --window 1 --results h2.jsonl --halt now,fail=1 --shell
check "now,fail=1: exit 1 (got $RC)" [ "$RC" = 1 ]
check "now,fail=1: the task in flight is abandoned, not run to its end" \
	grep -q 'halted (--halt now,fail=1): 0 succeeded, 1 failed, 0 timed out, [1-9][0-9]* abandoned' err.txt
check "now,fail=1: only the failure is recorded" [ "$(nrec h2.jsonl)" = 1 ]

# ------------------------------------------------------------ fail=P%
gd 3 run --tasks fail40.txt --ui none --window 1 --results h3.jsonl --halt soon,fail=50% \
	-- bash "$HELPER" {}
n=$(nrec h3.jsonl)
check "soon,fail=50%: exit 1, stopped early ($n records)" [ "$RC" = 1 ] && [ "$n" -lt 40 ]
check "soon,fail=50%: not before 3 tasks ended" [ "$n" -ge 3 ]

# ------------------------------------------------------------ success=N
seq 1 60 | sed 's/^/ok-/' >ok60.txt
gd 3 run --tasks ok60.txt --ui text --window 1 --results h4.jsonl --halt soon,success=3 \
	-- bash "$HELPER" {}
n=$(nrec h4.jsonl)
check "soon,success=3: exit 0 (got $RC)" [ "$RC" = 0 ]
check "soon,success=3: stopped early ($n of 60)" [ "$n" -ge 3 ] && [ "$n" -le 6 ]
check "soon,success=3: says it halted" grep -q 'halted (--halt soon,success=3)' err.txt
gd 3 run --tasks ok60.txt --ui none --window 1 --results h5.jsonl --halt now,success=2 \
	-- bash "$HELPER" {}
check "now,success=2: exit 0 (got $RC)" [ "$RC" = 0 ] && [ "$(nrec h5.jsonl)" -lt 60 ]

# ------------------------------------------------------------ never, and bad specs
gd 3 run --tasks fail40.txt --ui none --halt never -- bash "$HELPER" {}
check "never: every task runs (exit 1)" [ "$RC" = 1 ] && grep -q '40 of 40 tasks failed' err.txt
for spec in sometimes soon now,fail= soon,fail=0 now,fail=150% soon,success=10% \
	soon,fail=x soon,done=3 later,fail=1; do
	gd 2 run --tasks ok60.txt --ui none --halt "$spec" -- true
	check "bad --halt '$spec': exit 2 naming it" [ "$RC" = 2 ] && grep -qF -- "--halt '$spec'" err.txt
done

# ------------------------------------------------------------ reasons on stderr
{
	for i in 1 2 3 4 5 6; do echo "fail $i"; done
	echo "ok"
	echo "segv"
} >r.txt
gd 3 run --tasks r.txt --ui text --results r.jsonl -- bash "$HELPER" {}
check "reasons: exit 1" [ "$RC" = 1 ]
check "reasons: grouped on stderr with a count and the first ids" \
	grep -q '^gpudispatch: 6x command exited with status 3; stderr: boom: task # failed (tasks 0, 1, 2, 3, 4, \.\.\.)$' err.txt
check "reasons: the signal is its own reason" \
	grep -q '^gpudispatch: 1x command killed by signal 11 .* (task 7)$' err.txt
check "reasons: each said once for a short run" [ "$(grep -c 'x command exited with status 3' err.txt)" = 1 ]
check "reasons: in the summary" grep -q '^failures   6x command exited with status 3' out.txt
check "reasons: the summary's verdict" grep -q '^result     some failed (7 of 8 tasks)$' out.txt
# all failed
gd 3 run --tasks fail40.txt --ui text -- bash "$HELPER" {}
check "verdict: all failed" grep -q '^result     all failed (40 of 40 tasks)$' out.txt
# bounded: 300 distinct reasons
for a in {a..o}; do for b in {a..t}; do echo "echo reason-$a$b >&2; exit 2"; done; done >many.txt
gd 3 run --tasks many.txt --ui text --shell
lines=$(grep -c '^gpudispatch: .*x .*(task' err.txt || true)
check "reasons: bounded on stderr ($lines lines for 300 distinct reasons)" [ "$lines" -le 40 ]
check "reasons: the rest counted together" grep -q 'x other reasons (tasks' out.txt
check "reasons: letters are kept apart" grep -q '1x command exited with status 2; stderr: reason-aa (task 0)' out.txt

# ------------------------------------------------------------ a warning once
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then
	RC=0
	timeout 120 taskset -c 0 "$MPIEXEC" -n 5 $MPIEXEC_FLAGS --bind-to none "$GD_CLI" run \
		--tasks ok60.txt --ui none -- true >out.txt 2>err.txt || RC=$?
	check "shared CPU: exit 0 (got $RC)" [ "$RC" = 0 ]
	check "shared CPU: the warning once, with the count" \
		[ "$(grep -c 'worker shares its CPU' err.txt)" = 1 ] && grep -q '4 workers (worker' err.txt
else
	echo "skip - taskset: the shared-CPU warning"
fi
finish
