#!/usr/bin/env bash
# cli_worker.sh - end-to-end tests of persistent-worker mode (--worker-cmd)
# through mpiexec: the line protocol, a worker program that crashes on every
# third task (with and without retries), ERROR: lines, a program that breaks
# the protocol, a timeout, a program that cannot start.
source "$(dirname "$0")/cli_lib.sh"
CRASHY="$SRC/tests/cli_crashy_worker.sh"

# ---------------------------------------------------------------- example worker
printf 'hello world\n# comment\nsay "hi" \\ there\nthree little words\n' >w1.txt
gd 3 run --tasks w1.txt --ui none --results w1.jsonl --output-dir wout \
	--worker-cmd "bash $SRC/examples/worker.sh"
check "example: exit 0 (got $RC: $(grep gpudispatch err.txt | tr '\n' ' '))" [ "$RC" = 0 ]
check "example: every task once" [ "$(ids w1.jsonl)" = "0 2 3" ]
check "example: valid JSON" valid_json w1.jsonl
check "example: the result line, being JSON, is recorded as JSON" \
	grep -q '^{"id":3,"status":"ok",.*"result":{"worker":[01],"n":[0-9],"length":18,"reversed":"words little three"}' w1.jsonl
check "example: quotes survive both ways" grep -q '"reversed":"there \\\\ \\"hi\\" say"' w1.jsonl
check "example: the task line is recorded" grep -q '^{"id":2,.*"task":"say \\"hi\\" \\\\ there"' w1.jsonl
check "example: worker stderr kept in wout/worker-W.err" grep -q 'done after' wout/worker-0.err

# ---------------------------------------------------------------- crash every 3rd task
seq 1 12 | sed 's/^/task-/' >w2.txt
gd 3 run --tasks w2.txt --ui none --results w2.jsonl --retries 1 --worker-cmd "bash $CRASHY crash3"
check "crash3+retries: exit 0 (got $RC: $(grep gpudispatch err.txt | tr '\n' ' '))" [ "$RC" = 0 ]
check "crash3+retries: every task exactly once" [ "$(ids w2.jsonl)" = "$(seq -s ' ' 0 11)" ]
check "crash3+retries: all ok" [ "$(grep -c '"status":"ok"' w2.jsonl)" = 12 ]
check "crash3+retries: tasks 2 5 8 11 needed a second attempt" \
	[ "$(grep '"attempt":2' w2.jsonl | sed -n 's/^{"id":\([0-9]*\),.*/\1/p' | sort -n | tr '\n' ' ')" = "2 5 8 11 " ]
check "crash3+retries: results from restarted programs" grep -q '"result":"done:task-[0-9]*:1"' w2.jsonl

rm -f crashed-*
gd 2 run --tasks w2.txt --ui none --results w3.jsonl --worker-cmd "bash $CRASHY crash3"
check "crash3: exit 1 (got $RC)" [ "$RC" = 1 ]
check "crash3: every task exactly once" [ "$(ids w3.jsonl)" = "$(seq -s ' ' 0 11)" ]
check "crash3: every third task failed (4 of 12)" [ "$(grep -c '"status":"error"' w3.jsonl)" = 4 ]
check "crash3: the error says why, with the program's stderr" \
	grep -q '"error":"worker program closed its standard output before answering: exited with status 7; stderr: crashing on task-3","exit_status":7' w3.jsonl

# ---------------------------------------------------------------- protocol
printf 'a\nbad\ntwolines\nb\nhang\nc\n' >w4.txt
gd 2 run --tasks w4.txt --ui none --results w4.jsonl --timeout 2 --worker-cmd "bash $CRASHY"
check "protocol: exit 1 (got $RC)" [ "$RC" = 1 ]
check "protocol: every task once" [ "$(ids w4.jsonl)" = "0 1 2 3 4 5" ]
check "protocol: ERROR: line is a task error with its message" \
	grep -q "^{\"id\":1,\"status\":\"error\",.*\"error\":\"cannot handle 'bad'\"" w4.jsonl
# the second line is seen with the first (task 2 fails) or before task 3 is sent (task 3 fails)
check "protocol: two lines for one task is an error" \
	grep -Eq '^\{"id":[23],"status":"error",.*wrote more than one line' w4.jsonl
check "protocol: the program restarted after that" grep -q '^{"id":3,"status":"ok",.*"result":"done:b:1"\|^{"id":3,"status":"error",.*line for task 2' w4.jsonl
check "protocol: hang times out" grep -q '^{"id":4,"status":"timeout"' w4.jsonl
check "protocol: next task ok after the timeout" grep -q '^{"id":5,"status":"ok",.*"result":"done:c:1"' w4.jsonl

# ---------------------------------------------------------------- cannot start
printf 'x\ny\n' >w5.txt
t0=$SECONDS
gd 3 run --tasks w5.txt --ui none --results w5.jsonl --worker-cmd "/nonexistent/prog --serve"
check "missing program: exit 4, not a failure per task (got $RC)" [ "$RC" = 4 ]
check "missing program: quickly ($((SECONDS - t0)) s)" [ $((SECONDS - t0)) -lt 30 ]
check "missing program: no task charged" [ ! -s w5.jsonl ]
check "missing program: says not found, once" \
	grep -q 'setup failed on every worker.*ended before it read a task (exited with status 127), 3 times in a row; stderr: .*/nonexistent/prog.*not found$' err.txt

# ---------------------------------------------------------------- Python, print() without flush
printf 'u\nv\nw\n' >w7.txt
gd 2 run --tasks w7.txt --ui none --results w7.jsonl --timeout 20 \
	--worker-cmd "python3 -c 'import sys
for line in sys.stdin: print(\"got \" + line.strip())'"
check "unflushed print: exit 0, no deadlock (got $RC)" [ "$RC" = 0 ]
check "unflushed print: the answers" [ "$(grep -c '"result":"got [uvw]"' w7.jsonl)" = 3 ]

# ---------------------------------------------------------------- stray line before reading
printf 'p\nq\n' >w6.txt
gd 2 run --tasks w6.txt --ui none --results w6.jsonl \
	--worker-cmd "echo banner; sleep 0.3; exec bash $SRC/examples/worker.sh"
check "banner before the task is read: never a result" bash -c '! grep -q "\"result\":\"banner\"" w6.jsonl'
check "banner: the task fails saying why" grep -q 'wrote to its standard output before it read task' w6.jsonl

finish
