#!/usr/bin/env bash
# link.sh BUILD - the ways to link ebbmalloc that include/ebbmalloc.h and
# the README document, each built and run: shared (-lebbmalloc), static
# (libebbmalloc.a), beside libc (libebbmalloc-ebb.a, ebb_* only), and the
# fastfree build shared (-lebbmalloc-fastfree), static
# (libebbmalloc-fastfree.a) and beside libc (libebbmalloc-ebb-fastfree.a),
# which must say on EBB_VERBOSE's first line that they are that build (and
# the default ones must not); and loaded with dlopen() (tests/link/dlopen.c),
# both builds, with no tunable set.
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
cc $CF -o "$out/beside-ff" tests/link/prog.c "$B/libebbmalloc-ebb-fastfree.a" -luring -lpthread
cc $CF -o "$out/dlopen" tests/link/dlopen.c -ldl -lpthread
"$out/shared" replaced
"$out/static" replaced
"$out/beside" libc
"$out/shared-ff" replaced
"$out/static-ff" replaced
"$out/beside-ff" libc
for lib in libebbmalloc.so libebbmalloc-fastfree.so; do
	env -u GLIBC_TUNABLES "$out/dlopen" "$(cd "$B" && pwd)/$lib"
done
# the shared links really load our libraries first
ldd "$out/shared" | grep -q "libebbmalloc.so"
ldd "$out/shared-ff" | grep -q "libebbmalloc-fastfree.so"
# which build each one runs: EBB_VERBOSE=1's first line names the fastfree build
first_line() {	# PROG MODE
	EBB_VERBOSE=1 "$out/$1" "$2" 2>&1 >/dev/null | head -n 1
}
for pm in shared:replaced static:replaced beside:libc; do
	case $(first_line "${pm%%:*}" "${pm#*:}") in
	"ebbmalloc: "*"(fastfree build: free does not read the block)"*)
		echo "FAIL: ${pm%%:*} says it is the fastfree build"; exit 1 ;;
	"ebbmalloc: "*) ;;
	*) echo "FAIL: ${pm%%:*} printed no EBB_VERBOSE line"; exit 1 ;;
	esac
done
for pm in shared-ff:replaced static-ff:replaced beside-ff:libc; do
	first_line "${pm%%:*}" "${pm#*:}" | grep -q "^ebbmalloc: .*(fastfree build: free does not read the block)" \
		|| { echo "FAIL: ${pm%%:*} does not say it is the fastfree build"; exit 1; }
done
echo "link: 6 ways built and run (fastfree named by the three fastfree links only), and dlopen() of both builds"
