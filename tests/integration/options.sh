#!/usr/bin/env bash
# options.sh - DESIGN.md invariant 6 for options, end to end: a malformed or
# out-of-range value of an EBB_* variable, an unknown EBB_* variable or an
# unknown EBB_CONF key gets exactly one warning line on stderr, starting
# "ebbmalloc:" and naming the variable (or key), and the program still runs
# correctly on the defaults; valid settings print nothing. With
# abort_on_bad_conf=1 such a setting is fatal (SIGABRT); EBB_VERBOSE=1 prints
# the topology, every option and the reclaim backend. ebbmalloc only (the
# variables mean nothing to another allocator).
. "$(dirname "$0")/lib.sh"
check_preload
case ${PRELOAD##*/} in
libebbmalloc*) ;;
*) skip "EBB_* options are ebbmalloc's; EBB_TEST_PRELOAD=${PRELOAD:-none} is another allocator" ;;
esac
workdir options
bad=0
# try WANT(warn|quiet) NAME-IN-MESSAGE VAR=VALUE...
try() {
	local want=$1 name=$2; shift 2
	local out err lines
	out=$(echo hi | env "$@" LD_PRELOAD="$PRELOAD" tr h H 2>"$WORK/err")
	local rc=$?
	lines=$(grep -c . "$WORK/err")
	if [ $rc != 0 ] || [ "$out" != Hi ]; then
		echo "FAIL $*: exit $rc, output '$out' (want Hi)"; bad=$((bad + 1)); return
	fi
	if [ "$want" = quiet ]; then
		[ "$lines" = 0 ] && { echo "ok   $*: quiet"; return; }
		echo "FAIL $*: valid setting, but stderr says:"; cat "$WORK/err"; bad=$((bad + 1)); return
	fi
	if [ "$lines" != 1 ] || ! grep -q '^ebbmalloc: ' "$WORK/err" || ! grep -qF -- "$name" "$WORK/err"; then
		echo "FAIL $*: want exactly one line 'ebbmalloc: ...$name...', stderr:"; cat "$WORK/err"
		bad=$((bad + 1)); return
	fi
	echo "ok   $*: $(head -n 1 "$WORK/err" | cut -c1-110)"
}
try quiet "" EBB_PURGE=free
try quiet "" EBB_DECAY_MS=0
try quiet "" EBB_RECLAIM_BACKEND=madvise
try quiet "" EBB_CONF=decay_ms=500,purge=free
# the line names the setting and the valid values
try warn "EBB_PURGE: malformed value for 'purge', ignored; valid: dontneed|free" EBB_PURGE=bogus
try warn "EBB_DECAY_MS: malformed value for 'decay_ms', ignored; valid: an integer 0..3600000" EBB_DECAY_MS=abc
try warn "valid: an integer 0..3600000" EBB_DECAY_MS=-5
try warn "EBB_DECAY_MS: decay_ms=99999999999 out of range 0..3600000, using 3600000" EBB_DECAY_MS=99999999999
try warn "valid: auto|uring|vector|madvise" EBB_RECLAIM_BACKEND=nope
try warn "valid: thread|inline|off" EBB_RECLAIM=sometimes
try warn "valid: 0|1|on|off" EBB_CONF=stats=maybe
try warn "EBB_CONF: unknown option 'bogus', ignored; valid: verbose,decay_ms," EBB_CONF=bogus=1
try warn "EBB_CONF: expected key=value, got 'decay_ms'" EBB_CONF=decay_ms
try warn "unknown variable 'EBB_NO_SUCH_OPTION', ignored; valid: EBB_CONF,EBB_VERBOSE," EBB_NO_SUCH_OPTION=1

# abort_on_bad_conf=1 (in EBB_CONF or its own variable): the same line, then
# one more, and SIGABRT before the program runs
fatal() {	# fatal NAME-IN-MESSAGE VAR=VALUE...
	local name=$1; shift
	local out rc
	out=$(echo hi | env "$@" LD_PRELOAD="$PRELOAD" tr h H 2>"$WORK/err")
	rc=$?
	if [ $rc = 134 ] && [ -z "$out" ] && [ "$(grep -c . "$WORK/err")" = 2 ] && grep -qF -- "$name" "$WORK/err" \
		&& grep -q '^ebbmalloc: bad configuration (abort_on_bad_conf=1)$' "$WORK/err"; then
		echo "ok   $*: fatal, $(tail -n 1 "$WORK/err")"
	else
		echo "FAIL $*: exit $rc (want 134, SIGABRT), output '$out', stderr:"; cat "$WORK/err"; bad=$((bad + 1))
	fi
}
fatal EBB_PURGE EBB_CONF=abort_on_bad_conf=1 EBB_PURGE=bogus
fatal "unknown option 'bogus'" EBB_CONF=abort_on_bad_conf=1,bogus=1
fatal "unknown option 'bogus'" EBB_CONF=bogus=1,abort_on_bad_conf=1
fatal EBB_NO_SUCH_OPTION EBB_ABORT_ON_BAD_CONF=1 EBB_NO_SUCH_OPTION=1
try quiet "" EBB_CONF=abort_on_bad_conf=1,decay_ms=250

# EBB_VERBOSE=1: at start, the topology, every option's effective value and
# the reclaim backend, one "ebbmalloc:" line each, and nothing else
out=$(echo hi | env EBB_VERBOSE=1 EBB_CONF=purge=free EBB_DECAY_MS=250 LD_PRELOAD="$PRELOAD" tr h H 2>"$WORK/err")
vbad=0
[ "$out" = Hi ] || { echo "FAIL EBB_VERBOSE=1: output '$out'"; vbad=1; }
# the fastfree build says so on that line, the default build does not
build=
case ${PRELOAD##*/} in *fastfree*) build=' \(fastfree build: free does not read the block\)' ;; esac
grep -qE "^ebbmalloc: ebbmalloc [0-9]+\.[0-9]+$build, [0-9]+ NUMA nodes?, [0-9]+ cpus, [0-9]+ arena\(s\) per node\$" "$WORK/err" \
	|| { echo "FAIL EBB_VERBOSE=1: no topology line${build:+ naming the fastfree build}"; vbad=1; }
grep -qE '^ebbmalloc: reclaim backend: (vector|madvise|uring)$' "$WORK/err" || { echo "FAIL EBB_VERBOSE=1: no backend line"; vbad=1; }
for kv in verbose=1 decay_ms=250 purge=free reclaim=thread reclaim_backend=auto stats_file='(off)' \
	dirty_cap_pct=25 dirty_hold_ms=1000 huge_cache_bytes=33554432 arenas_per_node=0 numa=1 numa_fake=0 tcache_max_bytes=4194304 \
	tcache_total_bytes=134217728 tcache_adaptive=1 tcache_idle_ms=1000 stats=0 abort_on_bad_conf=0; do
	grep -qxF "ebbmalloc: option $kv" "$WORK/err" || { echo "FAIL EBB_VERBOSE=1: no line 'option $kv'"; vbad=1; }
done
n=$(grep -c . "$WORK/err")
[ "$n" = 21 ] || { echo "FAIL EBB_VERBOSE=1: $n lines on stderr, want 21 (topology, 19 options, backend)"; vbad=1; }
if [ $vbad = 0 ]; then echo "ok   EBB_VERBOSE=1: topology, 19 options, backend"; else cat "$WORK/err"; bad=$((bad + 1)); fi

[ $bad = 0 ] || fail "$bad option checks failed"
echo "options: every malformed or unknown EBB_* setting was named in one warning with the valid values; abort_on_bad_conf and EBB_VERBOSE work"
