#!/usr/bin/env bash
# idle_canary.sh - idle_canary.c with the idle-flush protocol forced to run
# continuously (EBB_TCACHE_IDLE_MS=1) and every free page purged at once
# (EBB_DECAY_MS=0).
set -u
. "$(dirname "$0")/lib.sh"
EBB_TCACHE_IDLE_MS=1 EBB_DECAY_MS=0 LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/idle_canary"
