#!/bin/bash
# The dashboard on a real terminal: runs a program in a detached tmux pane,
# reads the screen with capture-pane, sends keys, and checks that the final
# summary is printed and the terminal's modes are restored exactly.
#
# usage: ui_tmux.sh SCENARIO PROGRAM [ARGS...]
#   dashboard  the dashboard shows, follows a resize, ends with rc=0
#   quit       q drains (footer says so), the run ends with GD_EINTR
#   interrupt  q then Ctrl-C stops now
#   text       TERM=dumb: plain progress lines, no dashboard
#   notty      no controlling terminal (setsid): plain progress lines
#   resignal   a SIGINT stops a dashboard run; the next run of the same
#              process (text mode) is not stopped by it (UI_FAKE_RESIGNAL)
# PROGRAM must print its dashboard through gd_run/gd__ui_run and a line
# "rc=N" at the end (tests/ui_fake_core.c, examples/basic_dashboard.c).
# Exit 77 (skipped) without tmux.
set -u
scenario=$1
shift
command -v tmux >/dev/null || { echo "tmux not installed: skipped"; exit 77; }

dir=$(mktemp -d)
sock=gdui$$
tm() { tmux -L "$sock" -f /dev/null "$@"; }
cleanup() { tm kill-server 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

fail() {
	echo "FAIL ($scenario): $*"
	echo "---- screen ----"
	tm capture-pane -p -S -100 -t ui 2>/dev/null
	echo "---- output ----"
	cat "$dir/out" 2>/dev/null
	exit 1
}

# wait_for PATTERN SECONDS: until the screen (with scrollback) matches.
wait_for() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		tm capture-pane -p -S -200 -t ui 2>/dev/null | grep -qE -- "$1" && return 0
		sleep 0.1
	done
	fail "no '$1' on the screen after $2 s"
}

screen() { tm capture-pane -p -t ui; }

# Quote the program and its arguments for the pane's shell.
prog=$(printf '%q ' "$@")
env="LANG=C.UTF-8 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
# The pane records the terminal's modes before and after, then waits.
wrap() {
	echo "stty -g > $dir/before; $1; echo \"exit=\$?\" >> $dir/out; stty -g > $dir/after; echo ALLDONE; sleep 600"
}
start() { tm new-session -d -s ui -x "${3:-100}" -y "${4:-30}" "$(wrap "$1")" || fail "tmux"; }

check_restored() {
	wait_for ALLDONE 60
	cmp -s "$dir/before" "$dir/after" || fail "terminal modes not restored: $(cat $dir/before) vs $(cat $dir/after)"
}

case $scenario in
resignal)
	start "env $env UI_FAKE_RESIGNAL=1 $prog"
	check_restored
	s=$(tm capture-pane -p -S -200 -t ui)
	grep -q '^rc=-12 ' <<<"$s" || fail "the first run was not interrupted (GD_EINTR)"
	grep -qE '^second rc=0 user_successes=[1-9]' <<<"$s" || fail "the second run was stopped too"
	;;
dashboard)
	start "env $env $prog"
	wait_for 'gpudispatch \| [0-9]+ workers' 60
	wait_for 'processing' 30
	s=$(screen)
	grep -qE 'ID +HOST +GPU +STATUS' <<<"$s" || fail "no table header"
	grep -qE '[0-9]+/[0-9]+ +[0-9.]+%' <<<"$s" || fail "no progress"
	grep -q '✓' <<<"$s" || fail "no UTF-8 counts"
	# A resize is followed: at 40 columns the GPU column goes.
	tm resize-window -t ui -x 40 -y 20
	for ((i = 0; i < 50; i++)); do
		s=$(screen)
		grep -q 'STATUS' <<<"$s" && ! grep -q 'GPU' <<<"$s" && break
		sleep 0.1
	done
	grep -q 'STATUS' <<<"$s" && ! grep -q 'GPU' <<<"$s" || fail "no redraw at 40 columns"
	tm resize-window -t ui -x 120 -y 40
	check_restored
	s=$(tm capture-pane -p -S -200 -t ui)
	grep -q '== gpudispatch summary ==' <<<"$s" || fail "no summary"
	grep -Eq 'result     some failed \([0-9]+ of [0-9]+ tasks\)' <<<"$s" || fail "result not 'some failed' (some tasks fail)"
	grep -q 'rc=0' <<<"$s" || fail "rc not 0"
	;;
quit | interrupt)
	start "env $env $prog"
	wait_for 'processing' 60
	tm send-keys -t ui '?'
	wait_for 'PgUp/PgDn +scroll one page' 10
	tm send-keys -t ui q
	wait_for 'Stopping: no new tasks' 10
	if [ "$scenario" = interrupt ]; then
		tm send-keys -t ui C-c
	fi
	check_restored
	s=$(tm capture-pane -p -S -200 -t ui)
	grep -q 'result     interrupted (' <<<"$s" || fail "not interrupted"
	grep -q 'rc=-12' <<<"$s" || fail "rc not GD_EINTR"
	if [ "$scenario" = interrupt ]; then
		grep -qE 'not done' <<<"$s" || fail "stop now left nothing not done"
	fi
	;;
text)
	start "env $env TERM=dumb $prog > $dir/out"
	check_restored
	grep -qE '^\[gpudispatch [0-9:]+\] [0-9]+' "$dir/out" || fail "no progress line"
	grep -q '== gpudispatch summary ==' "$dir/out" || fail "no summary"
	;;
notty)
	# setsid: a new session without a controlling terminal, as in a batch job.
	env LANG=C.UTF-8 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
		setsid -w "$@" </dev/null >"$dir/out" 2>&1
	grep -qE '^\[gpudispatch [0-9:]+\] [0-9]+' "$dir/out" || fail "no progress line"
	grep -q '== gpudispatch summary ==' "$dir/out" || fail "no summary"
	if grep -q $'\e' "$dir/out"; then fail "escape sequences in the log"; fi
	;;
*)
	echo "unknown scenario $scenario"
	exit 2
	;;
esac
echo "ok ($scenario)"
