#!/usr/bin/env bash
# test_ebbrun.sh - ebbrun sets LD_PRELOAD (prepended, absolute path) and
# EBB_CONF (appended) for the command it execs, finds the library next to
# itself in the build and the installed layouts, passes the exit status on,
# and refuses bad arguments. The library preloaded here is a no-op .so
# (libnoop.so) so this test checks ebbrun, not the allocator; the last check
# runs the real build/libebbmalloc.so (and build/libebbmalloc-fastfree.so).
. "$(dirname "$0")/lib.sh"

env_of() { tr '\0' '\n' < "/proc/$1/environ" | sed -n "s/^$2=//p"; }

check "--help exits 0 with usage" bash -c "'$EBBRUN' --help | grep -q '^usage: ebbrun'"

# build layout: <dir>/tools/ebbrun finds <dir>/libebbmalloc.so
mkdir -p "$T/build/tools" "$T/inst/bin" "$T/inst/lib"
cp "$EBBRUN" "$T/build/tools/ebbrun"; cp "$NOOPLIB" "$T/build/libebbmalloc.so"
cp "$EBBRUN" "$T/inst/bin/ebbrun"; cp "$NOOPLIB" "$T/inst/lib/libebbmalloc.so"

start_held b env LD_PRELOAD= EBB_CONF= "$T/build/tools/ebbrun" -o decay_ms=500 -o purge=free -- "$HEAPLOAD" hold 1
pid=$HELD_PID
wait_line "$T/b.out" ready || fail "heapload under ebbrun (build layout) never got ready: $(cat "$T/b.err")"
pre=$(env_of $pid LD_PRELOAD); conf=$(env_of $pid EBB_CONF)
[ "$pre" = "$T/build/libebbmalloc.so" ] && ok "build layout: LD_PRELOAD=$pre" || fail "build layout: LD_PRELOAD='$pre', want $T/build/libebbmalloc.so"
[ "$conf" = "decay_ms=500,purge=free" ] && ok "EBB_CONF=$conf" || fail "EBB_CONF='$conf', want decay_ms=500,purge=free"
grep -q "$T/build/libebbmalloc.so" "/proc/$pid/maps" && ok "the library is mapped in the command (same pid: exec)" \
	|| fail "$T/build/libebbmalloc.so not mapped in pid $pid"
end_held b $pid

# installed layout, with an LD_PRELOAD and EBB_CONF already set
start_held i env LD_PRELOAD="$LIBDIR/libpthread.so.0" EBB_CONF=verbose=0 "$T/inst/bin/ebbrun" -o stats_file=/tmp/x.%p -- "$HEAPLOAD" hold 1
pid=$HELD_PID
wait_line "$T/i.out" ready || fail "heapload under ebbrun (installed layout) never got ready: $(cat "$T/i.err")"
pre=$(env_of $pid LD_PRELOAD); conf=$(env_of $pid EBB_CONF)
[ "$pre" = "$T/inst/lib/libebbmalloc.so:$LIBDIR/libpthread.so.0" ] && ok "installed layout, prepended: LD_PRELOAD=$pre" \
	|| fail "installed layout: LD_PRELOAD='$pre'"
[ "$conf" = "verbose=0,stats_file=/tmp/x.%p" ] && ok "EBB_CONF appended: $conf" || fail "EBB_CONF='$conf', want verbose=0,stats_file=/tmp/x.%p"
end_held i $pid

# --lib wins and is made absolute; no -o leaves EBB_CONF alone
cp "$NOOPLIB" "$T/other.so"
out=$(cd "$T" && env -u EBB_CONF "$EBBRUN" --lib other.so -- sh -c 'echo "P=$LD_PRELOAD C=${EBB_CONF-unset}"')
[ "$out" = "P=$T/other.so C=unset" ] && ok "--lib relative path made absolute, EBB_CONF untouched" || fail "--lib: got '$out'"
out=$(EBBRUN_LIB="$T/other.so" "$EBBRUN" -- sh -c 'echo "$LD_PRELOAD"')
[ "$out" = "$T/other.so" ] && ok "\$EBBRUN_LIB used" || fail "EBBRUN_LIB: got '$out'"

