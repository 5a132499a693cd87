#!/usr/bin/env bash
# cli_run.sh - end-to-end tests of `gpudispatch run` in command mode through
# mpiexec: ids == line numbers, every task exactly once in the results file
# with the right status, failing and crashing commands, a timeout that kills
# grandchildren, odd bytes in the task file, standard input, interrupt and
# resume.  Prints "N passed, N failed".
source "$(dirname "$0")/cli_lib.sh"
export CLI_PIDDIR=$WORK

# ---------------------------------------------------------------- basic
printf 'alpha\n\n# a comment\n   \nbeta gamma\r\n  # indented\nlast line' >t1.txt
gd 3 run --tasks t1.txt --ui none --results r1.jsonl --output-dir out -- bash "$HELPER" {}
check "basic: exit 0 (got $RC: $(tail -3 err.txt | tr '\n' ' '))" [ "$RC" = 0 ]
check "basic: one record per task line, ids = 0-based line numbers" [ "$(ids r1.jsonl)" = "0 4 6" ]
check "basic: all ok" [ "$(grep -c '"status":"ok"' r1.jsonl)" = 3 ]
check "basic: exit_status 0" [ "$(field r1.jsonl 4 exit_status)" = 0 ]
check "basic: record fields" grep -Eq '^\{"id":4,"status":"ok","digest":"[0-9a-f]{16}","attempt":1,"worker":[01],"host":"[^"]+","gpu":-?[0-9]+,"bus_id":"[^"]*","start":[0-9.]+,"end":[0-9.]+,"duration":[0-9.]+,"error":"","exit_status":0,"signal":null,"task":"beta gamma","sum":"[0-9a-f]{16}"\}$' r1.jsonl
check "basic: results are valid JSON" valid_json r1.jsonl
check "basic: stdout in out/4.out, the line one argument, CR stripped, env set" \
	grep -qx 'out \[beta gamma\] id=4 worker=[01] attempt=1 mpi=none' out/4.out
check "basic: stderr in out/6.err" grep -qx 'err \[last line\]' out/6.err
check "basic: no file for skipped lines" [ ! -e out/1.out ] && [ ! -e out/2.out ]
check "basic: task output not on the terminal" bash -c '! grep -q "out \[" out.txt'

# ---------------------------------------------------------------- stdin, no {}
printf 'one\ntwo\nthree\n' | {
	RC=0
	timeout 120 "$MPIEXEC" -n 2 $MPIEXEC_FLAGS "$GD_CLI" run --tasks - --ui none \
		--results r2.jsonl --output-dir out2 -- bash "$HELPER" >out.txt 2>err.txt || RC=$?
	echo "$RC" >rc2
}
check "stdin: exit 0" [ "$(cat rc2)" = 0 ]
check "stdin: every task once" [ "$(ids r2.jsonl)" = "0 1 2" ]
check "stdin: no {} appends the line" grep -q 'out \[three\] id=2' out2/2.out

# ---------------------------------------------------------------- failures + odd bytes
{
	printf 'ok\nfail\nsegv\n'
	printf 'has\0nul\n'
	printf 'bad\xff\xfeutf8 "quoted" \\ back\n'
	head -c 300 /dev/zero | tr '\0' x
	printf '\nok-after-long'
} >t3.txt
gd 3 run --tasks t3.txt --ui none --results r3.jsonl --max-line 200 --output-dir out3 \
	-- bash "$HELPER" {}
check "failures: exit 1 (got $RC)" [ "$RC" = 1 ]
check "failures: every task once" [ "$(ids r3.jsonl)" = "0 1 2 3 4 5 6" ]
check "failures: results valid JSON despite odd bytes" valid_json r3.jsonl
check "failures: exit status 3 and stderr quoted" \
	grep -q '^{"id":1,"status":"error",.*"error":"command exited with status 3; stderr: boom: task 1 failed","exit_status":3,"signal":null' r3.jsonl
check "failures: signal 11" grep -q '^{"id":2,"status":"error",.*"error":"command killed by signal 11.*","exit_status":null,"signal":11' r3.jsonl
check "failures: NUL byte is a clear task error" grep -q '^{"id":3,"status":"error",.*NUL byte at byte 3' r3.jsonl
check "failures: invalid UTF-8 line runs" [ "$(field r3.jsonl 4 status)" = '"ok"' ]
check "failures: invalid UTF-8 reaches the command unchanged" \
	grep -q "$(printf 'bad\xff\xfeutf8')" out3/4.out
check "failures: long line is a clear task error" \
	grep -q '^{"id":5,"status":"error",.*line 6 of t3.txt is 300 bytes, longer than --max-line 200' r3.jsonl
check "failures: the line after the long one runs" [ "$(field r3.jsonl 6 status)" = '"ok"' ]
check "failures: summary on stderr" grep -q '4 of 7 tasks failed' err.txt

