#!/usr/bin/env bash
# cli_usage.sh - `gpudispatch` usage: --help, --version, bad usage and bad
# input exit with status 2 and a message saying what (with and without
# mpiexec), and `gpudispatch placement`.
source "$(dirname "$0")/cli_lib.sh"

run1() { RC=0; "$GD_CLI" "$@" >out.txt 2>err.txt || RC=$?; }

run1 --help
check "--help: exit 0" [ "$RC" = 0 ]
for o in --tasks --worker-cmd --shell --timeout --retries --output-dir --quiet --results --resume \
	--resume-force --skip-failed --max-line --window --seed --grace --ui --refresh --monochrome \
	--gpus --workers-per-gpu --gpus-per-worker --no-placement --json --help --version; do
	grep -q -- "$o" out.txt || ko "--help lists $o"
done
ok "--help lists every option"
run1 --version
check "--version" grep -Eqx 'gpudispatch [0-9]+\.[0-9]+\.[0-9]+' out.txt
run1
check "no arguments: exit 2 with a message" [ "$RC" = 2 ] && grep -q 'missing the command' err.txt
run1 run --tasks t.txt --bogus -- echo
check "unknown option: exit 2" [ "$RC" = 2 ]
check "unknown option: named" grep -q "unknown option '--bogus'" err.txt
run1 run --tasks t.txt --worker-cmd "python serve.py {}"
check "{} in --worker-cmd: exit 2, says {} misuse" [ "$RC" = 2 ] && grep -q '{} misuse' err.txt

gd 3 run --tasks t.txt --bogus -- echo
check "mpiexec, unknown option: exit 2" [ "$RC" = 2 ]
check "mpiexec, unknown option: said once" [ "$(grep -c "unknown option '--bogus'" err.txt)" = 1 ]

gd 2 run --tasks /nonexistent/tasks.txt --ui none -- echo
check "unreadable task file: exit 2" [ "$RC" = 2 ]
check "unreadable task file: says which and why" \
	grep -q 'cannot read task file /nonexistent/tasks.txt: No such file or directory' err.txt
gd 2 run --tasks "$WORK" --ui none -- echo
check "task file is a directory: exit 2 with a message" [ "$RC" = 2 ] && grep -q 'is a directory' err.txt

echo x >t.txt
gd 2 run --tasks t.txt --ui none --results /nonexistent/dir/r.jsonl -- echo
check "unwritable results file: exit 2 with a message" [ "$RC" = 2 ] &&
	grep -q 'cannot open results file /nonexistent/dir/r.jsonl' err.txt
gd 1 run --tasks t.txt --ui none -- echo
check "one rank only: exit 2 (got $RC)" [ "$RC" = 2 ] && grep -q 'at least 2 MPI ranks' err.txt

gd 3 placement
check "placement: exit 0 (got $RC)" [ "$RC" = 0 ]
check "placement: a row per worker" [ "$(grep -c . out.txt)" -ge 2 ]
gd 3 placement --json
check "placement --json: exit 0" [ "$RC" = 0 ]
if command -v python3 >/dev/null; then
	check "placement --json: a JSON array of 2 workers" \
		python3 -c 'import json,sys; a=json.load(open("out.txt")); assert len(a)==2, a'
fi

finish
