#!/usr/bin/env bash
# dirty_cap.sh default|off - dirty_cap.c with the decay out of the way:
# dirty memory over the cap must be purged at once (default), and must not
# be with EBB_RECLAIM=off (proves the check can fail).
set -u
. "$(dirname "$0")/lib.sh"
case ${1:?usage: dirty_cap.sh default|off} in
default) EBB_DECAY_MS=600000 LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/dirty_cap" ;;
off)     EBB_DECAY_MS=600000 EBB_RECLAIM=off LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/dirty_cap" expect-none ;;
*) echo "unknown mode $1"; exit 1 ;;
esac
