#!/usr/bin/env bash
# preload.sh PROG [ARGS...] - run PROG with the allocator under test preloaded.
#
# EBB_TEST_PRELOAD names the library (default build/libebbmalloc.so; any
# other malloc .so such as /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 to
# validate the tests with a known-good allocator; "none" for plain glibc).
# When it is ebbmalloc, EBB_TEST_EXPECT=ebbmalloc makes the test programs fail
# if the preload did not take (instead of silently testing glibc).
set -u
lib=${EBB_TEST_PRELOAD:-build/libebbmalloc.so}
case $lib in
none|glibc|"") unset LD_PRELOAD; exec "$@" ;;
esac
if [ ! -f "$lib" ]; then
	echo "preload.sh: $lib does not exist (run 'make lib' or set EBB_TEST_PRELOAD)"
	exit 1
fi
lib=$(realpath "$lib")
case ${lib##*/} in
libebbmalloc*) export EBB_TEST_EXPECT=ebbmalloc ;;
esac
LD_PRELOAD=$lib exec "$@"
