#!/usr/bin/env bash
# bench.sh - build and run the benchmark suite of issue 7 (docs/bench.md).
#
#   scripts/bench.sh [--quick] [--reps N] [--no-deps] [--only NAME,...] [--no-extras]
#
# Builds a Release tree in build-bench/, installs Debian's python3-mpi4py and
# GNU parallel when missing (unless --no-deps; needs root or sudo), then runs
# every benchmark several times, interleaved, and prints a table of medians
# (min - max), the ratios behind each bar and PASS/MISS.  The same goes to
# build-bench/bench.json.  Exit status: 0 unless something crashed (a missed
# bar is not a failure).  GD_BENCH_REPS sets the repetitions (default 5, 3
# with --quick).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${GD_BENCH_BUILD:-build-bench}
deps=1
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--no-deps) deps=0 ;;
	--reps) args+=(--reps "$2"); shift ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) args+=("$1") ;;
	esac
	shift
done

if [ "$deps" = 1 ]; then
	GD_DEPS_EXTRA="python3-mpi4py parallel valgrind bc" scripts/install-deps.sh ||
		echo "bench: could not install the optional tools; their rows are skipped" >&2
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_dispatch raw_echo textbook usleep_cost >/dev/null
# the command (the CLI helper's) and the dashboard helper's bench: their rows
# are skipped when they do not build
cmake --build "$build" -j"$(nproc)" --target gpudispatch-cli >/dev/null 2>&1 ||
	echo "bench: the gpudispatch command did not build; its row is skipped" >&2
if grep -q bench_dashboard bench/ui.cmake 2>/dev/null; then
	cmake --build "$build" -j"$(nproc)" --target bench_dashboard >/dev/null 2>&1 ||
		echo "bench: bench_dashboard did not build; its row is skipped" >&2
fi

# mpirun as root, oversubscribed ranks, no CMA (it fails in containers)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
py=python3
command -v "$py" >/dev/null || py=/usr/bin/python3
"$py" bench/run_bench.py --build "$build" --json "$build/bench.json" ${args[@]+"${args[@]}"}
# the Python worker row (issue 15): the package against mpi4py.futures and cat
if [ -x "$build/gpudispatch" ]; then
	echo
	echo "== Python worker package, 3 workers, 200000 tasks, wall time with start-up"
	bash bench/bench_python.sh "$build" 200000 || echo "bench: the Python row failed" >&2
fi
# the status-file row (issue 17): RESULTS.status and the grouped failure
# reasons against none, in the command's fastest mode
if [ -x "$build/gpudispatch" ]; then
	echo
	echo "== status file and failure reasons, --worker-cmd, 3 workers, 200000 tasks"
	bash bench/bench_status.sh "$build" 200000 3 || echo "bench: the status row failed" >&2
fi
