#!/usr/bin/env bash
# test_rsswatch.sh - rsswatch records real RSS: a child that mallocs and
# touches 200 MiB must show a rise of at least 180 MiB in the CSV; a held
# process watched by pid has its RSS in every row; a process with a stats
# file (the fake writer) gets active/dirty columns with its figures; the
# command's exit status is passed on.
. "$(dirname "$0")/lib.sh"

check "--help exits 0 with usage" bash -c "'$RSSWATCH' --help | grep -q '^usage: rsswatch'"

# command mode: RSS rises by >= 180 MiB while the child touches 200 MiB
"$RSSWATCH" -i 50 -o "$T/a.csv" --label touch200 -- "$HEAPLOAD" touch 200 > "$T/a.out" 2> "$T/a.err"; rc=$?
[ $rc = 0 ] && ok "command mode exits with the command's status 0" || fail "rsswatch rc $rc: $(cat "$T/a.err")"
head -n1 "$T/a.csv" | grep -q '^# rsswatch label=touch200 pid=[0-9]* cmd=.*heapload touch 200$' && ok "label comment" \
	|| fail "first line: $(head -n1 "$T/a.csv")"
[ "$(sed -n 2p "$T/a.csv")" = "time_s,rss_kib" ] && ok "header time_s,rss_kib" || fail "header: $(sed -n 2p "$T/a.csv")"
rows=$(tail -n +3 "$T/a.csv" | wc -l)
bad=$(tail -n +3 "$T/a.csv" | grep -cvE '^[0-9]+\.[0-9]{3},[0-9]+$')
[ "$rows" -ge 5 ] && [ "$bad" = 0 ] && ok "$rows well-formed rows" || fail "$rows rows, $bad malformed"
read -r first peak mono < <(tail -n +3 "$T/a.csv" | awk -F, 'NR==1{f=$2; p=$2; t=$1; m=1} {if ($2>p) p=$2; if ($1<t) m=0; t=$1} END{print f, p, m}')
[ $((peak - first)) -ge $((180 * 1024)) ] && ok "RSS rose by $(( (peak - first) / 1024 )) MiB (first $first KiB, peak $peak KiB)" \
	|| fail "RSS rose only $((peak - first)) KiB (first $first, peak $peak)"
[ "$mono" = 1 ] && ok "time never goes back" || fail "time column not monotonic"
grep -q "peak RSS $peak KiB" "$T/a.err" && ok "summary line on stderr" || fail "summary: $(cat "$T/a.err")"

# exit status of a failing command
"$RSSWATCH" -i 50 -o "$T/x.csv" -- sh -c 'exit 3' 2> /dev/null; rc=$?
[ $rc = 3 ] && ok "exit status 3 passed on" || fail "exit status $rc, want 3"

# pid mode, CSV to stdout, -t ends it
start_held h "$HEAPLOAD" hold 64
pid=$HELD_PID
if wait_line "$T/h.out" ready; then
	"$RSSWATCH" -i 50 -t 0.5 $pid > "$T/h.csv"; rc=$?
	rows=$(tail -n +3 "$T/h.csv" | wc -l)
	low=$(tail -n +3 "$T/h.csv" | awk -F, '$2 < 64 * 1024' | wc -l)
	[ $rc = 0 ] && [ "$rows" -ge 2 ] && [ "$low" = 0 ] && ok "pid mode: $rows rows, all >= 64 MiB" \
		|| fail "pid mode: rc $rc, $rows rows, $low below 64 MiB"
	kill -0 $pid 2>/dev/null && ok "pid mode leaves the process alone" || fail "pid mode killed the process"
else
	fail "heapload hold never got ready"
fi
end_held h $pid
# the watched process exits: rsswatch stops by itself
start_held q "$HEAPLOAD" hold 1
pid=$HELD_PID
wait_line "$T/q.out" ready
( close_held_fds; exec "$RSSWATCH" -i 50 $pid > "$T/q.csv" ) & rw=$!
sleep 0.3
end_held q $pid
wait $rw; rc=$?
[ $rc = 0 ] && [ "$(tail -n +3 "$T/q.csv" | wc -l)" -ge 1 ] && ok "stops when the process exits" || fail "after exit: rc $rc"

# a process with a stats file: active and dirty columns from it
EBB_STATS_FILE="$T/st.%p" "$RSSWATCH" -i 20 -t 0.5 -o "$T/s.csv" -- "$FAKEW" fixed < /dev/zero > /dev/null 2> "$T/s.err"
[ "$(sed -n 2p "$T/s.csv")" = "time_s,rss_kib,active_kib,dirty_kib" ] && ok "stats columns" || fail "header: $(sed -n 2p "$T/s.csv")"
good=$(tail -n +3 "$T/s.csv" | grep -c ',133120,7168$')
[ "$good" -ge 1 ] && ok "$good rows with active 130 MiB, dirty 7 MiB" || { fail "no row with the writer's figures"; cat "$T/s.csv"; }
other=$(tail -n +3 "$T/s.csv" | grep -vcE ',133120,7168$|^[0-9.]+,[0-9]+,,$')
[ "$other" = 0 ] && ok "other rows are empty (before the file existed)" || fail "$other rows with other figures"

"$RSSWATCH" 999999999 2> /dev/null; [ $? != 0 ] && ok "bad pid refused" || fail "bad pid: rc 0"
finish
