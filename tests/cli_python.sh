#!/usr/bin/env bash
# cli_python.sh - the Python package (python/gpudispatch) through the
# command: a worker that prints everywhere it can never records a wrong
# answer; JSON results; newlines, bytes and 1 MiB answers; exceptions in
# process and setup; a program that cannot start; seeds and setup args;
# timeouts and crashes; the installed package; the example.
source "$(dirname "$0")/cli_lib.sh"
PY=$(command -v python3)
export PYTHONPATH="$SRC/python${PYTHONPATH:+:$PYTHONPATH}"
W="$PY $SRC/tests/cli_python_worker.py"

# ---------------------------------------------------------------- stray output everywhere
seq 0 59 | sed 's/^/t/' >p1.txt
gd 4 run --tasks p1.txt --ui none --results p1.jsonl --output-dir pout --seed 42 \
	--setup-arg model=m.pt --worker-cmd "$W"
check "stray output: exit 0 (got $RC: $(grep gpudispatch err.txt | tr '\n' ' '))" [ "$RC" = 0 ]
check "stray output: every task once" [ "$(ids p1.jsonl)" = "$(seq -s ' ' 0 59)" ]
check "stray output: valid JSON" valid_json p1.jsonl
check "stray output: every answer is its own task's, as JSON" python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    res = r["result"]
    assert r["status"] == "ok", r
    assert res["task"] == "t%d" % r["id"] and res["id"] == r["id"], r
    assert res["worker"] == r["worker"] and res["seed"] == 42 + r["worker"], r
    assert res["model"] == "m.pt" and res["attempt"] == 1, r' p1.jsonl
check "stray output: the prints are in the log" grep -q 'raw write to fd 1' pout/worker-0.log
check "stray output: subprocess output in the log" grep -q 'a subprocess on fd 1' pout/worker-*.log
check "stray output: thread output in the log" grep -q 'thread says hello' pout/worker-0.log
check "stray output: module-level print in the log" grep -q 'module level: before serve' pout/worker-0.log
check "stray output: cleanup ran" grep -q 'cleanup on worker 0' pout/worker-0.log

# ---------------------------------------------------------------- odd answers, raising, crash, hang
printf 'a\nraise\nnl\nbin\nbig\nsegv\nb\nhang\nc\n' >p2.txt
gd 2 run --tasks p2.txt --ui none --results p2.jsonl --timeout 5 --worker-cmd "$W"
check "errors: exit 1 (got $RC)" [ "$RC" = 1 ]
check "errors: every task once" [ "$(ids p2.jsonl)" = "$(seq -s ' ' 0 8)" ]
check "errors: valid JSON" valid_json p2.jsonl
check "errors: an exception fails its task with type and message" \
	grep -q "^{\"id\":1,\"status\":\"error\",.*\"error\":\"ValueError: cannot handle 'raise'\",.*\"details\":\"Traceback (most recent call last):.*in process" p2.jsonl
check "errors: the next task after an exception is ok" grep -q '^{"id":2,"status":"ok",.*"result":"two\\nlines"' p2.jsonl
check "errors: bytes are kept (base64 when not UTF-8)" grep -q '^{"id":3,"status":"ok",.*"result_base64":"AP8K"' p2.jsonl
check "errors: 1 MiB answer intact" python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [x for x in r if x["id"] == 4][0]["result"] == "x" * (1 << 20)' p2.jsonl
check "errors: a segfault in a C extension fails only its task" \
	grep -Eq '^\{"id":5,"status":"error",.*ended while it ran task 5: (killed by signal 11|exited with status 139)' p2.jsonl
check "errors: the task after the crash is ok" grep -q '^{"id":6,"status":"ok"' p2.jsonl
check "errors: a hang times out" grep -q '^{"id":7,"status":"timeout"' p2.jsonl
check "errors: the task after the timeout is ok" grep -q '^{"id":8,"status":"ok"' p2.jsonl

