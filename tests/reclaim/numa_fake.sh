#!/usr/bin/env bash
# numa_fake.sh on|off - numa_fake.c on EBB_NUMA_FAKE=2 (on), and with
# EBB_NUMA=off as well (off: one node).
set -u
. "$(dirname "$0")/lib.sh"
case ${1:?usage: numa_fake.sh on|off} in
on)  EBB_NUMA_FAKE=2 exec "$RECLAIM_BIN/numa_fake" on ;;
off) EBB_NUMA=off EBB_NUMA_FAKE=2 exec "$RECLAIM_BIN/numa_fake" off ;;
*) echo "unknown mode $1"; exit 1 ;;
esac
