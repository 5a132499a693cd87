#!/usr/bin/env bash
# cli_deadline.sh - --deadline, --deadline-margin, --task-time through the
# command: bad values are usage errors; a run stops starting tasks that
# would end past the deadline minus the margin, exits 3 with the rest held
# back and resumable; a task still running at deadline - margin/2 is
# abandoned so that the run ends by the deadline.
source "$(dirname "$0")/cli_lib.sh"

echo "sleep 0" >one.txt
usage() { # description args...
	local d=$1
	shift
	gd 2 run --ui none --tasks one.txt --shell "$@"
	if [ "$RC" = 2 ] && grep -q -- "$(printf '%s' "$1" | sed 's/=.*//')" err.txt; then ok "$d"; else
		ko "$d: rc $RC: $(head -2 err.txt | tr '\n' ' ')"
	fi
}
usage "--deadline garbage is a usage error" --deadline tomorrow
usage "--deadline +0 is a usage error" --deadline +0
usage "--deadline +5x is a usage error" --deadline +5x
usage "--deadline in the past is a usage error" --deadline 1000
usage "--deadline 2026-02-30T10:00 is a usage error" --deadline 2026-02-30T10:00
usage "--task-time -1 is a usage error" --task-time -1 --deadline +1h
usage "--deadline-margin 0 is a usage error" --deadline-margin 0 --deadline +1h
usage "--task-time needs a deadline" --task-time 3 --deadline none
grep -q "in the past" <(gd 2 run --ui none --tasks one.txt --shell --deadline @1000; cat err.txt) &&
	ok "a past deadline says so" || ko "a past deadline: $(cat err.txt)"
for when in +2h30m +90s "@$(($(date +%s) + 3600))" "$(date -d '+1 day' +%Y-%m-%dT%H:%M)" \
	"$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)"; do
	gd 2 run --ui none --tasks one.txt --shell --deadline "$when"
	[ "$RC" = 0 ] && ok "--deadline $when: runs" || ko "--deadline $when: rc $RC: $(cat err.txt)"
done

# ------------------------------------------------------------ a deadline stop
seq 1 30 | sed 's/.*/sleep 1/' >t.txt
D=$(($(date +%s) + 9))
gd 3 run --ui text --tasks t.txt --results r.jsonl --shell --deadline "@$D" --deadline-margin 1
n=$(grep -c . r.jsonl)
[ "$RC" = 3 ] && ok "a deadline stop exits 3" || ko "deadline stop: rc $RC: $(tail -3 err.txt)"
if grep -q "^gpudispatch: deadline: $n tasks finished, $((30 - n)) held back" err.txt; then
	ok "the message says how many were held back ($((30 - n)))"
else
	ko "message: $(grep 'gpudispatch:' err.txt | tr '\n' ' ')"
fi
grep -q "$((30 - n)) held back by the deadline" out.txt err.txt && ok "the summary says so" ||
	ko "summary: $(grep -h 'tasks ' out.txt err.txt)"
grep -q "\"held_back\":$((30 - n))," r.jsonl.status && grep -q '"state":"interrupted"' r.jsonl.status &&
	ok "the status file says so" || ko "status file: $(cat r.jsonl.status 2>&1 | head -c 300)"
[ "$n" -gt 4 ] && [ "$n" -lt 30 ] && ok "$n of 30 tasks ran before the deadline" || ko "$n tasks ran"
[ "$(grep -c '"status":"ok"' r.jsonl)" = "$n" ] && ok "none was cut off" || ko "not all ok"
last=$(sed -n 's/.*"end":\([0-9.]*\),.*/\1/p' r.jsonl | sort -n | tail -1)
if awk -v l="$last" -v d="$D" 'BEGIN{exit !(l <= d - 1 + 0.2 && l >= d - 1 - 1 - 1.5)}'; then
	ok "the last task ended within a task of the deadline minus the margin ($(awk -v l="$last" -v d="$D" 'BEGIN{printf "%.2f", d-l}') s before the deadline)"
else
	ko "last end $last, deadline $D"
fi
gd 3 run --ui none --tasks t.txt --results r.jsonl --resume --shell --deadline none
[ "$RC" = 0 ] && [ "$(ids r.jsonl)" = "$(seq -s ' ' 0 29)" ] &&
	ok "--resume runs exactly the rest" || ko "resume: rc $RC ids $(ids r.jsonl)"

# ------------------------------------------------- a task that overruns its estimate
seq 1 4 | sed 's/.*/sleep 8/' >long.txt
gd 3 run --ui none --tasks long.txt --results l.jsonl --shell --deadline +5s --deadline-margin 2 --task-time 0.5
if [ "$RC" = 3 ] && grep -q "abandoning the 2 task(s) still running" err.txt &&
	! grep -q . l.jsonl; then
	ok "tasks still running at the deadline minus half the margin are abandoned (exit 3)"
else
	ko "overrun: rc $RC: $(grep gpudispatch err.txt | tr '\n' ' ')"
fi
gd 3 run --ui none --tasks long.txt --results l.jsonl --resume --shell --deadline none
[ "$RC" = 0 ] && [ "$(ids l.jsonl)" = "0 1 2 3" ] && ok "and --resume runs them" ||
	ko "resume long: rc $RC ids $(ids l.jsonl)"
finish
