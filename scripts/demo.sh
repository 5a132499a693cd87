#!/usr/bin/env bash
# demo.sh - see gpudispatch work, from a fresh clone on Debian 12:
#   installs what is missing (scripts/install-deps.sh), configures and builds
#   (build/), then renders a Mandelbrot image tile by tile on 3 workers under
#   mpirun with the dashboard, and says where the image is: each tile is
#   tinted with the colour of the worker that drew it.
# No GPU needed (the workers then run on CPUs).  Works from a terminal (live
# dashboard) and without one (plain progress lines).
#   GD_DEMO_RANKS=N   MPI ranks (default 4: 1 dispatcher + 3 workers)
#   GD_BUILD_DIR=DIR  build directory (default build)
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${GD_BUILD_DIR:-build}
RANKS=${GD_DEMO_RANKS:-4}

echo "== 1/3 dependencies"
scripts/install-deps.sh
echo "== 2/3 build ($BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target mandelbrot gpudispatch-cli

echo "== 3/3 Mandelbrot on $((RANKS - 1)) workers"
if [ "$(id -u)" = 0 ]; then
	# Open MPI refuses to run as root unless told (containers, CI)
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# containers often forbid the cross-memory-attach Open MPI tries first
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
ui=text
if [ -t 1 ] && [ -t 0 ]; then ui=auto; fi # the dashboard when a person watches
image="$PWD/$BUILD/mandelbrot.png"
mpirun --oversubscribe -n "$RANKS" "$BUILD/examples/mandelbrot" -o "$image" -d 60 -u "$ui"
echo
echo "Done. The image: $image"
echo "Next: $BUILD/gpudispatch --help, and docs/cli.md for running your own tasks."
