#!/usr/bin/env bash
# cli_framed.sh - end-to-end tests of protocol 2 (docs/protocol.md) through
# the command, with a worker written on raw frames (tests/cli_framed_worker.py):
# detection, JSON and byte results, every kind of protocol error, crashes,
# timeouts, setup failures, a program that cannot start, restarts.
source "$(dirname "$0")/cli_lib.sh"
PY=$(command -v python3)
W="$PY $SRC/tests/cli_framed_worker.py"

# ---------------------------------------------------------------- detection, JSON, seed, args
printf 'a\nb\nc\n' >f1.txt
gd 3 run --tasks f1.txt --ui none --results f1.jsonl --output-dir fout --seed 42 \
	--setup-arg model_path=m.pt --setup-arg batch=8 --worker-cmd "$W banner"
check "serve: exit 0 (got $RC: $(grep gpudispatch err.txt | tr '\n' ' '))" [ "$RC" = 0 ]
check "serve: every task once" [ "$(ids f1.jsonl)" = "0 1 2" ]
check "serve: clean exit of every program" bash -c "! grep -q 'did not exit' out.txt err.txt"
check "serve: valid JSON" valid_json f1.jsonl
check "serve: the answer is stored as JSON, not as a string" \
	grep -q '^{"id":0,"status":"ok",.*"result":{"task": "a", "n": [0-9]*, "seed": 4[23],' f1.jsonl
check "serve: seed = --seed + worker id" python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    assert r["result"]["seed"] == 42 + r["worker"], r' f1.jsonl
check "serve: --setup-arg reaches the program" \
	grep -q '"args": {"model_path": "m.pt", "batch": "8"}' f1.jsonl
check "serve: a line printed before HELLO is no answer" bash -c '! grep -q "loading the model" f1.jsonl'
check "serve: stdout is the log, in worker-W.log" grep -q 'loading the model' fout/worker-0.log
check "serve: log lines after answers are in the log" grep -q 'log: task' fout/worker-0.log
check "serve: no worker-W.err left for a protocol-2 program" bash -c '! ls fout/worker-*.err 2>/dev/null'

# ---------------------------------------------------------------- errors, one worker, in order
printf 'ok1\nwrongid\nok2\ngarbage\nok3\nbadjson\nok4\nnul\nbinary\nbig\nerror\ncrash\nok5\nshort\nok6\nhang\nok7\n' >f2.txt
gd 2 run --tasks f2.txt --ui text --results f2.jsonl --timeout 3 --worker-cmd "$W"
check "errors: exit 1 (got $RC)" [ "$RC" = 1 ]
check "errors: every task once" [ "$(ids f2.jsonl)" = "$(seq -s ' ' 0 16)" ]
check "errors: valid JSON" valid_json f2.jsonl
for id in 0 2 4 6 12 14 16; do
	check "errors: task $id after a broken one is ok (program restarted)" \
		grep -q "^{\"id\":$id,\"status\":\"ok\"" f2.jsonl
done
check "errors: an answer for another task id is an error, never a result" \
	grep -q '^{"id":1,"status":"error",.*"error":"worker program answered task 2 attempt 1 while task 1 attempt 1 ran; it was restarted' f2.jsonl
check "errors: the wrong answer is recorded nowhere" bash -c '! grep -q "\"wrong\"" f2.jsonl'
check "errors: garbage is a protocol error" \
	grep -q '^{"id":3,"status":"error",.*does not start with \\"GD\\"' f2.jsonl
check "errors: a RESULT flagged JSON that is not JSON" \
	grep -q '^{"id":5,"status":"error",.*flagged JSON that is not valid JSON' f2.jsonl
check "errors: NUL and newline survive" grep -q '^{"id":7,"status":"ok",.*"result":"a\\u0000b\\nc"' f2.jsonl
check "errors: bytes that are not UTF-8 are kept as base64" \
	grep -q '^{"id":8,"status":"ok",.*"result_base64":"//4AAQ=="' f2.jsonl