# ---------------------------------------------------------------- setup raising
printf 'x\ny\nz\nw\n' >p3.txt
gd 3 run --tasks p3.txt --ui none --results p3.jsonl --setup-arg fail_on=0 --worker-cmd "$W"
check "setup raises on one: exit 0 (got $RC)" [ "$RC" = 0 ]
check "setup raises on one: every task ok" [ "$(grep -c '"status":"ok"' p3.jsonl)" = 4 ]
check "setup raises on one: its message on the terminal" \
	grep -q "worker 0: setup failed: RuntimeError: cannot load model none on worker 0" err.txt
gd 3 run --tasks p3.txt --ui none --results p4.jsonl --setup-arg fail_on=all --worker-cmd "$W"
check "setup raises on all: exit 4 (got $RC)" [ "$RC" = 4 ]
check "setup raises on all: says why" grep -q "setup failed on every worker.*RuntimeError: cannot load model" err.txt
check "setup raises on all: no task recorded" [ ! -s p4.jsonl ]
gd 2 run --tasks p3.txt --ui none --results p5.jsonl --setup-arg nosuch=1 --worker-cmd "$W"
check "an unknown setup arg is a setup failure naming it" grep -q "TypeError: .*unexpected keyword argument 'nosuch'" err.txt

# ---------------------------------------------------------------- cannot start
t0=$SECONDS
gd 3 run --tasks p3.txt --ui none --results p6.jsonl --worker-cmd "$PY -c 'import no_such_module_here'"
check "import error: exit 4 (got $RC)" [ "$RC" = 4 ]
check "import error: quickly ($((SECONDS - t0)) s)" [ $((SECONDS - t0)) -lt 30 ]
check "import error: its message" grep -q "ModuleNotFoundError: No module named 'no_such_module_here'" err.txt

# ---------------------------------------------------------------- not under gpudispatch
"$PY" "$SRC/tests/cli_python_worker.py" >alone.out 2>alone.err && RC=0 || RC=$?
check "run alone: exit 2 (got $RC)" [ "$RC" = 2 ]
check "run alone: says how to run it" grep -q 'gpudispatch run --tasks FILE --worker-cmd' alone.err

# ---------------------------------------------------------------- installed package, example
# Debian's python3 with python3-pip, -setuptools and -wheel (install-deps.sh)
PIP_PY=/usr/bin/python3
[ -x "$PIP_PY" ] || PIP_PY=$PY
if "$PIP_PY" -m pip --version >/dev/null 2>&1; then
	cp -r "$SRC/python" "$WORK/pysrc" # pip builds in place: not in the source tree
	"$PIP_PY" -m pip install -q --no-build-isolation --no-deps --no-index --target "$WORK/site" \
		"$WORK/pysrc" >pip.log 2>&1 && RC=0 || RC=$?
	check "pip install offline (got $RC: $(tail -2 pip.log | tr '\n' ' '))" [ "$RC" = 0 ]
	(cd / && PYTHONPATH="$WORK/site" "$PIP_PY" -c 'import gpudispatch, sys; sys.exit(gpudispatch.__version__ != "0.1.0")') &&
		RC=0 || RC=$?
	check "the installed package imports" [ "$RC" = 0 ]
else
	echo "skip - pip is not installed for $PY: the offline install is not tested"
fi
EX=$SRC/examples/python
gd 3 run --tasks "$EX/tasks.txt" --ui none --results ex.jsonl --setup-arg model_path="$EX/model.json" \
	--seed 7 --worker-cmd "$PY $EX/model_worker.py"
check "example: exit 0 (got $RC)" [ "$RC" = 0 ]
check "example: every task ok" [ "$(grep -c '"status":"ok"' ex.jsonl)" = "$(grep -cv '^#' "$EX/tasks.txt")" ]
check "example: JSON results" grep -q '"result":{"label":' ex.jsonl

finish