# ---------------------------------------------------------------- exit status is no text
# The status comes from the event, not from parsing the message: a
# command whose stderr reads like a status must not be taken at its word.
printf 'one\n' >t9.txt
gd 2 run --tasks t9.txt --ui none --results r9a.jsonl \
	-- bash -c 'echo "killed by signal 9; exited with status 8" >&2; exit 4'
check "exit status: exit 1 (got $RC)" [ "$RC" = 1 ]
check "exit status: the command's own, not its stderr's" \
	grep -q '"error":"command exited with status 4; stderr: killed by signal 9; exited with status 8","exit_status":4,"signal":null' r9a.jsonl

# missing program
printf 'x\n' >t4.txt
gd 2 run --tasks t4.txt --ui none --results r4.jsonl -- /nonexistent/prog {}
check "missing program: exit 1" [ "$RC" = 1 ]
check "missing program: says so" grep -q "cannot run '/nonexistent/prog': No such file or directory" r4.jsonl

# ---------------------------------------------------------------- timeout
printf 'hang\nok\n' >t5.txt
start=$(date +%s)
gd 3 run --tasks t5.txt --ui none --results r5.jsonl --timeout 1 -- bash "$HELPER" {}
took=$(($(date +%s) - start))
check "timeout: exit 1 (got $RC)" [ "$RC" = 1 ]
check "timeout: status timeout" grep -q '^{"id":0,"status":"timeout",.*"error":".*time' r5.jsonl
check "timeout: the other task ok" [ "$(field r5.jsonl 1 status)" = '"ok"' ]
check "timeout: did not wait for sleep 300 (${took}s)" [ "$took" -lt 60 ]
if [ -s gc-0.pid ]; then
	gc=$(cat gc-0.pid)
	check "timeout: grandchild $gc killed with the task" gone "$gc"
	gone "$gc" || kill "$gc" 2>/dev/null || true
else
	ko "timeout: the task never started its grandchild"
fi

# ---------------------------------------------------------------- shell mode
printf "it's\n" >t6.txt
gd 2 run --tasks t6.txt --ui none --results r6.jsonl --output-dir out6 --shell -- \
	'echo "[$(printf %s {} | wc -c)]" {#}; echo {} | tr a-z A-Z'
check "shell: exit 0" [ "$RC" = 0 ]
check "shell: the line quoted, not interpreted" grep -qx "\[4\] 0" out6/0.out
check "shell: pipes work" grep -qx "IT'S" out6/0.out

# ---------------------------------------------------------------- a 1 GiB task file
# one 1 GiB line (a sparse file of NUL bytes, no newline): read as a stream,
# it is one clear task error, and rank 0's memory stays flat
truncate -s 1G big.txt
RC=0
timeout 300 "$MPIEXEC" -n 2 $MPIEXEC_FLAGS bash -c \
	'exec /usr/bin/time -f %M -o rss.${OMPI_COMM_WORLD_RANK:-$PMI_RANK} "$0" "$@"' "$GD_CLI" \
	run --tasks big.txt --ui none --results rbig.jsonl -- true >out.txt 2>err.txt || RC=$?
rss0=$(tail -n 1 rss.0 2>/dev/null || echo 0)
check "1 GiB file: exit 1 (got $RC)" [ "$RC" = 1 ]
check "1 GiB file: one task, a clear error" \
	grep -q '^{"id":0,"status":"error",.*line 1 of big.txt is 1073741824 bytes, longer than --max-line' rbig.jsonl
# flat, not a second copy of the file: 64 MiB, or 128 under AddressSanitizer
# (its shadow memory and quarantine come on top)
rss_max=65536
ldd "$GD_CLI" | grep -q libasan && rss_max=131072
check "1 GiB file: rank 0 peak RSS ${rss0} KiB < ${rss_max} KiB" \
	bash -c "[ '$rss0' -gt 0 ] && [ '$rss0' -lt '$rss_max' ]"
rm -f big.txt

# ---------------------------------------------------------------- interrupt + resume
seq 0 19 | sed 's/.*/sleep 0.5/' >t7.txt
RC=0
# mpiexec itself gets the signal (as from Slurm): it forwards SIGUSR1 to the ranks
"$MPIEXEC" -n 3 $MPIEXEC_FLAGS "$GD_CLI" run --tasks t7.txt --ui none --window 1 \
	--results r7.jsonl -- bash "$HELPER" {} >out.txt 2>err.txt &
