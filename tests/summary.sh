#!/usr/bin/env bash
# summary.sh DIR - add up the suites of one `make test` run; exit 1 if any failed.
set -u
dir=$1
p=0; f=0; s=0
for r in "$dir"/*; do
	[ -f "$r" ] || continue
	p=$((p + $(grep -c '^pass ' "$r"))); f=$((f + $(grep -c '^fail ' "$r"))); s=$((s + $(grep -c '^skip ' "$r")))
	grep '^fail ' "$r" | sed "s|^fail |  failed in $(basename "$r"): |"
done
echo "$p passed, $f failed, $s skipped"
[ $f -eq 0 ] && [ $p -gt 0 ]
