#!/usr/bin/env bash
# cli_usage_docs.sh SRC MANPAGE CLI: every option of the command's option
# table (src/cli/options.c) is in the man page and is offered by the bash
# completion for the subcommands it belongs to; the man page renders without
# warnings at 80 columns and carries the command's version.
set -uo pipefail
src=$1 man=$2 cli=$3
comp=$src/share/bash-completion/completions/gpudispatch
fails=0
no() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# the table: {"name", O_FLAG|O_VALUE, run, placement}
table=$(grep -oE '\{"[a-z-]+", O_(FLAG|VALUE), [01], [01]\}' "$src/src/cli/options.c" |
	sed -E 's/\{"([a-z-]+)", O_[A-Z]+, ([01]), ([01])\}/\1 \2 \3/')
[ "$(echo "$table" | wc -l)" -ge 20 ] || no "could not read the option table of src/cli/options.c"

# the man page: roff's \- is a hyphen
text=$(sed 's/\\-/-/g' "$man")
# shellcheck disable=SC1090
source "$comp"
complete_words() { # words...: what the completion offers for the last one
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_gpudispatch
	printf '%s\n' "${COMPREPLY[@]}"
}
run_offers=$(complete_words gpudispatch run --)
placement_offers=$(complete_words gpudispatch placement --)
while read -r name run placement; do
	grep -qE -- "--$name([^a-z-]|\$)" <<<"$text" ||
		no "--$name is an option (src/cli/options.c) but not in the man page docs/gpudispatch.1.in"
	if [ "$run" = 1 ]; then
		grep -qx -- "--$name" <<<"$run_offers" ||
			no "--$name (run) is not completed by $comp"
	fi
	if [ "$placement" = 1 ]; then
		grep -qx -- "--$name" <<<"$placement_offers" ||
			no "--$name (placement) is not completed by $comp"
	else
		! grep -qx -- "--$name" <<<"$placement_offers" ||
			no "--$name is not a placement option, but $comp offers it there"
	fi
done <<<"$table"
# the usage text: every subcommand and every --option it names (also those
# of subcommands outside the table, such as results)
usage=$("$cli" --help)
subs=$(sed -nE 's/^ *(usage:)? *gpudispatch ([a-z]+) .*/\2/p' <<<"$usage" | sort -u)
[ -n "$subs" ] || no "no subcommand found in gpudispatch --help"
offered=$(complete_words gpudispatch "")
for sub in $subs; do
	grep -qx "$sub" <<<"$offered" || no "the subcommand $sub is not completed by $comp"
	grep -qE "^\.B gpudispatch $sub\b" "$man" || no "the subcommand $sub is not in the man page's synopsis"
	sub_offers=$(complete_words gpudispatch "$sub" --)
	for o in $(sed -nE "s/^ *(usage:)? *gpudispatch $sub (.*)/\2/p" <<<"$usage" | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
		grep -qx -- "$o" <<<"$sub_offers" || no "$o ($sub, in --help) is not completed by $comp"
	done
done
for o in $(grep -oE -- '--[a-z][a-z-]*' <<<"$usage" | sort -u); do
	grep -qE -- "$o([^a-z-]|\$)" <<<"$text" || no "$o is in gpudispatch --help but not in the man page"
done
[ "$(complete_words gpudispatch run --ui "" | tr '\n' ' ')" = "auto tui text none " ] ||
	no "the completion does not offer --ui's values"

# rendering: no warnings from man/groff, nothing wider than 80 columns
if command -v man >/dev/null; then
	warn=$(MANWIDTH=80 man --warnings -l "$man" 2>&1 >/dev/null)
	[ -z "$warn" ] || no "man --warnings -l $man: $warn"
	wide=$(MANWIDTH=80 man -l "$man" 2>/dev/null | awk 'length > 80')
	[ -z "$wide" ] || no "lines wider than 80 columns in the man page: $wide"
else
	no "man is not installed (scripts/install-deps.sh installs man-db)"
fi
version=$("$cli" --version | awk '{print $2}')
grep -q "^\.TH GPUDISPATCH 1 .*\"gpudispatch $version\"" "$man" ||
	no "the man page does not say version $version"

[ "$fails" = 0 ] && echo "ok: $(echo "$table" | wc -l) options in the man page and the completion"
[ "$fails" = 0 ]