check "errors: a 1 MiB answer intact" python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [x for x in r if x["id"] == 9][0]["result"] == "x" * (1 << 20)' f2.jsonl
check "errors: status 1 is a task error; its first line is the error" \
	grep -q '^{"id":10,"status":"error",.*"error":"ValueError: bad input",.*"details":"  File \\"w.py\\", line 3"' f2.jsonl
check "errors: a crash fails only its task" \
	grep -Eq '^\{"id":11,"status":"error",.*"error":"worker program ended while it ran task 11: (killed by signal 11|exited with status 139)' f2.jsonl
check "errors: a short frame is a protocol error" \
	grep -q '^{"id":13,"status":"error",.*in the middle of a frame' f2.jsonl
check "errors: a hang times out" grep -q '^{"id":15,"status":"timeout"' f2.jsonl
check "errors: restarts are counted in the RESTARTS column" \
	bash -c "grep -Eq '^ +0 +[^ ]+ +cpu +[a-z]+ +[0-9]+ +[0-9]+ +1 +[4-9] ' out.txt err.txt"

# ---------------------------------------------------------------- cannot start
printf 'x\ny\nz\n' >f3.txt
t0=$SECONDS
gd 3 run --tasks f3.txt --ui none --results f3.jsonl --worker-cmd "$W die"
check "die: exit 4 (got $RC)" [ "$RC" = 4 ]
check "die: quickly ($((SECONDS - t0)) s)" [ $((SECONDS - t0)) -lt 30 ]
check "die: the program's stderr in the message" \
	grep -q "setup failed on every worker.*ended before it read a task (exited with status 1), 3 times in a row; stderr: fatal: no module named 'model'" err.txt
check "die: no task recorded (none ran)" [ ! -s f3.jsonl ]
gd 3 run --tasks f3.txt --ui none --results f3b.jsonl --start-failures 1 --worker-cmd "$W die"
check "die: --start-failures 1 retires at the first (got $RC)" grep -q "ended before it read a task (exited with status 1), 1 times in a row" err.txt

# ---------------------------------------------------------------- setup failures
gd 3 run --tasks f3.txt --ui none --results f4.jsonl --worker-cmd "$W setup-fail"
check "setup-fail everywhere: exit 4 (got $RC)" [ "$RC" = 4 ]
check "setup-fail everywhere: its message" grep -q 'setup failed: RuntimeError: no GPU memory' err.txt
gd 3 run --tasks f3.txt --ui none --results f5.jsonl \
	--worker-cmd "if [ \"\$GPUDISPATCH_WORKER_ID\" = 0 ]; then $W setup-fail; else $W; fi"
check "setup-fail on one: exit 0 (got $RC)" [ "$RC" = 0 ]
check "setup-fail on one: every task ok on the others" [ "$(grep -c '"status":"ok","digest":"[0-9a-f]*","attempt":1,"worker":1' f5.jsonl)" = 3 ]
check "setup-fail on one: said on the terminal" grep -q 'worker 0: setup failed: RuntimeError: no GPU memory' err.txt

# ---------------------------------------------------------------- setup time is not task time
gd 2 run --tasks f3.txt --ui none --results f6.jsonl --timeout 1 --worker-cmd "$W slow 2"
check "slow setup, --timeout 1: exit 0 (got $RC)" [ "$RC" = 0 ]
check "slow setup: every task ok" [ "$(grep -c '"status":"ok"' f6.jsonl)" = 3 ]
gd 2 run --tasks f3.txt --ui none --results f7.jsonl --setup-timeout 0.5 --worker-cmd "$W slow 5"
check "--setup-timeout: exit 4 (got $RC)" [ "$RC" = 4 ]
check "--setup-timeout: says so" grep -q 'was not READY within --setup-timeout 0.5 s' err.txt

finish
