#!/usr/bin/env bash
# test_ebbmalloc_live.sh - the tools on real processes running ebbmalloc
# (build/libebbmalloc.so through ebbrun): the library's own stats file is
# found (from -o stats_file= and from EBB_STATS_FILE) and read by ebbstat,
# with figures that match what the process holds (64 MiB in 1 KiB blocks)
# and the documented relations (per-node sums + huge = totals, per-arena
# sums = the node's figures, active <= mapped); rsswatch records active/dirty next to RSS and active rises with
# a 200 MiB workload; ebb-doctor names ebbmalloc and points at ebbstat.
. "$(dirname "$0")/lib.sh"

[ -e "$B/libebbmalloc.so" ] || { echo "FAIL: $B/libebbmalloc.so does not exist (run make lib)"; exit 1; }
M=1048576

# wait_file PATH: the library creates it when its reclaim thread starts
wait_file() {
	local i
	for i in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

# sum_nodes FILE KEY: the sum of KEY over the "nodes" rows of ebbstat --json
sum_nodes() { grep '^    {"node":' "$1" | grep -o "\"$2\": [0-9]*" | awk '{s += $2} END {print s + 0}'; }
# node_val FILE NODE KEY / sum_arenas FILE NODE KEY: KEY of that node's row,
# and the sum of KEY over the rows of its arenas
node_val() { grep "^    {\"node\": $2," "$1" | grep -o "\"$3\": [0-9]*" | awk '{print $2}'; }
sum_arenas() { grep "\"arena\": [0-9]*, \"node\": $2," "$1" | grep -o "\"$3\": [0-9]*" | awk '{s += $2} END {print s + 0}'; }

live_checks() {	# live_checks NAME PID FILE
	local name=$1 pid=$2 file=$3 j=$T/$1.json
	if ! wait_file "$file"; then fail "$name: ebbmalloc never created $file"; return; fi
	if ! "$EBBSTAT" --json $pid > "$j" 2> "$T/$name.stat.err"; then
		fail "$name: ebbstat --json failed: $(cat "$T/$name.stat.err")"; return
	fi
	# the snapshot may predate "ready": wait for two more refreshes (the
	# reclaim thread rewrites the file every 100 ms while it has one)
	local seq0 i
	seq0=$(jnum "$j" seq)
	for i in $(seq 100); do
		"$EBBSTAT" --json $pid > "$j" 2> "$T/$name.stat.err" || break
		[ "$(jnum "$j" seq)" -ge $((seq0 + 4)) ] && break
		sleep 0.1
	done
	[ "$(jnum "$j" seq)" -ge $((seq0 + 4)) ] && ok "$name: the file is refreshed (seq $seq0 -> $(jnum "$j" seq))" \
		|| fail "$name: the stats file is not refreshed (seq $seq0 -> $(jnum "$j" seq))"
	local a act map huge nn
	a=$(jnum "$j" allocated_bytes); act=$(jnum "$j" active_bytes); map=$(jnum "$j" mapped_bytes)
	huge=$(jnum "$j" huge_bytes); nn=$(jnum "$j" nnodes)
	echo "$name: allocated $a active $act mapped $map huge $huge nodes $nn backend $(jstr "$j" backend)"
	[ "$(jnum "$j" pid)" = "$pid" ] && ok "$name: the file is pid $pid's" || fail "$name: pid $(jnum "$j" pid), want $pid"
	[ "${a:-0}" -ge $((64 * M)) ] && ok "$name: allocated >= 64 MiB" || fail "$name: allocated '$a' < 64 MiB"
	[ "${act:-0}" -le "${map:-0}" ] && ok "$name: active <= mapped" || fail "$name: active $act > mapped $map"
	[ "${nn:-0}" -ge 1 ] && ok "$name: $nn node(s)" || fail "$name: nnodes '$nn'"
	[ "$(( $(sum_nodes "$j" allocated_bytes) + huge ))" = "$a" ] && ok "$name: node allocated + huge = allocated" \
		|| fail "$name: node allocated sum $(sum_nodes "$j" allocated_bytes) + huge $huge != allocated $a"
	local na n k bad=0
	na=$(grep -c '"arena": [0-9]*, "node"' "$j")
	[ "$na" -ge "$nn" ] && ok "$name: $na arena rows" || fail "$name: $na arena rows for $nn node(s)"
	for n in $(seq 0 $((nn - 1))); do
		for k in allocated_bytes active_bytes dirty_bytes purging_bytes purged_bytes mapped_bytes chunks remote_frees; do
			[ "$(sum_arenas "$j" $n $k)" = "$(node_val "$j" $n $k)" ] || {
				bad=1; fail "$name: node $n: arenas' $k $(sum_arenas "$j" $n $k) != node's $(node_val "$j" $n $k)"; }
		done
		[ "$(node_val "$j" $n active_bytes)" -le "$(node_val "$j" $n mapped_bytes)" ] || {
			bad=1; fail "$name: node $n: active > mapped"; }
	done
	[ $bad = 0 ] && ok "$name: per node, the arenas' figures add up to the node's; active <= mapped"
	case "$(jstr "$j" backend)" in
	uring|vector|madvise|none) ok "$name: backend $(jstr "$j" backend)" ;;
	*) fail "$name: backend '$(jstr "$j" backend)'" ;;
	esac
	"$EBBSTAT" --once $pid > "$T/$name.txt" && grep -q "^ebbstat  pid $pid" "$T/$name.txt" && grep -q '^0 ' "$T/$name.txt" \
		&& ok "$name: text snapshot with a node row" || fail "$name: text snapshot: $(cat "$T/$name.txt")"
}

