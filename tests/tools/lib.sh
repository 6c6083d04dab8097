# tests/tools/lib.sh - shared by the tools tests (sourced, not run).
#
# Gives: $B (absolute build dir), $T (a private temp dir, removed at exit),
# the tool and helper paths, fail/pass helpers, and start_held: start a
# helper whose stdin is a fifo we hold open, so it lives until we close it
# (end_held) and never outlives the test.
set -u
B=$(cd "${BUILD:-build}" 2>/dev/null && pwd) || { echo "no build dir ${BUILD:-build}"; exit 1; }
T=$(mktemp -d /tmp/ebb-tools-test.XXXXXX)
EBBRUN=$B/tools/ebbrun
EBBSTAT=$B/tools/ebbstat
DOCTOR=$B/tools/ebb-doctor
RSSWATCH=$B/tools/rsswatch
HEAPLOAD=$B/tests/tools/heapload
FAKEW=$B/tests/tools/fake_statswriter
NOOPLIB=$B/tests/tools/libnoop.so
LIBDIR=/usr/lib/x86_64-linux-gnu
unset EBBRUN_LIB EBB_CONF EBB_STATS_FILE MALLOC_ARENA_MAX LD_PRELOAD
failures=0
held_pids=()
held_fds=()

cleanup() {
	local fd p
	for fd in "${held_fds[@]}"; do eval "exec $fd>&-" 2>/dev/null; done
	for p in "${held_pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
check() {	# check DESCRIPTION COMMAND... : ok if the command succeeds
	local what=$1; shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
	if [ "$failures" -ne 0 ]; then echo "$failures check(s) failed"; exit 1; fi
	echo "all checks passed"; exit 0
}

# close_held_fds: for a subshell that starts a long-lived process
close_held_fds() {
	local fd
	for fd in "${held_fds[@]}"; do eval "exec $fd>&-"; done
}

# start_held NAME CMD...: runs CMD with stdin from a fifo held open by us,
# stdout in $T/NAME.out; sets HELD_PID. The command ends when end_held NAME
# closes the fifo (the helpers exit at EOF on stdin).
start_held() {
	local name=$1 fd; shift
	mkfifo "$T/$name.fifo"
	# the command must not hold the other helpers' fifos open (it would
	# keep them alive past their end_held): close them, then exec
	( close_held_fds; exec "$@" ) < "$T/$name.fifo" > "$T/$name.out" 2> "$T/$name.err" &
	HELD_PID=$!
	exec {fd}> "$T/$name.fifo"
	held_fds+=("$fd")
	held_pids+=("$HELD_PID")
	eval "held_fd_$name=$fd"
}
end_held() {
	local name=$1 fdvar="held_fd_$1" pid=$2
	eval "exec ${!fdvar}>&-"
	wait "$pid" 2>/dev/null
}

# wait_line FILE PATTERN: until FILE has a line matching PATTERN (or ~90 s,
# generous for a JVM on a loaded machine: a helper that never gets there
# has failed, and the check says so).
wait_line() {
	local i
	for i in $(seq 900); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# jnum FILE KEY: the number of a top-level "  \"KEY\": N," line of our JSON
jnum() { sed -n "s/^  \"$2\": \(-\?[0-9][0-9]*\),\?\$/\1/p" "$1" | head -n1; }
# jstr FILE KEY: the string of a top-level "  \"KEY\": \"S\"," line
jstr() { sed -n "s/^  \"$2\": \"\(.*\)\",\?\$/\1/p" "$1" | head -n1; }
