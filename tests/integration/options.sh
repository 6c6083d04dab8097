#!/usr/bin/env bash
# options.sh - DESIGN.md invariant 6 for options, end to end: a malformed or
# out-of-range value of an EBB_* variable, an unknown EBB_* variable or an
# unknown EBB_CONF key gets exactly one warning line on stderr, starting
# "ebbmalloc:" and naming the variable (or key), and the program still runs
# correctly on the defaults; valid settings print nothing. ebbmalloc only
# (the variables mean nothing to another allocator).
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
try warn EBB_PURGE EBB_PURGE=bogus
try warn EBB_DECAY_MS EBB_DECAY_MS=abc
try warn EBB_DECAY_MS EBB_DECAY_MS=-5
try warn EBB_DECAY_MS EBB_DECAY_MS=99999999999
try warn EBB_RECLAIM_BACKEND EBB_RECLAIM_BACKEND=nope
try warn EBB_RECLAIM EBB_RECLAIM=sometimes
try warn bogus EBB_CONF=bogus=1
try warn EBB_NO_SUCH_OPTION EBB_NO_SUCH_OPTION=1
[ $bad = 0 ] || fail "$bad option checks failed"
echo "options: every malformed or unknown EBB_* setting was named in one warning"
