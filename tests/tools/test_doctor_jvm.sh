#!/usr/bin/env bash
# test_doctor_jvm.sh - ebb-doctor on a real JVM under glibc: 32 Java threads
# keep zlib Deflaters (native malloc inside the JVM), the JVM RSS story in
# small. ebb-doctor must see a JVM on glibc malloc with at least
# min(8 x CPUs - 1, 8) arena heaps, their RSS, and give the JVM advice
# (jcmd). Skipped only when no JDK is installed.
. "$(dirname "$0")/lib.sh"

if ! command -v javac > /dev/null || ! command -v java > /dev/null; then
	echo "skip: no JDK (javac/java) installed"; exit 77
fi
javac -d "$T" "$(dirname "$0")/DeflaterThreads.java" || { echo "javac failed"; exit 1; }
start_held j java -Xmx64m -Xss512k -cp "$T" DeflaterThreads 32 16
pid=$HELD_PID
if wait_line "$T/j.out" '^ready'; then
	"$DOCTOR" --json $pid > "$T/j.json"
	"$DOCTOR" $pid > "$T/j.txt"
	cat "$T/j.txt"
	ncpu=$(getconf _NPROCESSORS_ONLN)
	want=$((8 * ncpu - 1)); [ $want -gt 8 ] && want=8
	[ "$(jstr "$T/j.json" allocator)" = glibc ] && ok "allocator glibc" || fail "allocator '$(jstr "$T/j.json" allocator)'"
	grep -q '"jvm": true' "$T/j.json" && ok "JVM recognised" || fail "JVM not recognised"
	n=$(jnum "$T/j.json" arena_heaps)
	[ "${n:-0}" -ge $want ] && ok "$n arena heaps (>= $want)" || fail "'$n' arena heaps, want >= $want"
	rss=$(jnum "$T/j.json" arena_heaps_rss_kib)
	[ "${rss:-0}" -ge $((n * 256)) ] && ok "arena heaps hold $rss KiB RSS" || fail "arena heaps RSS '$rss' KiB"
	grep -q "jcmd $pid System.trim_native_heap" "$T/j.txt" && grep -q "is live data now" "$T/j.txt" && ok "JVM advice; its arenas hold live data (the Deflaters are kept)" || fail "no JVM advice"
else
	fail "the JVM never got ready: $(tail -n 5 "$T/j.err")"
fi
end_held j $pid
finish
