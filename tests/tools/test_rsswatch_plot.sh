#!/usr/bin/env bash
# test_rsswatch_plot.sh - rsswatch --plot draws several recordings on one
# chart as PNG and SVG with gnuplot: real files with the right signatures,
# every run's label in the SVG, active and dirty drawn for runs that have
# them. Skipped only when gnuplot is not installed (apt-get install
# gnuplot-nox); then rsswatch must say so.
. "$(dirname "$0")/lib.sh"

if ! command -v gnuplot > /dev/null; then
	PATH=/nonexistent "$RSSWATCH" --plot "$T/p.png" /dev/null 2> "$T/e"
	grep -q gnuplot-nox "$T/e" || { echo "rsswatch does not say gnuplot is missing"; exit 1; }
	echo "skip: gnuplot not installed (apt-get install gnuplot-nox)"; exit 77
fi
"$RSSWATCH" -i 50 -o "$T/glibc.csv" --label glibc-run -- "$HEAPLOAD" touch 100 2> /dev/null \
	|| fail "recording glibc-run"
printf '# rsswatch label=ebb-run pid=1 cmd=x\ntime_s,rss_kib,active_kib,dirty_kib\n0.000,1000,,\n0.500,50000,40000,100\n1.000,60000,50000,200\n' > "$T/ebb.csv"
"$RSSWATCH" --plot "$T/runs.png" --title "two runs" "$T/glibc.csv" "$T/ebb.csv" > "$T/out" 2>&1; rc=$?
[ $rc = 0 ] && ok "--plot exits 0" || fail "--plot rc $rc: $(cat "$T/out")"
[ "$(head -c 8 "$T/runs.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && [ "$(stat -c %s "$T/runs.png")" -gt 2000 ] \
	&& ok "runs.png is a PNG" || fail "runs.png missing or not a PNG"
grep -q '<svg' "$T/runs.svg" 2>/dev/null && ok "runs.svg is an SVG" || fail "runs.svg missing or not SVG"
for l in "glibc-run RSS" "ebb-run RSS" "ebb-run active" "ebb-run dirty" "two runs"; do
	grep -q "$l" "$T/runs.svg" 2>/dev/null && ok "SVG shows '$l'" || fail "SVG lacks '$l'"
done
grep -qE 'glibc-run (active|dirty)' "$T/runs.svg" && fail "glibc-run has no active/dirty columns but got a line" || ok "no active/dirty line without data"
"$RSSWATCH" --plot "$T/n.png" "$T/missing.csv" 2> "$T/e2"; rc=$?
[ $rc != 0 ] && grep -q missing.csv "$T/e2" && ok "missing CSV refused" || fail "missing CSV: rc $rc"
finish
