#!/usr/bin/env bash
# startup.sh - the preloaded library at process start-up (no recursion, no
# deadlock): /bin/true, a program whose constructors malloc, dlsym and dlopen
# before main (ctor_dlsym.c), a shell pipeline, ls, and env -i (an empty
# environment). Each must exit 0 with nothing on stderr, within 20 s.
. "$(dirname "$0")/lib.sh"
check_preload
[ -n "$PRELOAD" ] || PRELOAD=""
bin=$INTEG_BUILD/ctor_dlsym
[ -x "$bin" ] || fail "$bin is not built (make test-integration builds it)"
workdir startup
n=0
run() {	# run WANT_STDOUT CMD...: preloaded, 20 s at most
	local want=$1; shift
	n=$((n + 1))
	timeout 20 env LD_PRELOAD="$PRELOAD" "$@" >"$WORK/$n.out" 2>"$WORK/$n.err"
	local rc=$?
	[ $rc = 124 ] && fail "'$*' hung for 20 s under LD_PRELOAD (a deadlock at start-up?)"
	[ $rc = 0 ] || { cat "$WORK/$n.err"; fail "'$*' exited $rc under LD_PRELOAD=$PRELOAD"; }
	[ -s "$WORK/$n.err" ] && { cat "$WORK/$n.err"; fail "'$*' wrote to stderr under LD_PRELOAD"; }
	if [ -n "$want" ] && [ "$(cat "$WORK/$n.out")" != "$want" ]; then
		fail "'$*' printed '$(head -c 200 "$WORK/$n.out")', want '$want'"
	fi
	echo "ok: $*"
}
run "" /bin/true
run ok "$bin"
run "ok" env -i LD_PRELOAD="$PRELOAD" "$bin"
run "3" sh -c 'printf "a\nb\nc\n" | sort -r | wc -l'
run "" ls /
run "done" bash -c 'for i in 1 2 3 4 5 6 7 8; do ( echo $i > /dev/null ) & done; wait; echo done'
echo "startup: all $n start-up runs clean under ${PRELOAD:-glibc}"
