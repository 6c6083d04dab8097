-- sqlite.sql - run by tests/integration/sqlite.sh: 100k rows, indexes,
-- joins, grouping, sorting, updates and deletes, an integrity check.
PRAGMA cache_size = -65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 100000)
INSERT INTO t SELECT x, (x * 7919) % 1000, printf('row-%d-%s', x, hex(x * x)), x / 8.0 FROM s;
CREATE INDEX ta ON t(a);
CREATE INDEX tb ON t(b);
SELECT count(*), sum(a), min(b), max(b), sum(c) FROM t;
SELECT a, count(*), sum(c) FROM t GROUP BY a ORDER BY a LIMIT 10;
SELECT id, a, b FROM t WHERE b LIKE 'row-4242%' ORDER BY id;
SELECT id FROM t WHERE a = 123 ORDER BY id DESC LIMIT 5;
CREATE TABLE u AS SELECT a, group_concat(id, ',') AS g FROM t GROUP BY a;
SELECT a, length(g) FROM u ORDER BY length(g) DESC, a LIMIT 5;
SELECT count(*), sum(t.id % 97) FROM t JOIN u USING (a);
UPDATE t SET b = upper(b) || '-' || printf('%08x', id * 2654435761 % 4294967296) WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(b)), total(c) FROM t;
SELECT b FROM t ORDER BY b DESC LIMIT 5;
SELECT substr(b, 1, 6) AS p, count(*) FROM t GROUP BY p ORDER BY 2 DESC, 1 LIMIT 5;
CREATE TABLE w AS SELECT id, group_concat(b) OVER (ORDER BY id ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS win FROM t WHERE id < 20000;
SELECT count(*), sum(length(win)) FROM w;
VACUUM;
PRAGMA integrity_check;
