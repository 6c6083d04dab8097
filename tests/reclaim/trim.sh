#!/usr/bin/env bash
# trim.sh MODE - malloc_trim(0) drops RSS (trim_rss.c) under LD_PRELOAD.
#   default  default options (the reclaim thread may purge part first)
#   decay    EBB_DECAY_MS=3600000: nothing decays; the reclaim thread still
#            purges beyond the dirty cap, malloc_trim the rest
#   off      EBB_RECLAIM=off EBB_DECAY_MS=3600000: only malloc_trim purges,
#            and the program checks RSS had not fallen before it
set -u
. "$(dirname "$0")/lib.sh"
case ${1:?usage: trim.sh default|decay|off} in
default) LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/trim_rss" ;;
decay)   EBB_DECAY_MS=3600000 LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/trim_rss" ;;
off)     EBB_RECLAIM=off EBB_DECAY_MS=3600000 LD_PRELOAD=$RECLAIM_LIB exec "$RECLAIM_BIN/trim_rss" before-trim-resident ;;
*) echo "unknown mode $1"; exit 1 ;;
esac
