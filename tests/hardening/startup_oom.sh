#!/usr/bin/env bash
# startup_oom.sh LIB - regression test "a preloaded process dies at load when
# no memory can be mapped, before main" (test-hardening-pending).
#
# With every os_map failing (EBB_FAULT=mmap=1-), a program that allocates
# little or nothing must still run: malloc may return NULL, nothing may exit
# or abort on ebbmalloc's behalf. Found: libebbmalloc.so links libnuma for
# mbind alone, libnuma's constructor allocates bitmasks with malloc at load
# time and calls exit(1) ("Out of memory allocating bitmask") when that
# malloc fails; and ebbmalloc's init traps when its arena array cannot be
# mapped. Fixes: mbind through syscall(SYS_mbind) and no -lnuma; the arenas
# in .bss (see README.md).
set -u
lib=$1
fail=0
for prog in "/bin/true" "/bin/echo ok"; do
	out=$(EBB_FAULT=mmap=1- LD_PRELOAD="$lib" $prog 2>&1)
	rc=$?
	if [ $rc != 0 ]; then
		echo "FAIL: $prog exited $rc with every mmap failing:"
		echo "$out" | grep -v 'fault injection armed' | sed 's/^/  | /'
		fail=1
	fi
done
[ $fail = 0 ] && echo "startup_oom: programs start and exit 0 with no memory to map"
exit $fail
