#!/usr/bin/env bash
# sort.sh - coreutils sort on ~6 MB of generated lines: plain, numeric by a
# field, unique, reverse, and with a small buffer and two threads so it
# spills to temporary files and merges. Checksums must match glibc's.
. "$(dirname "$0")/lib.sh"
need sort awk sha256sum

scenario() {
	export LC_ALL=C
	awk 'BEGIN {
		srand(7)
		for (i = 0; i < 220000; i++)
			printf "%s,%d,%06x,%s\n", substr("abcdefghijklmnopqrstuvwxyz", 1 + int(rand() * 26), 1 + int(rand() * 8)), int(rand() * 1000000), i, (i % 13 ? "item" i % 977 : "x")
	}' > data.txt || return 1
	wc -lc < data.txt
	sort data.txt | sha256sum | sed 's/-$/plain/'
	sort -t, -k2,2n -k3,3 data.txt | sha256sum | sed 's/-$/numeric/'
	sort -u -t, -k4,4 data.txt | sha256sum | sed 's/-$/unique/'
	sort -r data.txt | sha256sum | sed 's/-$/reverse/'
	mkdir -p tmp
	sort -S 256K --parallel=2 -T tmp -t, -k1,1 -k2,2n data.txt | sha256sum | sed 's/-$/spilled/'
	sort -S 256K -m <(sort -t, -k3,3 data.txt) <(sort -t, -k3,3 data.txt) | sha256sum | sed 's/-$/merged/'
}
run_both sort scenario 7
