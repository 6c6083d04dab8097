#!/usr/bin/env bash
# link.sh BUILD - the ways to link ebbmalloc that include/ebbmalloc.h and
# the README document, each built and run: shared (-lebbmalloc), static
# (libebbmalloc.a), beside libc (libebbmalloc-ebb.a, ebb_* only), and the
# fastfree build shared (-lebbmalloc-fastfree) and static
# (libebbmalloc-fastfree.a), which must say on EBB_VERBOSE's first line
# that they are that build (and the default ones must not).
set -eu
B=$1
out=$B/tests/link
mkdir -p "$out"
CF="-std=c11 -D_GNU_SOURCE -O1 -Iinclude"
cc $CF -o "$out/shared" tests/link/prog.c -L"$B" -lebbmalloc -Wl,-rpath,"$(cd "$B" && pwd)"
cc $CF -o "$out/static" tests/link/prog.c "$B/libebbmalloc.a" -luring -lpthread
cc $CF -o "$out/beside" tests/link/prog.c "$B/libebbmalloc-ebb.a" -luring -lpthread
cc $CF -o "$out/shared-ff" tests/link/prog.c -L"$B" -lebbmalloc-fastfree -Wl,-rpath,"$(cd "$B" && pwd)"
cc $CF -o "$out/static-ff" tests/link/prog.c "$B/libebbmalloc-fastfree.a" -luring -lpthread
"$out/shared" replaced
"$out/static" replaced
"$out/beside" libc
"$out/shared-ff" replaced
"$out/static-ff" replaced
# the shared links really load our libraries first
ldd "$out/shared" | grep -q "libebbmalloc.so"
ldd "$out/shared-ff" | grep -q "libebbmalloc-fastfree.so"
# which build each one runs: EBB_VERBOSE=1's first line names the fastfree build
ff_says() {
	EBB_VERBOSE=1 "$1" replaced 2>&1 >/dev/null | head -n 1 | grep -q "(fastfree build: free does not read the block)"
}
for p in shared static; do
	if ff_says "$out/$p"; then echo "FAIL: $p says it is the fastfree build"; exit 1; fi
	EBB_VERBOSE=1 "$out/$p" replaced 2>&1 >/dev/null | head -n 1 | grep -q "^ebbmalloc: " \
		|| { echo "FAIL: $p printed no EBB_VERBOSE line"; exit 1; }
done
for p in shared-ff static-ff; do
	ff_says "$out/$p" || { echo "FAIL: $p does not say it is the fastfree build"; exit 1; }
done
echo "link: 5 ways built and run (fastfree named by the two fastfree links only)"
