#!/usr/bin/env bash
# test_ebbstat.sh - ebbstat reads the live stats file of a process, found
# through the process's environment (EBB_STATS_FILE or stats_file= in
# EBB_CONF, %p = pid), here written by fake_statswriter exactly as
# include/ebbmalloc.h specifies: JSON figures equal what was written, the
# text screen shows them, repeated refreshes work, and snapshots are never
# torn (the "consistent" writer stores k in every counter one field at a
# time: each snapshot must have a single k). A process without a stats file
# gets a message naming EBB_STATS_FILE.
. "$(dirname "$0")/lib.sh"

check "--help exits 0 with usage" bash -c "'$EBBSTAT' --help | grep -q '^usage: ebbstat'"

start_held f env EBB_STATS_FILE="$T/fixed.%p" "$FAKEW" fixed
pid=$HELD_PID
if wait_line "$T/f.out" ready; then
	"$EBBSTAT" --json $pid > "$T/f.json"; rc=$?
	[ $rc = 0 ] && ok "--json exits 0" || fail "--json rc $rc"
	M=1048576
	for kv in pid=$pid allocated_bytes=$((123 * M)) active_bytes=$((130 * M)) dirty_bytes=$((7 * M)) \
		purging_bytes=$M purged_bytes=$((2048 * M)) mapped_bytes=$((256 * M)) huge_bytes=$((40 * M)) \
		huge_count=3 tcache_bytes=$((5 * M)) chunks=12 threads=17 tcache_flushes=4242 remote_frees=99 \
		purge_batches=1000 purge_syscalls=1001 purge_ranges=64000 backend_fallbacks=0 nnodes=2 version=3 \
		purged_decay_bytes=$((512 * M)) purged_cap_bytes=$((1536 * M)) purged_forced_bytes=$M \
		dirty_cap_bytes=$((48 * M)) dirty_hold_bytes=$((16 * M)); do
		k=${kv%%=*}; v=${kv#*=}
		got=$(jnum "$T/f.json" "$k")
		[ "$got" = "$v" ] || fail "$k = '$got', want $v"
	done
	[ "$(jstr "$T/f.json" backend)" = uring ] || fail "backend '$(jstr "$T/f.json" backend)'"
	grep -q '"node": 1, "allocated_bytes": 66060288, .*"remote_frees": 59, "cache_flushes": 300, "purge_batches": 300, "purge_syscalls": 300, "purge_batch_lat_us_lt_pow2": \[0, 0, 0, 0, 300, 0' "$T/f.json" || fail "node 1 row wrong: $(grep '"node": 1' "$T/f.json")"
	grep -q '"purge_batch_lat_us_lt_pow2": \[0, 0, 0, 100, 200, 300, 400, 500, 600, 0' "$T/f.json" || fail "latency histogram wrong"
	grep -q '"arena": 0, "node": 0, "threads": 5, "allocated_bytes": 20971520, "active_bytes": 26214400, .*"chunks": 3, "remote_frees": 10, "xfer_bytes": 4096, "cache_flushes": 100, "purge_batches": 500, "purge_ranges": 1000, "purge_batch_lat_us_lt_pow2": \[0, 0, 0, 0, 500, 0' "$T/f.json" \
		|| fail "arena 0 row wrong: $(grep '"arena": 0' "$T/f.json")"
	grep -q '"arena": 2, "node": 1, "threads": 7, "allocated_bytes": 66060288, ' "$T/f.json" || fail "arena 2 row wrong"
	[ "$(grep -c '"arena": ' "$T/f.json")" = 3 ] || fail "$(grep -c '"arena": ' "$T/f.json") arena rows, want 3"
	grep -q '"purge_by_backend": {"uring": {"batches": 1000, "syscalls": 995}, "vector": {"batches": 10, "syscalls": 6}, "madvise": {"batches": 0, "syscalls": 0}}' "$T/f.json" \
		|| fail "purges by backend wrong: $(grep purge_by_backend "$T/f.json")"
	rss=$(jnum "$T/f.json" rss_bytes)
	[ "${rss:-0}" -gt 0 ] || fail "rss_bytes '$rss'"
	[ $failures = 0 ] && ok "JSON figures equal the written ones"

	"$EBBSTAT" --once $pid > "$T/f.txt"
	grep -q "allocated 123.0 MiB" "$T/f.txt" && grep -q "active 130.0 MiB" "$T/f.txt" && grep -q "purged 2.0 GiB" "$T/f.txt" \
		&& grep -q "backend uring" "$T/f.txt" && grep -qE '^1 +63.0 MiB +65.0 MiB +4.0 MiB' "$T/f.txt" \
		&& grep -q "batches 1000   syscalls 1001" "$T/f.txt" && grep -qE '< 256 us +600 #{40}$' "$T/f.txt" \
		&& grep -qE '^2/n1 +7 +63.0 MiB +65.0 MiB +4.0 MiB +0 B +1.0 GiB +6 +59 +300 +300$' "$T/f.txt" \
		&& grep -qE '^0/n0 +5 .* +10 +100 +500$' "$T/f.txt" \
		&& grep -q 'by node: 0 700/701, 1 300/300' "$T/f.txt" \
		&& grep -q 'by backend: uring 1000/995, vector 10/6, madvise 0/0' "$T/f.txt" \
		&& grep -q 'why: decay 512.0 MiB   over the cap 1.5 GiB   forced (trim, pressure) 1.0 MiB' "$T/f.txt" \
		&& grep -q 'dirty cap 48.0 MiB, of which 16.0 MiB from the hold' "$T/f.txt" \
		&& ok "text snapshot shows the figures" || { fail "text snapshot"; cat "$T/f.txt"; }

	"$EBBSTAT" -n 3 $pid 50 > "$T/f3.txt"; rc=$?
	[ $rc = 0 ] && [ "$(grep -c '^ebbstat  pid' "$T/f3.txt")" = 3 ] && [ "$(grep -c 'rate:' "$T/f3.txt")" = 2 ] \
		&& ok "-n 3: three refreshes, rates from the second on" || fail "-n 3: rc $rc, $(grep -c '^ebbstat  pid' "$T/f3.txt") screens"
else
	fail "fake writer never got ready: $(cat "$T/f.err")"
fi
end_held f $pid

# stats_file= in EBB_CONF (the last one), relative to the process's cwd
mkdir -p "$T/cwd"
start_held c env EBB_CONF="stats_file=nothere.%p,decay_ms=10,stats_file=conf.%p" sh -c "cd '$T/cwd' && exec '$FAKEW' fixed"
pid=$HELD_PID
if wait_line "$T/c.out" ready && [ -e "$T/cwd/conf.$pid" ]; then
	"$EBBSTAT" --json $pid > "$T/c.json" && [ "$(jnum "$T/c.json" pid)" = "$pid" ] \
		&& ok "stats_file= in EBB_CONF, relative to the process's cwd" || fail "EBB_CONF stats_file: $(cat "$T/c.json")"
else
	fail "fake writer (EBB_CONF) never got ready at $T/cwd/conf.$pid"
fi
end_held c $pid
# EBB_STATS_FILE wins over EBB_CONF, as in the library
start_held d env EBB_CONF="stats_file=$T/notthis.%p" EBB_STATS_FILE="$T/this.%p" "$FAKEW" fixed
pid=$HELD_PID
if wait_line "$T/d.out" "ready $T/this.$pid"; then
	"$EBBSTAT" --json $pid > "$T/d.json" && [ "$(jnum "$T/d.json" pid)" = "$pid" ] \
		&& ok "EBB_STATS_FILE wins over stats_file= in EBB_CONF" || fail "EBB_STATS_FILE precedence"
else
	fail "fake writer (both) never got ready: $(cat "$T/d.out")"
fi
end_held d $pid

# never a torn snapshot
start_held k env EBB_STATS_FILE="$T/k.%p" "$FAKEW" consistent
pid=$HELD_PID
if wait_line "$T/k.out" ready; then
	torn=0; last=0; moved=0
	for i in $(seq 150); do
		"$EBBSTAT" --json $pid > "$T/k.json" || { fail "read $i failed"; break; }
		vals=$(sed -n -e '/"allocated_bytes"/,/"backend_fallbacks"/s/.*: \([0-9]*\),$/\1/p' "$T/k.json"; \
			grep -o '\[[0-9, ]*\]' "$T/k.json" | tr -d '[]' | tr ',' '\n'; \
			grep '^    {"node":' "$T/k.json" | sed 's/"node": [0-9]*,//' | grep -o ': [0-9]*' | tr -d ': '; \
			grep '"arena":' "$T/k.json" | sed 's/"arena": [0-9]*, "node": [0-9]*, "threads": [0-9]*,//' | grep -o ': [0-9]*' | tr -d ': '; \
			grep '"purge_by_backend"' "$T/k.json" | grep -o ': [0-9]*' | tr -d ': ')
		vals=$(echo "$vals" | tr -d " " | grep -v "^$"); n=$(echo "$vals" | sort -u | wc -l)
		k=$(echo "$vals" | head -n1)
		# 17 totals + 16 latency buckets + 2 nodes x (11 + 16 latency buckets)
		# + 3 arenas x (12 + 16 latency buckets) + 3 backends x 2
		[ "$(echo "$vals" | wc -l)" = 177 ] || { fail "snapshot $i: $(echo "$vals" | wc -l) fields, want 177"; break; }
		[ "$n" = 1 ] || { torn=$((torn + 1)); echo "torn snapshot: $(echo "$vals" | sort -u | tr '\n' ' ')"; }
		[ "$k" -gt "$last" ] && moved=$((moved + 1)); last=$k
	done
	[ $torn = 0 ] && ok "150 snapshots, none torn" || fail "$torn torn snapshots"
	[ $moved -ge 100 ] && ok "the writer moved on between reads ($moved times)" || fail "writer moved only $moved times"
else
	fail "consistent fake writer never got ready"
fi
end_held k $pid

# no stats file: a clear message
start_held n "$HEAPLOAD" hold 1
pid=$HELD_PID
wait_line "$T/n.out" ready
"$EBBSTAT" --json $pid > /dev/null 2> "$T/n.err"; rc=$?
[ $rc = 1 ] && grep -q 'EBB_STATS_FILE=' "$T/n.err" && grep -q 'ebbrun -o stats_file=' "$T/n.err" \
	&& ok "no stats file: says to run with EBB_STATS_FILE" || fail "no stats file: rc $rc, $(cat "$T/n.err")"
end_held n $pid
"$EBBSTAT" --json 999999999 2> "$T/x.err"; rc=$?
[ $rc != 0 ] && grep -q 'no process' "$T/x.err" && ok "bad pid" || fail "bad pid: rc $rc $(cat "$T/x.err")"
finish
