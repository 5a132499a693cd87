#!/usr/bin/env bash
# cli_crashy_worker.sh [crash3] - a persistent worker for the tests that
# misbehaves on purpose:
#   crash3     (mode) exit with status 7 on every third task ("task-3",
#              "task-6", ...), the first time it sees it (a marker file in
#              the current directory remembers), so that a retry succeeds
#   "bad"      answered with an ERROR: line
#   "twolines" answered with two lines (breaks the protocol)
#   "hang"     never answered
# Anything else is answered "done:LINE:N" (N: tasks this process received).
set -uo pipefail
mode=${1:-}
n=0
while IFS= read -r line; do
	n=$((n + 1))
	if [ "$mode" = crash3 ] && [ $((${line#task-} % 3)) = 0 ] && [ ! -e "crashed-$line" ]; then
		: >"crashed-$line"
		echo "crashing on $line" >&2
		exit 7
	fi
	case "$line" in
	hang) sleep 300 ;;
	bad) echo "ERROR: cannot handle '$line'" ;;
	twolines) cat <<<$'one\ntwo' ;; # one write(2): arrives with the answer
	*) echo "done:$line:$n" ;;
	esac
done
