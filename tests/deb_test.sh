#!/usr/bin/env bash
# deb_test.sh BUILD_DIR: `cpack -G DEB` makes a package that installs and
# runs.  Builds the .deb from the build directory, checks its dependencies
# (from dpkg-shlibdeps: the MPI and hwloc libraries, and the MPI launcher)
# and that this system satisfies each of them, unpacks it into a temporary
# root (dpkg -x: the system stays untouched) and runs the command from there
# through its RUNPATH: --version, and a run on 2 ranks.
# Environment: GD_MPIEXEC (mpirun), GD_MPIEXEC_FLAGS (--oversubscribe).
set -uo pipefail
build=$(cd "${1:?usage: deb_test.sh BUILD_DIR}" && pwd)
MPIEXEC=${GD_MPIEXEC:-mpirun}
MPIEXEC_FLAGS=${GD_MPIEXEC_FLAGS---oversubscribe}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
unset LD_LIBRARY_PATH
tmp=$(mktemp -d /tmp/gd-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
no() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

(cd "$build" && cpack -G DEB -B "$tmp/pkg") >"$tmp/cpack.log" 2>&1 || {
	cat "$tmp/cpack.log"
	echo "FAIL: cpack -G DEB"
	exit 1
}
deb=$(find "$tmp/pkg" -maxdepth 1 -name 'gpudispatch_*.deb' | head -n 1)
[ -n "$deb" ] || {
	echo "FAIL: cpack made no gpudispatch_*.deb"
	exit 1
}
echo "package: $(basename "$deb")"
version=$("$build/gpudispatch" --version | awk '{print $2}')
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || no "the package's version is not $version"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
grep -qE 'libopenmpi[0-9]|libmpich[0-9]' <<<"$depends" || no "Depends names no MPI library"
grep -qE 'libhwloc[0-9]' <<<"$depends" || no "Depends names no hwloc library"
grep -qE '(^|, )(openmpi-bin|mpich)( |,|$)' <<<"$depends" || no "Depends names no MPI launcher"
# every dependency is satisfied here (each is "name" or "name (op version)")
while read -r dep; do
	name=${dep%% *}
	have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null | sed -n 's/^install ok installed //p')
	if [ -z "$have" ]; then
		no "dependency $name is not installed"
	elif [[ $dep == *"("* ]]; then
		cond=${dep#*(}
		cond=${cond%)}
		dpkg --compare-versions "$have" "${cond% *}" "${cond#* }" ||
			no "dependency $dep: $have is installed"
	fi
done < <(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ *$//' | grep .)

root=$tmp/root
dpkg -x "$deb" "$root" || no "dpkg -x"
gd=$root/usr/bin/gpudispatch
[ -x "$gd" ] || no "no usr/bin/gpudispatch in the package"
for f in usr/share/man/man1/gpudispatch.1 usr/share/bash-completion/completions/gpudispatch \
	usr/share/doc/gpudispatch/LICENSE usr/share/doc/gpudispatch/CHANGELOG.md \
	usr/include/gpudispatch.h; do
	[ -s "$root/$f" ] || no "$f is not in the package"
done
ldd "$gd" | grep 'libgpudispatch.so' | grep -q "$root/" ||
	no "the unpacked command does not load the unpacked library: $(ldd "$gd" | grep gpudispatch)"
out=$("$gd" --version) && [ "$out" = "gpudispatch $version" ] || no "gpudispatch --version said '$out'"
printf 'a\nb\nc\nd\n' >"$tmp/tasks.txt"
# shellcheck disable=SC2086
(
	cd "$tmp" &&
		timeout 120 "$MPIEXEC" -n 2 $MPIEXEC_FLAGS "$gd" run --tasks tasks.txt --ui none \
			--results r.jsonl -- test -n {} </dev/null
) >"$tmp/run.log" 2>&1 || no "a 2-rank run of the unpacked command: $(cat "$tmp/run.log")"
[ "$(grep -c '"status":"ok"' "$tmp/r.jsonl" 2>/dev/null)" = 4 ] || no "the 2-rank run did not record 4 ok tasks"

[ "$fails" = 0 ] && echo "ok: the .deb's dependencies hold, its command runs from dpkg -x on 2 ranks"
[ "$fails" = 0 ]
