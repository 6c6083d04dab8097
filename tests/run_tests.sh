#!/usr/bin/env bash
# run_tests.sh SUITE TIMEOUT_S CMD... - run each CMD (a test executable or
# script, quoted if it has arguments) under a timeout, liburing-style exit
# codes: 0 pass, 77 skip, anything else (or a timeout) fail. Output of a
# failing test is shown; results go to $EBB_TEST_RESULTS/SUITE (one line per
# test: pass|fail|skip NAME) for the summary that `make test` prints last.
set -u
suite=$1; tmo=$2; shift 2
out=${EBB_TEST_RESULTS:-build/test-results/manual}
mkdir -p "$out"
res="$out/$suite"
: > "$res"
pass=0; fail=0; skip=0
for t in "$@"; do
	log=$(mktemp)
	start=$SECONDS
	timeout --kill-after=10 "$tmo" bash -c "$t" >"$log" 2>&1
	rc=$?
	case $rc in
	0)  pass=$((pass+1)); echo "pass $t" >> "$res"; printf '  PASS  %-60s %3ss\n' "$t" $((SECONDS-start)) ;;
	77) skip=$((skip+1)); echo "skip $t" >> "$res"; printf '  SKIP  %-60s (%s)\n' "$t" "$(tail -n1 "$log")" ;;
	*)  fail=$((fail+1)); echo "fail $t" >> "$res"
	    [ $rc = 124 ] && why="timeout after ${tmo}s" || why="exit $rc"
	    printf '  FAIL  %-60s %s\n' "$t" "$why"; sed 's/^/        | /' "$log" | tail -n 40 ;;
	esac
	rm -f "$log"
done
echo "$suite: $pass passed, $fail failed, $skip skipped"
exit 0
