#!/usr/bin/env bash
# inv2.sh MODE - DESIGN.md invariant 2 under strace -f.
#
# MODE uring|vector|madvise: EBB_RECLAIM_BACKEND=MODE with the reclaim thread
# on (default). Every madvise, process_madvise, io_uring_enter and
# io_uring_setup in the trace must come from the thread named ebb-reclaim,
# none from an application thread (main, workers) or an unknown thread, and
# the trace must hold purge syscalls of that backend (otherwise it proves
# nothing): io_uring_enter for uring, process_madvise for vector, madvise
# MADV_DONTNEED for madvise.
# MODE inline: EBB_RECLAIM=inline, the converse: there is no ebb-reclaim
# thread and application threads make the purge syscalls.
set -u
. "$(dirname "$0")/lib.sh"
mode=${1:?usage: inv2.sh uring|vector|madvise|inline}
command -v strace >/dev/null || { echo "strace is not installed"; exit 77; }
# ptrace may be forbidden (containers, yama): that is the machine, not us
strace -f -qq -o /dev/null /bin/true 2>/dev/null || { echo "strace cannot trace here (ptrace refused)"; exit 77; }

envs=()
case $mode in
uring|vector|madvise) envs=(-E EBB_RECLAIM_BACKEND=$mode) ;;
inline) envs=(-E EBB_RECLAIM=inline) ;;
*) echo "unknown mode $mode"; exit 1 ;;
esac
trace=$RT_TMP/trace
out=$RT_TMP/out
strace -f -qq -e trace=madvise,process_madvise,io_uring_enter,io_uring_setup \
	-o "$trace" -E LD_PRELOAD="$RECLAIM_LIB" "${envs[@]}" \
	"$RECLAIM_BIN/inv2_churn" > "$out" 2>&1
rc=$?
cat "$out"
if [ $rc != 0 ]; then
	echo "FAIL: the churn program exited $rc"
	exit 1
fi
backend=$(awk '$1 == "backend" { print $2 }' "$out")
if [ "$mode" != inline ] && [ "$backend" != "$mode" ]; then
	# only a kernel that lacks the backend excuses a fallback
	if [ "$mode" = uring ] && [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" != 0 ]; then
		echo "io_uring is disabled by sysctl here (kernel.io_uring_disabled)"; exit 77
	fi
	kv=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
	if [ "$mode" = vector ] && [ "$kv" -lt 6013 ]; then
		echo "process_madvise(MADV_DONTNEED) needs Linux >= 6.13 (this is $(uname -r))"; exit 77
	fi
	echo "FAIL: asked for backend $mode, ebb_stats says '$backend'"
	exit 1
fi

# Attribute each syscall (the "<... resumed>" halves are not counted twice).
awk -v mode="$mode" '
	FNR == NR {
		if ($1 == "app") app[$2] = 1
		if ($1 == "reclaim") rec[$2] = 1
		next
	}
	{
		tid = $1
		if ($2 ~ /^<\.\.\./) next
		if (!match($2, /^[a-z_]+\(/)) next
		name = substr($2, 1, RLENGTH - 1)
		purge = 0
		if (name == "madvise") {
			adv = $0; sub(/^[^,]*,[^,]*, */, "", adv); sub(/[),].*$/, "", adv)
			if (adv == "MADV_DONTNEED" || adv == "MADV_FREE") { purge = 1; nadv[adv]++ }
		} else if (name != "io_uring_setup") {
			purge = 1
		}
		count[name]++; total++
		who = (tid in rec) ? "reclaim" : (tid in app) ? "app" : "unknown"
		by[who " " name]++
		if (who != "reclaim" && mode != "inline" && nbad < 10) {
			print "  not on ebb-reclaim (" who " thread " tid "): " $0
		}
		if (who != "reclaim") nbad++
		if (purge) purges[who]++
	}
	END {
		for (k in by) printf("  %-28s %d\n", k, by[k])
		for (k in nadv) printf("  madvise %s: %d\n", k, nadv[k])
		nrec = 0; for (t in rec) nrec++
		if (mode == "inline") {
			if (nrec) { print "FAIL: EBB_RECLAIM=inline but a thread is named ebb-reclaim"; exit 1 }
			if (purges["app"] + 0 == 0) { print "FAIL: EBB_RECLAIM=inline and no application thread made a purge syscall"; exit 1 }
			printf("inline: %d purge syscalls, all on application threads\n", purges["app"])
			exit 0
		}
		if (nrec != 1) { printf("FAIL: %d threads named ebb-reclaim (want 1)\n", nrec); exit 1 }
		if (nbad) { printf("FAIL: %d reclaim syscalls outside the ebb-reclaim thread\n", nbad); exit 1 }
		want = mode == "uring" ? "io_uring_enter" : mode == "vector" ? "process_madvise" : "madvise"
		if (want == "madvise") n = nadv["MADV_DONTNEED"] + nadv["MADV_FREE"]; else n = count[want]
		if (n == 0) { printf("FAIL: no %s purge syscall in the trace: the test proves nothing\n", want); exit 1 }
		printf("%s: %d %s purge syscalls, all %d traced syscalls on ebb-reclaim\n", mode, n, want, total)
	}' "$out" "$trace"
