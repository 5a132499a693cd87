#!/usr/bin/env bash
# demo_png.sh MANDELBROT: the demo's PNG is compressed with zlib and its
# picture is the one the former uncompressed encoder wrote.  With one worker
# the image is deterministic (every tile has worker 0's tint), so its pixels'
# SHA-256 is compared with that of the stored-block encoder's output for the
# same render; with three workers the file must still decode.  Decoding is
# done by tests/png_pixels.py (Python's zlib, every CRC checked).
set -euo pipefail
bin=$1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
SRC=$(cd "$(dirname "$0")/.." && pwd)
MPIEXEC=${GD_MPIEXEC:-mpiexec}
MPIEXEC_FLAGS=${GD_MPIEXEC_FLAGS---oversubscribe} # none for MPICH
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gd-png-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
pass=0 fail=0
check() {
	local d=$1
	shift
	if "$@"; then echo "ok   - $d"; pass=$((pass + 1)); else echo "FAIL - $d"; fail=$((fail + 1)); fi
}
# the pixels of `mandelbrot -W 320 -H 240 -t 40 -i 500` with one worker, as
# the uncompressed (stored deflate blocks) encoder wrote them
want=b97076575fb2a54d2434c1cf3933142b49145a422594a6cd547073adb819908f
raw=$((240 * (1 + 320 * 3)))

timeout 120 "$MPIEXEC" -n 2 $MPIEXEC_FLAGS "$bin" -o one.png -W 320 -H 240 -t 40 -i 500 -u none \
	>one.out 2>&1 || { cat one.out; exit 1; }
read -r got size idat _ < <("$PY" "$SRC/tests/png_pixels.py" one.png) || true
check "one worker: a valid 320x240 RGB PNG" [ "${size:-}" = 320x240 ]
check "one worker: the same pixels as the uncompressed encoder's" [ "${got:-}" = "$want" ]
check "one worker: compressed (IDAT ${idat#idat=} bytes of $raw raw)" [ "${idat#idat=}" -lt $((raw / 5)) ]

timeout 120 "$MPIEXEC" -n 4 $MPIEXEC_FLAGS "$bin" -o three.png -W 320 -H 240 -t 40 -i 500 -u none \
	>three.out 2>&1 || { cat three.out; exit 1; }
check "three workers: a valid PNG" "$PY" "$SRC/tests/png_pixels.py" three.png
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
