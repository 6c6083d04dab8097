# tests/reclaim/lib.sh - sourced by the reclaim test scripts.
# RECLAIM_BIN: where reclaim.mk put the test programs (default
# build/tests/reclaim); RECLAIM_LIB: the library under test (default
# build/libebbmalloc.so, made absolute). These tests check ebbmalloc's own
# properties (they read its stats), so no other allocator can stand in.
RECLAIM_BIN=${RECLAIM_BIN:-build/tests/reclaim}
RECLAIM_LIB=${RECLAIM_LIB:-build/libebbmalloc.so}
if [ ! -f "$RECLAIM_LIB" ]; then
	echo "reclaim: $RECLAIM_LIB does not exist (run 'make lib')"
	exit 1
fi
RECLAIM_LIB=$(realpath "$RECLAIM_LIB")
RT_TMP=$(mktemp -d /tmp/ebb-reclaim.XXXXXX)
trap 'rm -rf "$RT_TMP"' EXIT
