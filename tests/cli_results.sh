#!/usr/bin/env bash
# cli_results.sh - records that explain themselves, through the command: the
# task line in each record (cut at 4096 bytes with task_len), the end of a
# failed command's stderr (--stderr-lines), a line-protocol answer that is
# JSON kept as JSON, and `gpudispatch results` after a resume that left
# several records of the same tasks (one final record per id, in id order,
# --status, --format, --fields, damaged lines skipped and counted).
# Prints "N passed, N failed".
source "$(dirname "$0")/cli_lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# A task fails the first time it runs (after 7 lines on stderr), then succeeds.
cat >flaky.sh <<'EOF'
#!/bin/sh
case "$1" in
flaky*)
	if [ ! -e "mark-$1" ]; then
		: >"mark-$1"
		for i in 1 2 3 4 5 6 7; do echo "$1 stderr line $i" >&2; done
		exit 3
	fi ;;
never*) echo "never works" >&2; exit 5 ;;
esac
exit 0
EOF
chmod +x flaky.sh
long=$(head -c 4095 /dev/zero | tr '\0' a)é$(head -c 900 /dev/zero | tr '\0' b) # é at 4095..4096
printf 'ok-0\nflaky-1\n# comment\nflaky-3\nok-4\nnever-5\n%s\n' "$long" >t.txt

# ---------------------------------------------------------------- the first run
gd 2 run --tasks t.txt --ui none --results r.jsonl -- ./flaky.sh {}
check "run: exit 1 (got $RC)" [ "$RC" = 1 ]
check "run: one record per task" [ "$(ids r.jsonl)" = "0 1 3 4 5 6" ]
check "record: the task line" [ "$(field r.jsonl 1 task)" = '"flaky-1"' ]
check "record: no task_len when the line is whole" bash -c '! grep "^{\"id\":1," r.jsonl | grep -q task_len'
check "record: the error quotes the last stderr line" \
	[ "$(field r.jsonl 1 error)" = '"command exited with status 3; stderr: flaky-1 stderr line 7"' ]
check "record: details hold the last 5 stderr lines (default)" \
	[ "$(field r.jsonl 1 details)" = '"flaky-1 stderr line 3\nflaky-1 stderr line 4\nflaky-1 stderr line 5\nflaky-1 stderr line 6\nflaky-1 stderr line 7"' ]
check "record: one stderr line, no details" \
	bash -c '! grep "^{\"id\":5," r.jsonl | grep -q details'
check "record: its error" [ "$(field r.jsonl 5 error)" = '"command exited with status 5; stderr: never works"' ]
check "record: a long line cut at 4096 bytes where a character starts, task_len" \
	$PY -c 'import json,sys
for l in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(l)
    if r["id"] == 6:
        t = r["task"]
        sys.exit(not (r["task_len"] == 4095 + 2 + 900 and t == "a" * 4095 and len(t.encode()) <= 4096))
sys.exit(1)' r.jsonl
check "record: valid JSON" valid_json r.jsonl

gd 2 run --tasks t.txt --ui none --results r0.jsonl --stderr-lines 2 -- sh -c 'for i in 1 2 3; do echo "e$i" >&2; done; exit 1'
check "--stderr-lines 2: two lines" [ "$(field r0.jsonl 0 details)" = '"e2\ne3"' ]
gd 2 run --tasks t.txt --ui none --results r00.jsonl --stderr-lines 0 -- sh -c 'echo e >&2; exit 1'
check "--stderr-lines 0: no stderr quoted" [ "$(field r00.jsonl 0 error)" = '"command exited with status 1"' ]
gd 2 run --tasks t.txt --ui none --stderr-lines 101 -- true
check "--stderr-lines 101: exit 2 naming it" bash -c "[ $RC = 2 ] && grep -q -- '--stderr-lines' err.txt"

check "results before resume: --status error lists the failed ids" \
	[ "$("$GD_CLI" results --status error --format csv --fields id r.jsonl | tr '\n' ' ')" = "id 1 3 5 " ]

# ---------------------------------------------------------------- resume: duplicates
gd 2 run --tasks t.txt --ui none --results r.jsonl --resume -- ./flaky.sh {}
check "resume: exit 1, task 5 still fails (got $RC)" [ "$RC" = 1 ]
check "resume: the file holds duplicates now" [ "$(grep -c '^{"id":1,' r.jsonl)" = 2 ]
"$GD_CLI" results r.jsonl >final.jsonl 2>final.err
check "results: exit 0" [ $? = 0 ]
check "results: one record per id, in id order" [ "$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' final.jsonl | tr '\n' ' ')" = "0 1 3 4 5 6 " ]
check "results: the final record wins (failed, then ok on resume)" \
	bash -c "grep -q '^{\"id\":1,\"status\":\"ok\"' final.jsonl && grep -q '^{\"id\":3,\"status\":\"ok\"' final.jsonl"
