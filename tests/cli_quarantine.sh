#!/usr/bin/env bash
# --quarantine K through the command: a worker whose tasks always fail is
# retired once others succeed, its failures run again elsewhere; when every
# worker fails nobody is quarantined and the run reports the failures.
source "$(dirname "$0")/cli_lib.sh"

seq 1 30 >tasks.txt
# worker 0's tasks fail the way a broken GPU's do; the others' succeed
BAD='if [ "$GPUDISPATCH_WORKER_ID" = 0 ]; then echo "CUDA error: an illegal memory access was encountered" >&2; exit 3; fi; sleep 0.05'

gd 4 run --tasks tasks.txt --quarantine 3 --retries 1 --ui text --results r.jsonl -- sh -c "$BAD" {}
check "worker 0 always fails, --quarantine 3 --retries 1: exit 0 (got $RC: $(tail -3 err.txt))" [ "$RC" = 0 ]
check "every task ends ok" [ "$(grep -c '"status":"ok"' r.jsonl)" = 30 ]
check "no task ended on worker 0 (and some on worker 1)" sh -c "! grep -q '\"worker\":0,' r.jsonl && grep -q '\"worker\":1,' r.jsonl"
check "the summary shows worker 0 quarantined" grep -Eq '^ +0 +[^ ]+ +[^ ]+ +quarantined ' out.txt
check "with its last error" grep -Eq '^ +quarantined: its last [0-9]+ tasks failed: command exited with status 3; stderr: CUDA error: an illegal memory access' out.txt
check "the other workers finished" sh -c '[ "$(grep -Ec "^ +[12] +[^ ]+ +[^ ]+ +finished " out.txt)" = 2 ]'
check "the status file names it, with the reason" /usr/bin/python3 -c '
import json
s = json.load(open("r.jsonl.status"))
w = [x for x in s["workers"] if x["id"] == 0][0]
assert s["quarantined"] == 1 and w["state"] == "quarantined", s
assert "CUDA error: an illegal memory access" in w["reason"], w'
check "a warning said so when it happened" grep -q '^gpudispatch\[0\]: worker 0 on .* quarantined: its last' err.txt

# without --quarantine worker 0 keeps taking tasks
gd 4 run --tasks tasks.txt --retries 1 --ui text -- sh -c "$BAD" {}
check "without --quarantine nobody is quarantined" sh -c '! grep -q quarantined out.txt err.txt'

# every worker fails: not a quarantine, the failures are reported
gd 3 run --tasks tasks.txt --quarantine 2 --ui text --results all.jsonl -- sh -c 'echo "CUDA error: out of memory" >&2; exit 1' {}
check "all workers failing: exit 1 (got $RC)" [ "$RC" = 1 ]
check "all workers failing: nobody quarantined" sh -c '! grep -q quarantined out.txt err.txt'
check "all workers failing: every task recorded as an error" [ "$(grep -c '"status":"error"' all.jsonl)" = 30 ]

for v in 0 x -2; do
	gd 2 run --tasks tasks.txt --quarantine "$v" -- true
	check "--quarantine $v: exit 2 (got $RC)" [ "$RC" = 2 ]
done
check "--quarantine: the error says what it takes" grep -q "quarantine: '-2' is not a whole number of tasks" err.txt
finish
