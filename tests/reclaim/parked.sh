#!/usr/bin/env bash
# parked.sh - issue 6's 1000 parked threads with default options.
set -u
. "$(dirname "$0")/lib.sh"
LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/parked"
