#!/usr/bin/env bash
# decay.sh default|off - decay.c with default options (RSS must follow the
# live set within 2 x EBB_DECAY_MS) and with EBB_RECLAIM=off (it must not:
# proves the check can fail).
set -u
. "$(dirname "$0")/lib.sh"
case ${1:?usage: decay.sh default|off} in
default) LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/decay" expect-low ;;
off)     EBB_RECLAIM=off LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/decay" expect-high ;;
*) echo "unknown mode $1"; exit 1 ;;
esac
