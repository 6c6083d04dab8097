#!/usr/bin/env bash
# fork_busy.sh auto|uring|vector|madvise - fork_busy.c with that reclaim
# backend (uring: the child must build a ring of its own).
set -u
. "$(dirname "$0")/lib.sh"
EBB_RECLAIM_BACKEND=${1:-auto} LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/fork_busy"