pid=$!
(
	sleep 100 &
	s=$!
	trap 'kill $s 2>/dev/null; exit 0' TERM
	wait $s
	kill -KILL "$pid"
) >/dev/null 2>&1 &
watchdog=$!
sleep 3
kill -USR1 "$pid"
wait "$pid" || RC=$?
kill "$watchdog" 2>/dev/null || true
n_first=$(grep -c . r7.jsonl || true)
# MPICH's mpiexec (hydra) forwards SIGUSR1 and the run drains as under Open
# MPI, but hydra then mostly exits 0 instead of rank 0's 3 (rank 0 signalled
# directly does exit 3 through it): documented in docs/cli.md; the drain is
# checked below by the message and the results file
want_rc=3
"$MPIEXEC" --version 2>&1 | grep -q HYDRA && want_rc='[03]'
check "interrupt: exit 3 = interrupted, resumable (got $RC; $(grep gpudispatch err.txt | tr '\n' ' '))" \
	bash -c "[[ '$RC' == $want_rc ]]"
check "interrupt: stopped early ($n_first of 20 done)" [ "$n_first" -lt 20 ]
check "interrupt: what finished is recorded once" [ -z "$(ids r7.jsonl | tr ' ' '\n' | uniq -d)" ]
check "interrupt: message says --resume" grep -q 'run again with --resume' err.txt
gd 3 run --tasks t7.txt --ui none --results r7.jsonl --resume -- bash "$HELPER" {}
check "resume: exit 0 (got $RC)" [ "$RC" = 0 ]
check "resume: every task exactly once over both runs" [ "$(ids r7.jsonl)" = "$(seq -s ' ' 0 19)" ]

# SIGTERM to mpiexec (scancel, a node's shutdown): mpiexec forwards it to
# every rank; rank 0 drains (tasks in flight finish and are recorded), worker
# ranks ignore it.  Open MPI's mpiexec then exits 1 itself, whatever rank 0
# returned, so the drain is checked in rank 0's message and the results file.
seq 0 19 | sed 's/.*/sleep 0.5/' >t9.txt
RC=0
"$MPIEXEC" -n 3 $MPIEXEC_FLAGS "$GD_CLI" run --tasks t9.txt --ui none --window 1 \
	--results r9.jsonl -- bash "$HELPER" {} >out.txt 2>err.txt &
pid=$!
sleep 3
kill -TERM "$pid"
timeout 60 tail --pid="$pid" -f /dev/null || kill -KILL "$pid"
wait "$pid" || RC=$?
n_first=$(grep -c . r9.jsonl || true)
check "sigterm: drained, nothing abandoned ($(grep gpudispatch err.txt | tr '\n' ' '))" \
	grep -q ' 0 abandoned in flight; run again with --resume' err.txt
check "sigterm: stopped early ($n_first of 20 done)" [ "$n_first" -lt 20 ]
check "sigterm: every finished task recorded once" [ -z "$(ids r9.jsonl | tr ' ' '\n' | uniq -d)" ]
check "sigterm: results are whole lines" valid_json r9.jsonl
gd 3 run --tasks t9.txt --ui none --results r9.jsonl --resume -- bash "$HELPER" {}
check "sigterm+resume: exit 0 (got $RC)" [ "$RC" = 0 ]
check "sigterm+resume: every task exactly once over both runs" [ "$(ids r9.jsonl)" = "$(seq -s ' ' 0 19)" ]

# a changed task file stops a resume (exit 2) unless forced
sed -i '5s/.*/sleep 0.1/' t7.txt
gd 2 run --tasks t7.txt --ui none --results r7.jsonl --resume -- bash "$HELPER" {}
check "resume: changed task file is bad input (exit $RC)" [ "$RC" = 2 ]
check "resume: says what changed" grep -q 'task 4 differs' err.txt
gd 2 run --tasks t7.txt --ui none --results r7.jsonl --resume-force -- bash "$HELPER" {}
check "resume-force: runs the changed task (exit $RC)" [ "$RC" = 0 ] && [ "$(grep -c '^{"id":4,' r7.jsonl)" = 2 ]

# resume retries failures only
printf 'failid\nfailid\nfailid\nfailid\n' >t8.txt
FAIL_IDS="1 3" gd 2 run --tasks t8.txt --ui none --results r8.jsonl -- bash "$HELPER" {}
check "resume: first run fails 2 (exit $RC)" [ "$RC" = 1 ]
# a torn last record (kill -9 while writing) must be ignored
printf '{"id":3,"status":"ok","worker":0' >>r8.jsonl
FAIL_IDS="" gd 2 run --tasks t8.txt --ui none --results r8.jsonl --resume -- bash "$HELPER" {}
check "resume: second run exit 0" [ "$RC" = 0 ]
check "resume: only the failed ids ran again" [ "$(tail -n 2 r8.jsonl | sed -n 's/^{"id":\([0-9]*\),"status":"ok".*/\1/p' | sort | tr '\n' ' ')" = "1 3 " ]
check "resume: records stay one per line after a torn one" valid_json <(grep '}$' r8.jsonl)

finish
