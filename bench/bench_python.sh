#!/usr/bin/env bash
# bench_python.sh BUILD [TASKS] - the Python worker row (issue 15): TASKS
# (default 200000) task lines on 3 workers, whole wall time of each mpirun
# (start-up included), through
#   py     --worker-cmd "python3 bench/py_identity_worker.py" (the package)
#   cat    --worker-cmd cat (the line protocol, no Python)
#   mpi4py mpi4py.futures MPIPoolExecutor.map, chunksize 1
#   disp   the Python Dispatcher over the C library (issue 20), identity tasks
# and prints the ratios py/mpi4py (target >= 3), disp/mpi4py (target >= 5)
# and py/cat, then the Dispatcher's rank-0 peak RSS for TASKS and for
# GD_BENCH_PY_BIG (default 10000000) tasks of a lazy generator (flat: the
# ratio should stay near 1).  Needs Debian's python3-mpi4py for mpi4py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: bench_python.sh BUILD [TASKS]}
n=${2:-200000}
gd=$build/gpudispatch
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none PYTHONPATH=$root/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seq 1 "$n" | sed 's/^/task-/' >"$tmp/tasks.txt"
wall() { # command... : seconds of wall time
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >"$tmp/out" 2>"$tmp/err" || { echo "bench_python: failed: $*" >&2; tail -5 "$tmp/err" >&2; return 1; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}
py=$(wall mpirun -n 4 "$gd" run --tasks "$tmp/tasks.txt" --ui none --worker-cmd "python3 $root/bench/py_identity_worker.py")
cat_s=$(wall mpirun -n 4 "$gd" run --tasks "$tmp/tasks.txt" --ui none --worker-cmd cat)
printf 'python package  %8.2f s  %9.0f tasks/s\n' "$py" "$(echo "$n / $py" | bc -l)"
printf 'worker-cmd cat  %8.2f s  %9.0f tasks/s\n' "$cat_s" "$(echo "$n / $cat_s" | bc -l)"
if /usr/bin/python3 -c 'import mpi4py' 2>/dev/null; then
	m=$(wall mpirun -n 4 /usr/bin/python3 -m mpi4py.futures "$root/bench/mpi4py_identity.py" "$tmp/tasks.txt")
	printf 'mpi4py c1       %8.2f s  %9.0f tasks/s\n' "$m" "$(echo "$n / $m" | bc -l)"
	printf 'ratio python package / mpi4py.futures c1: %.2f (target >= 3)\n' "$(echo "$m / $py" | bc -l)"
else
	echo "mpi4py: not installed (python3-mpi4py): that ratio is skipped"
fi
printf 'ratio python package / worker-cmd cat: %.2f\n' "$(echo "$cat_s / $py" | bc -l)"

# the Dispatcher: its own line has the rate, rank 0's peak RSS, how far ahead
disp_line() { mpirun -n 4 /usr/bin/python3 "$root/bench/py_dispatcher.py" "$1" 2>/dev/null | grep '^dispatcher'; }
d=$(wall disp_line "$n")
printf 'Dispatcher      %8.2f s  %9.0f tasks/s\n' "$d" "$(echo "$n / $d" | bc -l)"
if [ -n "${m:-}" ]; then
	printf 'ratio Dispatcher / mpi4py.futures c1: %.2f (target >= 5)\n' "$(echo "$m / $d" | bc -l)"
fi
big=${GD_BENCH_PY_BIG:-10000000}
small_rss=$(disp_line "$n" | sed 's/.*rank0_maxrss_kb \([0-9]*\).*/\1/')
big_line=$(disp_line "$big")
big_rss=$(echo "$big_line" | sed 's/.*rank0_maxrss_kb \([0-9]*\).*/\1/')
echo "Dispatcher, $big tasks: $big_line"
printf 'Dispatcher rank 0 peak RSS, %s / %s tasks: %s / %s KiB = %.3f (flat: <= 1.1)\n' \
	"$big" "$n" "$big_rss" "$small_rss" "$(echo "$big_rss / $small_rss" | bc -l)"
