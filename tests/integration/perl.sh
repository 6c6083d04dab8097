#!/usr/bin/env bash
# perl.sh - perl builds, nests, sorts and deletes from hashes of 150k keys;
# the printed digests must match glibc's.
. "$(dirname "$0")/lib.sh"
need perl

scenario() {
	perl "$INTEG_SRC/perl_work.pl"
}
run_both perl scenario 5