# -o stats_file= through ebbrun
start_held o "$EBBRUN" -o "stats_file=$T/o.%p" -- "$HEAPLOAD" hold 64 1024
pid=$HELD_PID
if wait_line "$T/o.out" ready; then
	live_checks o $pid "$T/o.$pid"
	"$DOCTOR" --json $pid > "$T/o.djson"
	[ "$(jnum "$T/o.djson" ebb_allocated_bytes)" -ge $((64 * M)) ] 2>/dev/null \
		&& ok "ebb-doctor --json carries the stats file's figures" || fail "ebb-doctor --json: no ebb_allocated_bytes >= 64 MiB"
	"$DOCTOR" $pid > "$T/o.doc"
	grep -q '^allocator     ebbmalloc' "$T/o.doc" && grep -q "ebbstat $pid" "$T/o.doc" && grep -q 'from its stats file: allocated' "$T/o.doc" \
		&& ok "ebb-doctor: ebbmalloc, points at ebbstat" || fail "ebb-doctor: $(cat "$T/o.doc")"
else
	fail "heapload under ebbrun never got ready: $(cat "$T/o.err")"
fi
end_held o $pid

# EBB_STATS_FILE in the environment
start_held v env EBB_STATS_FILE="$T/v.%p" "$EBBRUN" -- "$HEAPLOAD" hold 64 1024
pid=$HELD_PID
if wait_line "$T/v.out" ready; then
	live_checks v $pid "$T/v.$pid"
else
	fail "heapload (EBB_STATS_FILE) never got ready: $(cat "$T/v.err")"
fi
end_held v $pid

# a stats_file path without %p: a forked child must leave the parent's file
# alone (it would name the same file and truncate it)
cat > "$T/fork.py" <<'PYEOF'
import os, struct, sys, time
path = sys.argv[1]
junk = [bytearray(4096) for _ in range(2000)]
for _ in range(300):
    if os.path.exists(path) and os.path.getsize(path) >= 24:
        break
    time.sleep(0.01)
pid = os.fork()
if pid == 0:
    more = [bytearray(4096) for _ in range(20000)]
    time.sleep(1.0)
    os._exit(0)
os.waitpid(pid, 0)
with open(path, "rb") as f:
    magic, seq, owner = struct.unpack("<QQQ", f.read(24))
