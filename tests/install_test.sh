#!/usr/bin/env bash
# install_test.sh BUILD_DIR: the installed tree is relocatable.  Installs the
# build into a temporary prefix, MOVES the prefix elsewhere, then, without
# LD_LIBRARY_PATH:
#   - no installed file names the first prefix;
#   - examples/find_package builds with CMake (find_package(gpudispatch)),
#     and examples/pkg-config with make, mpicc and pkg-config;
#   - both consumers' programs run under mpiexec (the core-only one loads no
#     ncurses);
#   - the moved gpudispatch command runs a job, and its man page and bash
#     completion work from the moved tree.
# Environment: GD_MPIEXEC (mpirun), GD_MPIEXEC_FLAGS (--oversubscribe; empty
# for MPICH), GD_MPICC (mpicc), GD_KEEP=1 keeps the temporary directory.
set -uo pipefail
build=$(cd "${1:?usage: install_test.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
MPIEXEC=${GD_MPIEXEC:-mpirun}
MPIEXEC_FLAGS=${GD_MPIEXEC_FLAGS---oversubscribe}
MPICC=${GD_MPICC:-mpicc}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
unset LD_LIBRARY_PATH PKG_CONFIG_PATH
tmp=$(mktemp -d /tmp/gd-install.XXXXXX)
[ "${GD_KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
fails=0
step() { # description command...
	local what=$1
	shift
	if "$@" >"$tmp/step.log" 2>&1; then
		echo "ok: $what"
	else
		echo "FAIL: $what"
		sed 's/^/    /' "$tmp/step.log" | tail -n 40
		fails=$((fails + 1))
	fi
}
mpi() { # NP program args...: under the launcher, two minutes at most
	local np=$1
	shift
	# shellcheck disable=SC2086
	timeout 120 "$MPIEXEC" -n "$np" $MPIEXEC_FLAGS "$@" </dev/null
}

first=$tmp/first-prefix
moved=$tmp/elsewhere/gd
step "install into $first" cmake --install "$build" --prefix "$first"
mkdir -p "$tmp/elsewhere" && mv "$first" "$moved" || exit 1
libdir=$(dirname "$(find "$moved" -name 'libgpudispatch.so' | head -n 1)")
[ -d "$libdir" ] || {
	echo "FAIL: no libgpudispatch.so installed"
	exit 1
}
export PKG_CONFIG_PATH=$libdir/pkgconfig

step "no installed file names the first prefix" bash -c "! grep -rl -- '$first' '$moved'"
step "RUNPATH of the command is \$ORIGIN-relative" bash -c \
	"readelf -d '$moved/bin/gpudispatch' | grep -E 'RUNPATH.*\\\$ORIGIN/'"
step "pkg-config finds the moved prefix" bash -c \
	"pkg-config --cflags gpudispatch | grep -q -- '-I$moved/' &&
	 pkg-config --libs gpudispatch_ui | grep -q -- '-L$moved/'"
step "the .pc files require no MPI package" bash -c \
	"! grep -iE '^Requires.*(ompi|mpich|mpi)' '$libdir'/pkgconfig/*.pc"

# ---------------------------------------------------------------- CMake
cm=$tmp/cmake-consumer
step "examples/find_package configures against the moved prefix" \
	cmake -S "$src/examples/find_package" -B "$cm" -DCMAKE_PREFIX_PATH="$moved" \
	-DMPI_C_COMPILER="$(command -v "$MPICC")"
step "examples/find_package builds" cmake --build "$cm"
step "CMake consumer: hello under mpiexec -n 3" bash -c \
	"$(declare -f mpi); MPIEXEC='$MPIEXEC' MPIEXEC_FLAGS='$MPIEXEC_FLAGS';
	 mpi 3 '$cm/hello_consumer' 50 | tee '$cm/out.txt' && grep -q 'sum of squares 42925 (correct)' '$cm/out.txt'"
step "CMake consumer: the core alone loads no ncurses" bash -c "! ldd '$cm/hello_consumer' | grep ncurses"
step "CMake consumer: the UI library under mpiexec -n 3" bash -c \
	"$(declare -f mpi); MPIEXEC='$MPIEXEC' MPIEXEC_FLAGS='$MPIEXEC_FLAGS';
	 mpi 3 '$cm/ui_consumer' 40 '$cm/r.csv' >'$cm/ui.txt' && cat '$cm/ui.txt' &&
	 grep -q '^rc=0 ' '$cm/ui.txt' && grep -q '40 run, 40 succeeded' '$cm/ui.txt'"

# a project that finds another MPI than the library's is refused, with why
case $(ldd "$libdir/libgpudispatch.so") in
*libmpich*) other=mpicc.openmpi ;;
*) other=mpicc.mpich ;;
esac
if command -v "$other" >/dev/null; then
	step "find_package refuses a project that found another MPI ($other)" bash -c \
		"! cmake -S '$src/examples/find_package' -B '$tmp/other-mpi' -DCMAKE_PREFIX_PATH='$moved' \
		   -DMPI_C_COMPILER='$(command -v "$other")' >'$tmp/other.log' 2>&1 &&
		 grep -A3 'gpudispatch was built with' '$tmp/other.log'"
