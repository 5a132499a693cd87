#!/usr/bin/env bash
# test.sh - the whole test suite, from a fresh Debian 12 machine:
#   installs what is missing, builds with -Werror, runs every ctest test
#   (CUnit unit tests, MPI tests through mpiexec), installs into a prefix
#   that is then moved and builds CMake and pkg-config projects against it,
#   makes the .deb and runs the command from it, builds with MPICH and runs
#   the MPI tests under its mpiexec, re-runs the unit tests and core MPI
#   tests under AddressSanitizer + UBSan, runs the fuzz targets for a bounded
#   time, runs the Python package's tests (pytest), and runs the Slurm batch
#   scripts on a local one-node Slurm, and runs the command across three
#   namespaced TCP nodes (tests/multinode.sh: a killed node, a cut link).
# Environment:
#   GD_TEST_QUICK=1   skip the MPICH, sanitizer, fuzz and Slurm stages
#   GD_FUZZ_SECONDS   seconds per fuzz target [20]
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none

pass=0 fail=0 failed=()
stage() { # name command...
	local name=$1 t0=$SECONDS
	shift
	echo "=== $name"
	if "$@"; then
		pass=$((pass + 1))
		echo "=== $name: ok ($((SECONDS - t0)) s)"
	else
		fail=$((fail + 1))
		failed+=("$name")
		echo "=== $name: FAILED ($((SECONDS - t0)) s)"
	fi
}

GD_DEPS_EXTRA="clang ${GD_DEPS_EXTRA:-}" bash scripts/install-deps.sh || { echo "cannot install dependencies"; exit 1; }

build_main() {
	mkdir -p build && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGD_WERROR=ON >build/configure.log &&
		cmake --build build -j"$JOBS"
}
run_ctest() {
	(cd build && ctest --output-on-failure -j"$JOBS" --timeout 300)
}
consumer() {
	# install, move the prefix, build examples/find_package (CMake) and
	# examples/pkg-config (make + mpicc + pkg-config) against it, run both
	# and the moved command under mpirun, with no LD_LIBRARY_PATH
	bash tests/install_test.sh build
}
deb_package() {
	# cpack -G DEB: its dependencies, and its command run from dpkg -x
	bash tests/deb_test.sh build
}
mpich() {
	# The library, the command and the tests built with MPICH (Debian's
	# mpich, as on Cray systems) in their own build directory, the MPI tests
	# under MPICH's mpiexec (hydra, which takes no --oversubscribe), then the
	# install test with mpicc.mpich.  Open MPI stays the default mpicc/mpirun
	# (update-alternatives: priority 50 against MPICH's 40).
	# core_enomem_start is left out: it caps rank 0's address space
	# (RLIMIT_AS) to make gd_run() fail for memory, and under MPICH that cap
	# also starves UCX's shared-memory transport (shmat fails), rank 0's
	# MPI_Bcast fails and the other ranks wait in a collective for ever.
	command -v mpicc.mpich >/dev/null && command -v mpiexec.mpich >/dev/null || return 1
	mkdir -p build-mpich && cmake -S . -B build-mpich -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGD_WERROR=ON \
		-DGD_BUILD_BENCH=OFF -DMPI_C_COMPILER="$(command -v mpicc.mpich)" \
		-DMPIEXEC_EXECUTABLE="$(command -v mpiexec.mpich)" >build-mpich/configure.log &&
		grep -q 'libmpich' build-mpich/CMakeCache.txt &&
		cmake --build build-mpich -j"$JOBS" &&
		(cd build-mpich && ctest --output-on-failure -j"$JOBS" --timeout 150 -L mpi -E '^core_enomem_start$') &&
		GD_MPIEXEC=mpiexec.mpich GD_MPIEXEC_FLAGS= GD_MPICC=mpicc.mpich bash tests/install_test.sh build-mpich
}
sanitizers() (
	# LeakSanitizer must see whole stacks to match tests/lsan.supp against
	# Open MPI's own allocations: slow unwinding, and Open MPI keeps its
	# components loaded (a dlclose()d module has no name to match).
	export OMPI_MCA_mca_base_component_disable_dlclose=1
	export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0
	export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	mkdir -p build-asan && cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGD_SANITIZE=ON -DGD_BUILD_BENCH=OFF \
		>build-asan/configure.log &&
		cmake --build build-asan -j"$JOBS" &&
		(cd build-asan &&
			ctest --output-on-failure -j"$JOBS" --timeout 300 -L unit &&
			ctest --output-on-failure -j"$JOBS" --timeout 300 \
				-R '^(core_(basic_np3|faults|big|big_abort|big_mpi|big_path|big_path_inline|big_retry|lazy_crash|retry|stop|setup_fail_one|inline|journal_kill_resume|empty|stdio_flush|spread_end)|mpi_placement_2s8gpu_9|cli_run|cli_framed|cli_python|ui_thread_nice)$')
)
fuzz() {
	bash tests/fuzz/run.sh "${GD_FUZZ_SECONDS:-20}"
}
slurm() {
	local r=0
	bash tests/slurm_test.sh || r=1
	bash tests/slurm_campaign.sh || r=1
	return $r
}
multinode() {
	# three TCP "nodes" in network namespaces (root); exit 77 = skipped, loudly
	GD_CLI=$ROOT/build/gpudispatch bash tests/multinode.sh
	local rc=$?
	[ "$rc" = 77 ] && { echo "=== multinode: SKIPPED (see above)"; return 0; }
	return "$rc"
}
python_package() {
	# the Python worker package against a fake driver (no MPI), with
	# Debian's python3 and pytest
	PYTHONPATH=$ROOT/python /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
}

stage build build_main
if [ -d build ] && [ -f build/CTestTestfile.cmake ]; then
	stage ctest run_ctest
	stage install consumer
	stage deb deb_package
fi
stage python python_package
if [ "${GD_TEST_QUICK:-0}" != 1 ]; then
	stage mpich mpich
	stage asan-ubsan sanitizers
	[ -f tests/fuzz/run.sh ] && stage fuzz fuzz
	[ -f tests/slurm_test.sh ] && stage slurm slurm
	stage multinode multinode
fi

echo
[ ${#failed[@]} -gt 0 ] && echo "failed stages: ${failed[*]}"
echo "stages: $pass passed, $fail failed"
[ "$fail" = 0 ]
