#!/usr/bin/env bash
# link.sh BUILD - the three ways to link ebbmalloc that include/ebbmalloc.h
# documents, each built and run: shared (-lebbmalloc), static
# (libebbmalloc.a) and beside libc (libebbmalloc-ebb.a, ebb_* only).
set -eu
B=$1
out=$B/tests/link
mkdir -p "$out"
CF="-std=c11 -D_GNU_SOURCE -O1 -Iinclude"
cc $CF -o "$out/shared" tests/link/prog.c -L"$B" -lebbmalloc -Wl,-rpath,"$(cd "$B" && pwd)"
cc $CF -o "$out/static" tests/link/prog.c "$B/libebbmalloc.a" -luring -lpthread
cc $CF -o "$out/beside" tests/link/prog.c "$B/libebbmalloc-ebb.a" -luring -lpthread
"$out/shared" replaced
"$out/static" replaced
"$out/beside" libc
# the shared link really loads our library first
ldd "$out/shared" | grep -q "libebbmalloc.so"