check "results: records printed as written" bash -c 'while read -r l; do grep -qxF "$l" r.jsonl || exit 1; done <final.jsonl'
check "results: no warning on a sound file" [ ! -s final.err ]
check "results --status error: only the task that still fails" \
	[ "$("$GD_CLI" results --status error r.jsonl | sed -n 's/^{"id":\([0-9]*\),.*/\1/p' | tr '\n' ' ')" = "5 " ]
check "results --status ok,timeout" \
	[ "$("$GD_CLI" results --status ok,timeout --format tsv --fields id r.jsonl | tr '\n' ' ')" = "id 0 1 3 4 6 " ]

# ---------------------------------------------------------------- formats
"$GD_CLI" results --format csv r.jsonl >final.csv
check "csv: a header and one row per task, readable by a CSV reader" \
	$PY -c 'import csv,sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert [r["id"] for r in rows] == ["0", "1", "3", "4", "5", "6"], rows
assert rows[1]["status"] == "ok" and rows[1]["task"] == "flaky-1"
assert rows[4]["error"] == "command exited with status 5; stderr: never works"
assert rows[4]["exit_status"] == "5" and rows[0]["signal"] == ""
assert rows[5]["task"] == "a" * 4095' final.csv
"$GD_CLI" results --format tsv --fields id,status,details r.jsonl >final.tsv
check "tsv: tabs between fields, newlines escaped" \
	bash -c "[ \"\$(sed -n 1p final.tsv)\" = \"\$(printf 'id\tstatus\tdetails')\" ] && [ \$(wc -l <final.tsv) = 7 ]"
check "--fields: an unknown field is exit 2 naming it" \
	bash -c "\"$GD_CLI\" results --fields id,bogus r.jsonl 2>bad.err; [ \$? = 2 ] && grep -q \"unknown field 'bogus'\" bad.err"
check "--fields with jsonl: those members in that order, null when absent" \
	[ "$("$GD_CLI" results --fields status,id,task_len r.jsonl | sed -n 2p)" = '{"status":"ok","id":1,"task_len":null}' ]
check "--format: a bad one is exit 2 naming it" \
	bash -c "\"$GD_CLI\" results --format xml r.jsonl 2>bad.err; [ \$? = 2 ] && grep -q \"'xml'\" bad.err"
check "--status: a bad one is exit 2 naming it" \
	bash -c "\"$GD_CLI\" results --status failed r.jsonl 2>bad.err; [ \$? = 2 ] && grep -q \"'failed'\" bad.err"
check "a missing file is exit 2 naming it" \
	bash -c "\"$GD_CLI\" results nope.jsonl 2>bad.err; [ \$? = 2 ] && grep -q 'nope.jsonl' bad.err"

# ---------------------------------------------------------------- damaged lines
cp r.jsonl d.jsonl
# a record whose checksum fails: it says task 5 is ok, which must not win
grep '^{"id":5,' r.jsonl | tail -1 | sed 's/"status":"error"/"status":"ok"/' >>d.jsonl
echo 'not a record' >>d.jsonl
head -c 60 r.jsonl >>d.jsonl # torn: no newline
"$GD_CLI" results d.jsonl >dfinal.jsonl 2>d.err
check "damaged: the same final records" cmp -s dfinal.jsonl final.jsonl
check "damaged: a warning counts the skipped lines" grep -q '3 torn or damaged line(s) skipped' d.err

head -c 3000 /dev/urandom >junk.jsonl
: >empty.jsonl
check "no record at all: csv prints the header only, exit 0" \
	bash -c "[ \"\$(\"$GD_CLI\" results --format csv --fields id empty.jsonl)\" = id ] && \"$GD_CLI\" results junk.jsonl 2>/dev/null >junk.out && [ ! -s junk.out ]"

# ---------------------------------------------------------------- line protocol: JSON kept
printf '{"a": [1, 2]}\nplain words\n42\n"quoted"\n{not json\n' >p.txt
gd 2 run --tasks p.txt --ui none --results p.jsonl --worker-cmd cat
check "protocol 1: exit 0 (got $RC)" [ "$RC" = 0 ]
check "protocol 1: a JSON object answer embedded as JSON" [ "$(field p.jsonl 0 result)" = '{"a": [1' ]
check "protocol 1: a number answer embedded as a number" [ "$(field p.jsonl 2 result)" = 42 ]
check "protocol 1: a JSON string answer embedded as that string" [ "$(field p.jsonl 3 result)" = '"quoted"' ]
check "protocol 1: other lines as strings" \
	bash -c "[ '$(field p.jsonl 1 result)' = '\"plain words\"' ] && [ '$(field p.jsonl 4 result)' = '\"{not json\"' ]"
check "protocol 1: valid JSON" valid_json p.jsonl
check "protocol 1: results --format csv shows the JSON text of an object" \
	[ "$("$GD_CLI" results --format csv --fields id,result p.jsonl | sed -n 2p)" = '0,"{""a"": [1, 2]}"' ]

finish
