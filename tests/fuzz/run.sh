#!/usr/bin/env bash
# Build the libFuzzer targets with clang (ASan + UBSan) and run each for a
# bounded time on its corpus in tests/fuzz/corpus/.  New inputs go to a
# scratch directory, so the committed corpus only changes by hand.
#   run.sh [seconds per target, default 20]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
out=build-fuzz
mkdir -p "$out"
# the version header CMake writes, from project()'s version (the one source)
version=$(sed -n 's/^project(gpudispatch VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
mkdir -p "$out/include"
IFS=. read -r major minor patch <<<"$version"
sed -e "s/@PROJECT_VERSION_MAJOR@/$major/" -e "s/@PROJECT_VERSION_MINOR@/$minor/" \
	-e "s/@PROJECT_VERSION_PATCH@/$patch/" -e "s/@PROJECT_VERSION@/$version/" \
	cmake/gpudispatch_version.h.in >"$out/include/gpudispatch_version.h"
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -I$out/include -Isrc -Iui $(pkg-config --cflags ompi-c)"
common="src/wire.c src/util.c src/errors.c src/journal.c src/jrec.c src/jsonw.c $(pkg-config --libs ompi-c)"
# the JSON writer's target checks its output with the command's JSON reader
cli="src/cli/json.c src/cli/buf.c -lm"
for t in wire journal jsonw; do
	extra=
	[ "$t" = jsonw ] && extra=$cli
	# shellcheck disable=SC2086
	clang $cflags -o "$out/fuzz_$t" "tests/fuzz/fuzz_$t.c" $common $extra
	mkdir -p "$out/new_$t"
	set +e
	"$out/fuzz_$t" -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix="$out/crash_$t-" "$out/new_$t" "tests/fuzz/corpus/$t" >"$out/fuzz_$t.log" 2>&1
	st=$?
	set -e
	grep -E "stat::number_of_executed_units|ERROR|SUMMARY" "$out/fuzz_$t.log" || true
	if [ "$st" != 0 ]; then
		tail -40 "$out/fuzz_$t.log"
		echo "fuzz_$t: FAILED (artifacts in $out/)"
		exit 1
	fi
	echo "fuzz_$t: ${secs}s, no failure"
done