fi

# ---------------------------------------------------------------- pkg-config
pc=$tmp/pkg-config-consumer
mkdir -p "$pc"
step "examples/pkg-config builds with $MPICC and pkg-config" \
	make -C "$pc" -f "$src/examples/pkg-config/Makefile" MPICC="$MPICC"
step "pkg-config consumer: hello under mpiexec -n 3" bash -c \
	"$(declare -f mpi); MPIEXEC='$MPIEXEC' MPIEXEC_FLAGS='$MPIEXEC_FLAGS';
	 mpi 3 '$pc/hello_pc' 50 | tee '$pc/out.txt' && grep -q 'sum of squares 42925 (correct)' '$pc/out.txt'"
step "pkg-config consumer: the UI library under mpiexec -n 3" bash -c \
	"$(declare -f mpi); MPIEXEC='$MPIEXEC' MPIEXEC_FLAGS='$MPIEXEC_FLAGS';
	 mpi 3 '$pc/ui_pc' 40 '$pc/r.csv' >'$pc/ui.txt' && grep -q '^rc=0 ' '$pc/ui.txt'"

# both consumers use the MPI the library was built with
mpilib() { ldd "$1" | grep -oE 'libmpi(ch)?\.so[.0-9]*' | sort -u; }
want=$(mpilib "$libdir/libgpudispatch.so")
step "the consumers link the library's MPI ($want)" bash -c \
	"[ -n '$want' ] && [ \"\$(ldd '$cm/hello_consumer' | grep -oE 'libmpi(ch)?\.so[.0-9]*' | sort -u)\" = '$want' ] &&
	 [ \"\$(ldd '$pc/hello_pc' | grep -oE 'libmpi(ch)?\.so[.0-9]*' | sort -u)\" = '$want' ]"

# ---------------------------------------------------------------- the command
gd=$moved/bin/gpudispatch
step "the moved command: --version" bash -c "'$gd' --version | grep -q '^gpudispatch [0-9]'"
step "the moved command: libraries from the moved tree" bash -c \
	"ldd '$gd' | grep 'libgpudispatch.so' | grep -q '$moved/'"
seq 1 20 >"$tmp/tasks.txt"
step "the moved command: a run on 3 ranks" bash -c \
	"$(declare -f mpi); MPIEXEC='$MPIEXEC' MPIEXEC_FLAGS='$MPIEXEC_FLAGS';
	 cd '$tmp' && mpi 3 '$gd' run --tasks tasks.txt --ui none --results r.jsonl -- test -n {} &&
	 [ \"\$(grep -c '\"status\":\"ok\"' r.jsonl)\" = 20 ]"
man1=$(find "$moved" -name gpudispatch.1 | head -n 1)
step "the installed man page renders without warnings" bash -c \
	"[ -n '$man1' ] && w=\$(MANWIDTH=80 man --warnings -l '$man1' 2>&1 >/dev/null) && [ -z \"\$w\" ]"
step "the installed bash completion completes the subcommands" bash -c \
	"source '$moved/share/bash-completion/completions/gpudispatch' &&
	 COMP_WORDS=(gpudispatch pl) COMP_CWORD=1 && _gpudispatch && [ \"\${COMPREPLY[*]}\" = placement ]"
step "the licence, changelog and docs are installed" bash -c \
	"d='$moved/share/doc/gpudispatch'; [ -s \$d/LICENSE ] && [ -s \$d/CHANGELOG.md ] && [ -s \$d/README.md ] &&
	 [ -s \$d/docs/cli.md ]"

echo "install test: $fails failed"
[ "$fails" = 0 ]
