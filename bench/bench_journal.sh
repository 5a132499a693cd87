#!/usr/bin/env bash
# bench_journal.sh [records] [reps]: build bench/bench_journal.c with -O2
# from the core's sources and print the median ns per journal record of
# reps runs (default 1000000 records, 5 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000} reps=${2:-5}
out=build-bench
mkdir -p "$out/include"
version=$(sed -n 's/^project(gpudispatch VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
IFS=. read -r major minor patch <<<"$version"
sed -e "s/@PROJECT_VERSION_MAJOR@/$major/" -e "s/@PROJECT_VERSION_MINOR@/$minor/" \
	-e "s/@PROJECT_VERSION_PATCH@/$patch/" -e "s/@PROJECT_VERSION@/$version/" \
	cmake/gpudispatch_version.h.in >"$out/include/gpudispatch_version.h"
srcs="src/wire.c src/util.c src/errors.c src/journal.c"
[ -f src/jsonw.c ] && srcs="$srcs src/jsonw.c"
[ -f src/jrec.c ] && srcs="$srcs src/jrec.c"
# shellcheck disable=SC2086
cc -O2 -Iinclude -I"$out/include" -Isrc $(pkg-config --cflags ompi-c) -o "$out/bench_journal" \
	bench/bench_journal.c $srcs $(pkg-config --libs ompi-c)
for _ in $(seq "$reps"); do "$out/bench_journal" "$n"; done |
	sed -n 's/.* \([0-9.]*\) ns\/record.*/\1/p' | sort -n |
	awk '{a[NR]=$1} END {printf "journal_add: median %.1f ns/record (min %.1f, max %.1f) over %d runs\n", a[int((NR+1)/2)], a[1], a[NR], NR}'
