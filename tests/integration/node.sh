#!/usr/bin/env bash
# node.sh - Node.js (V8's heap, its zlib, crypto and Buffer memory through
# malloc, a worker thread of its own) builds, trims and hashes a Map of
# 300k entries with strings and Buffers, deflates and inflates them, and
# JSON-round-trips a slice; the digests must match glibc's.
. "$(dirname "$0")/lib.sh"
need node

scenario() {
	node "$INTEG_SRC/node_work.js"
}
run_both node scenario 3
