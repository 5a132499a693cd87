# cli_lib.sh - shared helpers of the end-to-end tests of the `gpudispatch`
# command (sourced by tests/cli_*.sh).  Environment (set by ctest):
#   GD_CLI      the gpudispatch binary       GD_MPIEXEC  mpiexec
#   GD_SOURCE_DIR  the source tree
set -euo pipefail

: "${GD_CLI:?GD_CLI must name the gpudispatch binary}"
MPIEXEC=${GD_MPIEXEC:-mpiexec}
# the launcher's flags after -n N (ctest sets them per MPI: Open MPI's
# --oversubscribe, nothing for MPICH); split into words where used
MPIEXEC_FLAGS=${GD_MPIEXEC_FLAGS---oversubscribe}
SRC=${GD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
HELPER="$SRC/tests/cli_task.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gd-cli-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

pass=0 fail=0
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
ko() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { # description command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else ko "$d"; fi
}
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
}

# gd NP args... : run the command under mpiexec; sets RC, output in out.txt/err.txt
gd() {
	local np=$1
	shift
	RC=0
	timeout 120 "$MPIEXEC" -n "$np" $MPIEXEC_FLAGS "$GD_CLI" "$@" >out.txt 2>err.txt || RC=$?
}

# ids FILE: the ids of the records, sorted
ids() { sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$1" | sort -n | tr '\n' ' ' | sed 's/ $//'; }
# field FILE ID NAME: a field's raw JSON value in the (last) record of ID
field() {
	grep "^{\"id\":$2," "$1" | tail -1 | sed -n "s/.*\"$3\":\(\"\([^\"\\\\]\|\\\\.\)*\"\|[^,}]*\).*/\1/p"
}
# every line of FILE is valid JSON (when python3 is here)
valid_json() {
	if ! command -v python3 >/dev/null; then return 0; fi
	python3 -c 'import json,sys
for n, l in enumerate(open(sys.argv[1], "rb")):
    l.decode("utf-8"); json.loads(l)' "$1"
}
# process PID is gone (a zombie counts as gone: PID 1 may not reap here)
gone() {
	[ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}