# --fastfree: libebbmalloc-fastfree.so from the same places, even with
# $EBBRUN_LIB set; refused with --lib, and a clear error when missing
cp "$NOOPLIB" "$T/inst/lib/libebbmalloc-fastfree.so"
out=$(EBBRUN_LIB="$T/other.so" "$T/inst/bin/ebbrun" --fastfree -- sh -c 'echo "$LD_PRELOAD"')
[ "$out" = "$T/inst/lib/libebbmalloc-fastfree.so" ] && ok "--fastfree: installed layout, $out" || fail "--fastfree: got '$out'"
"$EBBRUN" --fastfree --lib "$NOOPLIB" -- true 2> "$T/e5"; rc=$?
[ $rc = 2 ] && grep -q 'pass one' "$T/e5" && ok "--fastfree with --lib refused" || fail "--fastfree --lib: rc $rc, $(cat "$T/e5")"
"$T/build/tools/ebbrun" --fastfree -- true 2> "$T/e6"; rc=$?
[ $rc != 0 ] && grep -q 'libebbmalloc-fastfree.so not found' "$T/e6" && ok "--fastfree without the library: clear error" \
	|| fail "--fastfree missing: rc $rc, $(cat "$T/e6")"

# exit status and errors
"$EBBRUN" --lib "$NOOPLIB" -- sh -c 'exit 7'; rc=$?
[ $rc = 7 ] && ok "exit status passed on" || fail "exit status $rc, want 7"
"$EBBRUN" --lib "$NOOPLIB" -- /nonexistent/cmd 2> "$T/e1"; rc=$?
[ $rc = 127 ] && grep -q 'nonexistent' "$T/e1" && ok "missing command: 127 and a message" || fail "missing command: rc $rc, $(cat "$T/e1")"
"$EBBRUN" --lib /nonexistent.so -- true 2> "$T/e2"; rc=$?
[ $rc != 0 ] && grep -q 'nonexistent.so' "$T/e2" && ok "missing --lib refused" || fail "missing --lib: rc $rc"
"$EBBRUN" --lib "$NOOPLIB" -o decay_ms -- true 2> "$T/e3"; rc=$?
[ $rc = 2 ] && grep -q 'key=value' "$T/e3" && ok "-o without = refused" || fail "-o decay_ms: rc $rc"
"$EBBRUN" --lib "$NOOPLIB" 2> /dev/null; rc=$?
[ $rc = 2 ] && ok "no command refused" || fail "no command: rc $rc"
mkdir -p "$T/lonely"; cp "$EBBRUN" "$T/lonely/ebbrun"
"$T/lonely/ebbrun" -- true 2> "$T/e4"; rc=$?
[ $rc != 0 ] && grep -q 'not found' "$T/e4" && ok "no library next to ebbrun: clear error" || fail "lonely ebbrun: rc $rc, $(cat "$T/e4")"

# the real library from the build, found next to build/tools/ebbrun
if [ -e "$B/libebbmalloc.so" ]; then
	out=$("$EBBRUN" -o stats=0 -- sh -c 'echo "$LD_PRELOAD"; grep -c libebbmalloc.so /proc/$$/maps')
	first=$(echo "$out" | head -n1); n=$(echo "$out" | tail -n1)
	[ "$first" = "$B/libebbmalloc.so" ] && [ "${n:-0}" -ge 1 ] && ok "build/libebbmalloc.so preloaded into sh" \
		|| fail "real library: got '$out'"
else
	fail "$B/libebbmalloc.so does not exist (run make lib)"
fi
out=$("$EBBRUN" --fastfree -o verbose=1 -- sh -c 'echo "$LD_PRELOAD"' 2> "$T/e7")
[ "$out" = "$B/libebbmalloc-fastfree.so" ] && grep -q '(fastfree build' "$T/e7" && ok "build/libebbmalloc-fastfree.so preloaded with --fastfree, and says so" \
	|| fail "--fastfree real library: got '$out', $(head -c 300 "$T/e7")"
finish
