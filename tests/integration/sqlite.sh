#!/usr/bin/env bash
# sqlite.sh - sqlite3 runs sqlite.sql on a database file (100k rows inserted,
# indexed, queried, updated, vacuumed); its output must match glibc's.
. "$(dirname "$0")/lib.sh"
need sqlite3

scenario() {
	sqlite3 -batch -bail test.db < "$INTEG_SRC/sqlite.sql"
}
run_both sqlite scenario 30
