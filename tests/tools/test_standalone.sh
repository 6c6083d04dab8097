#!/usr/bin/env bash
# test_standalone.sh - the tools never link the allocator (DESIGN: tools/
# "must not link the allocator into themselves by accident"): no
# libebbmalloc in their dynamic dependencies, no malloc or ebb_* symbol
# defined in them, so they run on libc's malloc whatever they inspect.
. "$(dirname "$0")/lib.sh"

for t in "$EBBRUN" "$EBBSTAT" "$DOCTOR" "$RSSWATCH"; do
	n=$(basename "$t")
	[ -x "$t" ] || { fail "$n not built"; continue; }
	ldd "$t" | grep -q ebbmalloc && fail "$n links libebbmalloc: $(ldd "$t" | grep ebbmalloc)" || ok "$n: no libebbmalloc dependency"
	syms=$(nm "$t" 2>/dev/null | awk '$2 ~ /^[TtWw]$/ && ($3 ~ /^ebb_/ || $3 == "malloc" || $3 == "free")')
	[ -z "$syms" ] && ok "$n: defines no malloc/free/ebb_* symbol" || fail "$n defines: $syms"
	"$t" --help > /dev/null && ok "$n --help" || fail "$n --help"
done
finish
