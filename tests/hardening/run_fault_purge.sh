#!/usr/bin/env bash
# run_fault_purge.sh BIN - fault_purge for each reclaim backend and each kind
# of failure: errnos that mean "this backend cannot work here" (fallback
# expected) and transient ones (no fallback), every call or at random.
# Exit 1 if any case fails, 77 only if no backend could be tested at all.
set -u
bin=$1
fail=0; ran=0
for be in vector madvise uring; do
	for rule in 1-/EPERM 1-/ENOSYS 1-/EINVAL 2-/EOPNOTSUPP 1-/EAGAIN rand:0.5/EBUSY rand:0.3/EINVAL; do
		out=$(EBB_RECLAIM_BACKEND=$be EBB_DECAY_MS=0 "$bin" "$be" "$rule" 2>&1)
		rc=$?
		case $rc in
		0)  ran=$((ran+1)); echo "$out" | grep -v '^ebbmalloc:' | head -1 ;;
		77) echo "skip $be $rule: $(echo "$out" | tail -n1)" ;;
		*)  fail=1; echo "FAIL $be $rule (exit $rc):"; echo "$out" | tail -n 15 ;;
		esac
	done
done
[ $fail = 0 ] || exit 1
[ $ran -gt 0 ] || { echo "no reclaim backend usable here"; exit 77; }
echo "fault_purge: $ran cases passed"
