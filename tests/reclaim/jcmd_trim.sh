#!/usr/bin/env bash
# jcmd_trim.sh - `jcmd PID System.trim_native_heap` works for a JVM under
# LD_PRELOAD=libebbmalloc.so (issue 4, point 5): a Java program
# (TrimNative.java) mallocs and frees ~256 MiB of native memory; jcmd's
# report "RSS+Swap: before->after" must show a drop of at least 128 MiB.
# The JVM runs with EBB_RECLAIM=off and a long decay, so that what is
# released is released by the trim itself (with the reclaim thread on, it
# would already have purged most of it and the drop would prove nothing).
# A second run with default options is reported, not asserted.
set -u
. "$(dirname "$0")/lib.sh"
JDK=${RECLAIM_JDK:-/usr/lib/jvm/java-17-openjdk-amd64}
[ -x "$JDK/bin/java" ] && [ -x "$JDK/bin/jcmd" ] || { echo "no JDK 17 at $JDK"; exit 77; }
[ -f "$RECLAIM_BIN/TrimNative.class" ] || { echo "FAIL: $RECLAIM_BIN/TrimNative.class was not built"; exit 1; }

# run_jvm LABEL ENV... : start the JVM, trim it, print jcmd's line; sets $line
run_jvm() {
	local label=$1; shift
	local out=$RT_TMP/$label.out
	: > "$out"
	env "$@" LD_PRELOAD="$RECLAIM_LIB" "$JDK/bin/java" -Xmx128m -Xshare:auto \
		-cp "$RECLAIM_BIN" TrimNative > "$out" 2>&1 &
	local jpid=$! k
	for k in $(seq 600); do
		grep -q '^READY' "$out" && break
		kill -0 $jpid 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q '^READY' "$out"; then
		echo "FAIL: $label: the JVM did not get ready:"; sed 's/^/  | /' "$out" | tail -20
		kill -9 $jpid 2>/dev/null; wait $jpid 2>/dev/null
		return 1
	fi
	sleep 0.5
	line=$(timeout 60 "$JDK/bin/jcmd" $jpid System.trim_native_heap 2>&1 | tr '\n' ' ')
	kill $jpid 2>/dev/null; wait $jpid 2>/dev/null
	echo "$label: $(grep '^READY' "$out"); jcmd: $line"
}

# "...RSS+Swap: 300M->40M (-260M)" -> before and after in KiB
to_kib() {
	awk -v v="$1" 'BEGIN { n = v + 0; u = substr(v, length(v));
		if (u == "K") n *= 1; else if (u == "M") n *= 1024; else if (u == "G") n *= 1048576; else n /= 1024;
		printf("%d\n", n) }'
}

run_jvm off EBB_RECLAIM=off EBB_DECAY_MS=3600000 || exit 1
case $line in
*"Unknown diagnostic command"*|*"not supported"*)
	echo "this JDK has no System.trim_native_heap"; exit 77 ;;
esac
pair=$(echo "$line" | grep -oE '[0-9]+[KMG]?->[0-9]+[KMG]?' | head -1)
if [ -z "$pair" ]; then
	echo "FAIL: no 'before->after' figures in jcmd's answer"; exit 1
fi
before=$(to_kib "${pair%%->*}"); after=$(to_kib "${pair##*->}")
drop=$((before - after))
echo "trim under EBB_RECLAIM=off: RSS ${before} KiB -> ${after} KiB (drop $((drop / 1024)) MiB)"
run_jvm default || true
if [ $drop -lt $((128 * 1024)) ]; then
	echo "FAIL: jcmd System.trim_native_heap released $((drop / 1024)) MiB; the program freed ~256 MiB (want >= 128 MiB)"
	exit 1
fi
echo "jcmd_trim: ok"
