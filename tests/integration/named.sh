#!/usr/bin/env bash
# named.sh - ebbmalloc names its mappings where the kernel allows
# PR_SET_VMA_ANON_NAME and stays silent where it refuses (issue 7, point 4):
# named_maps.c under LD_PRELOAD checks /proc/self/maps either way and that errno
# survives; here stderr must be empty, and where the kernel refuses, strace
# must show ebbmalloc asking once or a few times (threads may race) and then
# never again, however many chunks it maps. ebbmalloc only.
. "$(dirname "$0")/lib.sh"
check_preload
case ${PRELOAD##*/} in
libebbmalloc*) ;;
*) skip "mapping names are ebbmalloc's; EBB_TEST_PRELOAD=${PRELOAD:-none} is another allocator" ;;
esac
bin=$INTEG_BUILD/named_maps
[ -x "$bin" ] || fail "$bin is not built (make test-integration builds it)"
workdir named
LD_PRELOAD="$PRELOAD" "$bin" > "$WORK/out" 2> "$WORK/err"; rc=$?
cat "$WORK/out"
[ $rc = 0 ] || fail "named exited $rc"
[ -s "$WORK/err" ] && { cat "$WORK/err"; fail "stderr not empty"; }
if grep -q 'kernel=no' "$WORK/out"; then
	command -v strace > /dev/null || skip "strace is not installed: cannot count the naming attempts (the rest passed)"
	# named_maps.c maps ten chunks and more, a huge block, caches: few attempts
	strace -f -e trace=prctl -o "$WORK/strace" env LD_PRELOAD="$PRELOAD" "$bin" > /dev/null 2>&1 \
		|| fail "named under strace failed"
	n=$(grep -c 'PR_SET_VMA_ANON_NAME, .*"ebbmalloc:' "$WORK/strace")
	e=$(grep 'PR_SET_VMA_ANON_NAME, .*"ebbmalloc:' "$WORK/strace" | grep -c EINVAL)
	echo "the kernel refuses names: ebbmalloc asked $n time(s), $e EINVAL"
	[ "$n" -ge 1 ] && [ "$n" -le 4 ] && [ "$n" = "$e" ] \
		|| fail "want 1..4 naming attempts, all EINVAL, then none; strace: $(grep -c . "$WORK/strace") lines"
fi
echo "named: ok"
