#!/usr/bin/env bash
# preload.sh PROG [ARGS...] - run PROG with the allocator under test preloaded.
#
# EBB_TEST_PRELOAD names the library (default build/libebbmalloc.so; any
# other malloc .so such as /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 to
# validate the tests with a known-good allocator; "none" for plain glibc).
# When it is ebbmalloc, STRESS_EXPECT_ALLOCATOR=ebbmalloc makes the test programs fail
# if the preload did not take (instead of silently testing glibc).
# The harness's own EBB_TEST_* variables are not ebbmalloc options: they are
# removed so the library never sees them.
set -u
lib=${EBB_TEST_PRELOAD:-build/libebbmalloc.so}
unset EBB_TEST_PRELOAD EBB_TEST_RESULTS
case $lib in
none|glibc|"") unset LD_PRELOAD; exec "$@" ;;
esac
if [ ! -f "$lib" ]; then
	echo "preload.sh: $lib does not exist (run 'make lib' or set EBB_TEST_PRELOAD)"
	exit 1
fi
lib=$(realpath "$lib")
case ${lib##*/} in
libebbmalloc*) export STRESS_EXPECT_ALLOCATOR=ebbmalloc ;;
esac
LD_PRELOAD=$lib exec "$@"
