#!/usr/bin/env bash
# ctl.sh - ebb_ctl in a running process (issue 7, point 1): ctl_live.c under
# LD_PRELOAD reads the options the environment set (EBB_DECAY_MS and
# EBB_CONF), sets live ones and reads them back, is refused (-EPERM,
# -ENOENT, -EINVAL) without a change; a decay_ms=0 set live purges memory a
# 1 h decay kept dirty; reclaim=off set live stops the reclaim thread's
# purges (malloc_trim still purges); stats=1 set live prints the report at
# exit, and stats=0 set live silences EBB_STATS=1. ebbmalloc only.
. "$(dirname "$0")/lib.sh"
check_preload
case ${PRELOAD##*/} in
libebbmalloc*) ;;
*) skip "ebb_ctl is ebbmalloc's; EBB_TEST_PRELOAD=${PRELOAD:-none} is another allocator" ;;
esac
bin=$INTEG_BUILD/ctl_live
[ -x "$bin" ] || fail "$bin is not built (make test-integration builds it)"
workdir ctl
bad=0
# live NAME WANT_REPORT(yes|no) ENV... -- ARGS...
live() {
	local name=$1 want=$2; shift 2
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	timeout 60 env "${envs[@]}" LD_PRELOAD="$PRELOAD" "$bin" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"
	local rc=$?
	sed 's/^/  /' "$WORK/$name.out"
	if [ $rc != 0 ]; then
		echo "FAIL $name: ctl_live $* exited $rc"; sed 's/^/  | /' "$WORK/$name.err"; bad=$((bad + 1)); return
	fi
	if [ "$want" = yes ] && ! grep -q '^ebbmalloc stats (' "$WORK/$name.err"; then
		echo "FAIL $name: no statistics report at exit"; bad=$((bad + 1)); return
	fi
	if [ "$want" = no ] && [ -s "$WORK/$name.err" ]; then
		echo "FAIL $name: stderr not empty:"; sed 's/^/  | /' "$WORK/$name.err"; bad=$((bad + 1)); return
	fi
	echo "ok   $name"
}
live read no EBB_DECAY_MS=3600000 EBB_CONF=purge=free,tcache_idle_ms=5000 -- read
live decay no EBB_DECAY_MS=3600000 -- decay
live off no EBB_DECAY_MS=100 -- off
live stats-on yes -- stats 1
live stats-off no EBB_STATS=1 -- stats 0
[ $bad = 0 ] || fail "$bad ebb_ctl checks failed"
echo "ctl: ebb_ctl reads, sets and refuses options in a running process, and live changes take effect"
