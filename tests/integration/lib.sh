# tests/integration/lib.sh - shared by the integration scripts (sourced).
#
# A scenario is a shell function that runs real programs in the current
# directory and prints a deterministic digest of what they produced on
# stdout. run_both runs it twice, in two fresh directories: once on plain
# glibc (the reference) and once with the allocator under test preloaded
# into every process the scenario starts (LD_PRELOAD exported), then
# requires: both exit 0, identical stdout, and no allocator or loader
# complaint on the preloaded run's stderr.
#
# EBB_TEST_PRELOAD picks the library (default build/libebbmalloc.so; another
# malloc .so validates the harness; "none" compares glibc with itself).
# Exit codes: 0 pass, 1 fail, 77 skip (say why on the last line).
set -u

INTEG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
INTEG_SRC=$INTEG_ROOT/tests/integration
INTEG_BUILD=${INTEG_BUILD:-$INTEG_ROOT/build/tests/integration}
PRELOAD=${EBB_TEST_PRELOAD:-$INTEG_ROOT/build/libebbmalloc.so}
# the harness's EBB_TEST_* variables are not ebbmalloc options: the programs
# under test never see them
unset EBB_TEST_PRELOAD EBB_TEST_RESULTS

fail() {
	echo "FAIL: $*"
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# need PROG...: every program must be installed (make installs them as root)
need() {
	local p
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || fail "$p is not installed (make test-integration installs it when run as root)"
	done
}

# The preload itself: the file exists, the loader takes it, it is mapped.
check_preload() {
	case $PRELOAD in
	none|glibc|"") PRELOAD=""; echo "note: EBB_TEST_PRELOAD=none: comparing glibc with itself"; return 0 ;;
	esac
	[ -f "$PRELOAD" ] || fail "$PRELOAD does not exist (run 'make lib' or set EBB_TEST_PRELOAD)"
	PRELOAD=$(realpath "$PRELOAD")
	local maps err
	err=$(mktemp)
	maps=$(LD_PRELOAD=$PRELOAD cat /proc/self/maps 2>"$err")
	if [ -s "$err" ]; then
		cat "$err"; rm -f "$err"
		fail "preloading $PRELOAD printed errors"
	fi
	rm -f "$err"
	grep -qF "$PRELOAD" <<<"$maps" || fail "$PRELOAD is not mapped into a preloaded process"
}

# workdir NAME: a fresh directory for this test under build/
workdir() {
	WORK=$INTEG_BUILD/$1
	rm -rf "$WORK"
	mkdir -p "$WORK"
}

# Lines on a preloaded run's stderr that mean the allocator or the loader
# complained (the scenario's own programs may print progress there).
bad_stderr() {
	grep -E '^ebbmalloc:|ebbmalloc: |ld\.so|cannot be preloaded|malloc\(\)|free\(\)|double free|corrupted|Segmentation|Aborted' "$1"
}

# run_both NAME FUNC [MIN_LINES]: see the header.
run_both() {
	local name=$1 fn=$2 min=${3:-1} rc_g rc_e
	check_preload
	workdir "$name"
	mkdir -p "$WORK/glibc" "$WORK/preload"
	( cd "$WORK/glibc" && unset LD_PRELOAD && "$fn" ) >"$WORK/glibc.out" 2>"$WORK/glibc.err"
	rc_g=$?
	if [ -n "$PRELOAD" ]; then
		( cd "$WORK/preload" && export LD_PRELOAD=$PRELOAD && "$fn" ) >"$WORK/preload.out" 2>"$WORK/preload.err"
	else
		( cd "$WORK/preload" && unset LD_PRELOAD && "$fn" ) >"$WORK/preload.out" 2>"$WORK/preload.err"
	fi
	rc_e=$?
	if [ $rc_g != 0 ]; then
		tail -n 20 "$WORK/glibc.err"
		fail "$name: the reference run on plain glibc exited $rc_g (the scenario itself is broken)"
	fi
	if [ $rc_e != 0 ]; then
		echo "--- stderr of the preloaded run (last 30 lines):"; tail -n 30 "$WORK/preload.err"
		fail "$name: exited $rc_e under LD_PRELOAD=$PRELOAD (glibc: 0)"
	fi
	if bad_stderr "$WORK/preload.err" >/dev/null; then
		bad_stderr "$WORK/preload.err" | head -n 10
		fail "$name: the preloaded run complained on stderr"
	fi
	local n
	n=$(wc -l <"$WORK/glibc.out")
	[ "$n" -ge "$min" ] || fail "$name: the reference output has $n lines, expected at least $min (scenario printed nothing useful)"
	if ! cmp -s "$WORK/glibc.out" "$WORK/preload.out"; then
		echo "--- diff glibc preloaded (first 30 lines):"
		diff "$WORK/glibc.out" "$WORK/preload.out" | head -n 30
		fail "$name: output under LD_PRELOAD=$PRELOAD differs from glibc's"
	fi
	echo "$name: identical output under glibc and ${PRELOAD:-glibc} ($n lines, sha256 $(sha256sum <"$WORK/glibc.out" | cut -c1-16))"
	sed 's/^/  | /' "$WORK/glibc.out" | head -n 8
}
