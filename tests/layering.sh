#!/usr/bin/env bash
# layering.sh SOURCE_DIR CORE_LIB UI_LIB: the one-way architecture holds.
#   - the core library links no ncurses (nor its tinfo);
#   - no core file (src/, but the command's src/cli/) includes a UI header;
#   - no UI file includes a core-internal header: the UI sees the core only
#     through the public gpudispatch.h;
#   - the UI library depends on the core library, not the other way round.
set -euo pipefail
src=$1 core=$2 ui=$3
bad=0
fail() {
	echo "layering: $*"
	bad=1
}
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

if needed "$core" | grep -Eq 'ncurses|tinfo'; then
	fail "$(basename "$core") links ncurses: $(needed "$core" | tr '\n' ' ')"
fi
if needed "$core" | grep -q gpudispatch_ui; then
	fail "the core library depends on the UI library"
fi
needed "$ui" | grep -q '^libgpudispatch\.so' || fail "the UI library does not link the core library"

ui_headers=$(cd "$src/ui" && ls ./*.h | sed 's|^\./||')
for f in "$src"/src/*.c "$src"/src/*.h; do
	for h in $ui_headers gpudispatch_ui.h; do
		if grep -q "#include [\"<]$h[\">]" "$f"; then
			fail "${f#"$src"/} includes the UI header $h"
		fi
	done
done
core_headers=$(cd "$src/src" && ls ./*.h | sed 's|^\./||')
for f in "$src"/ui/*.c "$src"/ui/*.h; do
	for h in $core_headers; do
		if grep -q "#include [\"<]$h[\">]" "$f"; then
			fail "${f#"$src"/} includes the core-internal header $h"
		fi
	done
done
[ $bad = 0 ] && echo "layering: core -> (nothing of the UI); UI -> core's public API only"
exit $bad