print("owner", owner, "parent", os.getpid(), "child", pid)
PYEOF
EBB_STATS_FILE="$T/fork.stats" LD_PRELOAD="$B/libebbmalloc.so" python3 "$T/fork.py" "$T/fork.stats" > "$T/fork.out" 2> "$T/fork.err"
read -r _ owner _ parent _ child < "$T/fork.out"
[ -n "${owner:-}" ] && [ "$owner" = "$parent" ] && ok "a forked child leaves the parent's stats file (no %p) alone" \
	|| fail "stats file without %p after fork: $(cat "$T/fork.out" "$T/fork.err")"

# the same path (no %p) in programs the process runs (fork + exec): they
# must neither take the file over nor truncate it under the parent, whose
# next refresh then died of SIGBUS; each says once that it keeps none
cat > "$T/exec.py" <<'PYEOF'
import os, struct, subprocess, sys, time
path = sys.argv[1]
for _ in range(300):
    junk = [bytearray(4096) for _ in range(4000)]
    del junk
    if os.path.exists(path) and os.path.getsize(path) >= 24:
        break
    time.sleep(0.01)
child = [sys.executable, "-c",
         "import time\nfor _ in range(8):\n    j = [bytearray(4096) for _ in range(8000)]\n    del j\n    time.sleep(0.03)"]
for _ in range(6):
    p = subprocess.Popen(child)
    while p.poll() is None:   # the parent keeps refreshing its file meanwhile
        junk = [bytearray(4096) for _ in range(4000)]
        del junk
        time.sleep(0.005)
with open(path, "rb") as f:
    magic, seq, owner = struct.unpack("<QQQ", f.read(24))
print("owner", owner, "parent", os.getpid())
PYEOF
EBB_STATS_FILE="$T/exec.stats" LD_PRELOAD="$B/libebbmalloc.so" python3 "$T/exec.py" "$T/exec.stats" > "$T/exec.out" 2> "$T/exec.err"; rc=$?
read -r _ owner _ parent < "$T/exec.out"
[ $rc = 0 ] && [ -n "${owner:-}" ] && [ "$owner" = "$parent" ] \
	&& ok "programs run with the same stats_file (no %p) leave the parent's file alone" \
	|| fail "stats file without %p and exec'd children: rc $rc, $(cat "$T/exec.out") $(grep -v 'kept by another' "$T/exec.err")"
n=$(grep -c 'stats file .* is kept by another process (put %p in the path); live stats off' "$T/exec.err")
[ "$n" -ge 6 ] && ok "each child said it keeps no stats file ($n lines)" || fail "$n 'kept by another process' lines, want >= 6"

# rsswatch: active and dirty from the library, next to RSS
"$RSSWATCH" -i 50 -o "$T/r.csv" -- "$EBBRUN" -o "stats_file=$T/r.%p" -- "$HEAPLOAD" touch 200 1024 > /dev/null 2> "$T/r.err"; rc=$?
[ $rc = 0 ] && ok "rsswatch -- ebbrun -- heapload: exit 0" || fail "rsswatch rc $rc: $(cat "$T/r.err")"
[ "$(sed -n 2p "$T/r.csv")" = "time_s,rss_kib,active_kib,dirty_kib" ] && ok "active/dirty columns" || fail "header: $(sed -n 2p "$T/r.csv")"
read -r rss0 rsspk actpk < <(tail -n +3 "$T/r.csv" | awk -F, 'NR==1{r0=$2} {if ($2>rp) rp=$2; if ($3!="" && $3>ap) ap=$3} END{print r0, rp+0, ap+0}')
[ $((rsspk - rss0)) -ge $((180 * 1024)) ] && ok "RSS rose by $(( (rsspk - rss0) / 1024 )) MiB" || fail "RSS rose $((rsspk - rss0)) KiB"
[ "$actpk" -ge $((180 * 1024)) ] && ok "active peaked at $((actpk / 1024)) MiB" || { fail "active peaked at $actpk KiB"; cat "$T/r.csv"; }
finish
