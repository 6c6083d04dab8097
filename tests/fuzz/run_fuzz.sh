#!/usr/bin/env bash
# run_fuzz.sh BIN SECONDS - one bounded libFuzzer round of tests/fuzz/fuzz_ebb
# over the committed corpus (read only) plus $(dirname BIN)/corpus (grown).
# Every committed corpus input is run first (regressions), then new inputs
# for SECONDS. Exit 0 clean, 1 on a crash/finding (the input is saved as
# $(dirname BIN)/crash-*), 77 when the harness could not be built (no clang).
set -u
bin=$1; secs=$2
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$bin" ]; then
	echo "libFuzzer harness $bin not built (clang with libclang-rt-14-dev missing)"
	exit 77
fi
out=$(dirname "$bin")
mkdir -p "$out/corpus"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# idle caches are stolen by the reclaim thread after 5 ms instead of 1 s, so
# the idle-flush handshake runs all the time under the fuzzer's walks
export EBB_TCACHE_IDLE_MS=${EBB_TCACHE_IDLE_MS:-5}
# the regression inputs, one by one
"$bin" -runs=0 "$here/corpus" >"$out/regress.log" 2>&1 || { tail -n 40 "$out/regress.log"; echo "corpus regression failed"; exit 1; }
"$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -max_len=4096 \
	-artifact_prefix="$out/" -print_final_stats=1 "$out/corpus" "$here/corpus" >"$out/fuzz.log" 2>&1
rc=$?
grep -E '^stat::number_of_executed_units|^stat::new_units_added|cov:' "$out/fuzz.log" | tail -n 3
if [ $rc != 0 ]; then
	tail -n 60 "$out/fuzz.log"
	echo "fuzz_ebb found a failure (exit $rc); input saved under $out/"
	exit 1
fi
echo "fuzz_ebb: ${secs}s clean"
