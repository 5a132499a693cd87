#!/usr/bin/env bash
# abi_symbols.sh INCLUDE_DIR LIB...: every symbol a shared library exports is
# a gd_* function declared GD_EXPORT in a public header, and every one so
# declared is exported: nothing internal (gd__*, a static helper, ncurses)
# becomes part of the ABI by accident, and nothing promised is missing.
set -euo pipefail
inc=$1
shift
declared=$(grep -ho 'GD_EXPORT [^(]*\bgd_[a-z0-9_]*(' "$inc"/*.h |
	grep -o 'gd_[a-z0-9_]*($' | tr -d '(' | sort -u)
exported=$(for lib in "$@"; do
	nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}'
done | grep -v '^_' | sort -u)
bad=0
extra=$(comm -13 <(echo "$declared") <(echo "$exported") || true)
missing=$(comm -23 <(echo "$declared") <(echo "$exported") || true)
if [ -n "$extra" ]; then
	echo "exported but not declared GD_EXPORT in $inc:" $extra
	bad=1
fi
if [ -n "$missing" ]; then
	echo "declared GD_EXPORT but not exported:" $missing
	bad=1
fi
echo "$(echo "$exported" | wc -l) symbols exported, all gd_* and declared"
exit $bad
