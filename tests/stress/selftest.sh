#!/usr/bin/env bash
# selftest.sh - the stress programs can fail: each runs with broken_malloc.so
# preloaded and one injected bug (EBB_BROKEN) and must exit non-zero; with
# EBB_BROKEN=none (pass-through to glibc) the same runs must pass. Short runs.
set -u
dir=${1:-build/tests/stress}
shim=$(realpath "$dir/broken_malloc.so") || { echo "FAIL: $dir/broken_malloc.so missing"; exit 1; }
bad=0
expect() {	# expect pass|fail MODE PATTERN CMD...: on fail, PATTERN must be in the output
	local want=$1 mode=$2 pat=$3; shift 3
	local log rc
	log=$(mktemp)
	# in a subshell whose stderr is dropped: bash's own "Aborted" notices
	( env -u STRESS_EXPECT_ALLOCATOR -u EBB_TEST_PRELOAD -u EBB_TEST_RESULTS -u EBB_DECAY_MS EBB_BROKEN=$mode LD_PRELOAD="$shim" STRESS_OPS=30000 \
		STRESS_THREADS=2 CANARY_SECONDS=3 CANARY_THREADS=2 timeout 60 "$@" >"$log" 2>&1 </dev/null; exit $? ) 2>/dev/null
	rc=$?
	if { [ "$want" = pass ] && [ $rc = 0 ]; } || { [ "$want" = fail ] && [ $rc != 0 ] && [ $rc != 124 ] && grep -qE "$pat" "$log"; }; then
		echo "ok   EBB_BROKEN=$mode ${*##*/}: exit $rc (want $want) $(grep -m1 -E "$pat" "$log" | cut -c1-110)"
	else
		echo "FAIL EBB_BROKEN=$mode $*: exit $rc, want $want${pat:+ with /$pat/}"; tail -n 5 "$log"
		bad=$((bad + 1))
	fi
	rm -f "$log"
}
expect pass none '' "$dir/mt_stress"
expect pass none '' "$dir/canary"
expect fail calloc_dirty 'not zero' "$dir/mt_stress"
expect fail realloc_prefix 'of the prefix' "$dir/mt_stress"
expect fail reuse_live 'corrupt' "$dir/mt_stress"
expect fail purge_live 'live block .* corrupt' "$dir/canary"
expect fail errno_huge 'malloc\(V\(SIZE_MAX\)\): errno 0' "$dir/bad_input"
# pass-through judged as ebbmalloc: glibc's misuse messages are not ebbmalloc's
expect fail none 'FAIL free_mmap: stderr line' "$dir/bad_input"
[ $bad = 0 ] && echo "selftest: every injected bug was caught" || echo "selftest: $bad expectations not met"
exit $((bad != 0))
