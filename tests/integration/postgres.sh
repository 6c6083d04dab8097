#!/usr/bin/env bash
# postgres.sh - a PostgreSQL server (15 on Debian 12; the postmaster forks
# a backend per connection and never execs it: fork safety in a real
# daemon) builds a
# table of a million rows, sorts it, hash-joins it with itself, groups it
# into JSON, then serves pgbench (4 clients, 2 threads, 2,000
# transactions). Query digests and row counts must match glibc's, and the
# preloaded postmaster must have the library mapped. As root the server
# runs as the postgres user (it refuses root).
. "$(dirname "$0")/lib.sh"
# the newest installed server (Debian 12: 15)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/postgres" ] \
	|| fail "no PostgreSQL server in /usr/lib/postgresql (make test-integration installs Debian's postgresql when run as root)"

# as_pg CMD...: run CMD as the server's user, preloading PG_PRELOAD
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		# runuser itself, and env once it is the postgres user, load no
		# library the postgres user could not read
		env -u LD_PRELOAD runuser -u postgres -- env LD_PRELOAD="$PG_PRELOAD" "$@"
	else
		"$@"
	fi
}

# scenario_in TOP: the run, with the server's directory under TOP
scenario_in() {
	local top=$1 port=$((20000 + RANDOM % 20000)) rc=0 d
	PG_PRELOAD=${LD_PRELOAD:-}
	if [ "$(id -u)" = 0 ]; then
		# the postgres user may not reach this checkout (root's home is
		# 0700 on Debian): a copy of the library under test goes there
		# too, readable
		chmod 755 "$top"
		if [ -n "$PG_PRELOAD" ]; then
			cp "$PG_PRELOAD" "$top/" && PG_PRELOAD=$top/${PG_PRELOAD##*/} && chmod 644 "$PG_PRELOAD" || return 1
		fi
		mkdir -p "$top/data" && chown postgres "$top/data"
	fi
	d=$top/data
	mkdir -p "$d"
	as_pg $PGBIN/initdb -D "$d" -A trust --no-sync >initdb.log 2>&1 || { cat initdb.log >&2; return 1; }
	as_pg $PGBIN/pg_ctl -D "$d" -l "$d/server.log" -w \
		-o "-k $d -p $port -c listen_addresses= -c fsync=off -c work_mem=64MB" start >/dev/null || {
		cat "$d/server.log" >&2; return 1; }
	q() { as_pg $PGBIN/psql -h "$d" -p "$port" -d postgres -v ON_ERROR_STOP=1 -qAt -c "$1"; }
	{
		q "create table t as select g as id, md5(g::text) as h, (g::bigint * 7919) % 100000 as k from generate_series(1, 1000000) g" &&
		q "select md5(string_agg(h, ',' order by h)) from t" &&
		q "select count(*), sum(k) from t a join t b using (k) where a.id < 200000" &&
		q "select md5(json_agg(x)::text) from (select k, count(*) c, array_agg(id order by id) ids from t where id < 300000 group by k order by k) x" &&
		as_pg $PGBIN/pgbench -h "$d" -p "$port" -i -s 5 -q postgres >/dev/null 2>&1 &&
		as_pg $PGBIN/pgbench -h "$d" -p "$port" -c 4 -j 2 -t 500 postgres 2>&1 | grep -E '^number of (transactions actually processed|failed)' &&
		q "select count(*), count(distinct aid) > 1000 from pgbench_history" &&
		q "select count(*) from pgbench_accounts"
	} || rc=1
	# the postmaster (and so every backend it forked) runs the library under test
	local pid maps
	pid=$(head -n 1 "$d/postmaster.pid")
	maps=$(cat /proc/"$pid"/maps)
	if [ -n "$PG_PRELOAD" ]; then
		grep -qF "$PG_PRELOAD" <<<"$maps" && echo "postmaster: runs the allocator under test" || rc=1
	else
		grep -q ebbmalloc <<<"$maps" && rc=1 || echo "postmaster: runs the allocator under test"
	fi
	as_pg $PGBIN/pg_ctl -D "$d" -w -m fast stop >/dev/null || rc=1
	grep -E 'terminated by signal|PANIC|ebbmalloc' "$d/server.log" >&2 && rc=1
	return $rc
}

scenario() {
	local top rc
	# the server's directory (and its socket, whose path may not exceed
	# 107 bytes: a deep checkout's would) in a fresh directory under /tmp,
	# removed however the run ends
	top=$(mktemp -d "${TMPDIR:-/tmp}/ebb-pg.XXXXXX") || return 1
	scenario_in "$top"
	rc=$?
	rm -rf "$top"
	return $rc
}
run_both postgres scenario 8
