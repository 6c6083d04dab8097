#!/usr/bin/env bash
# git.sh - git init, 12 commits over ~1500 generated files (adds, edits,
# renames, deletions), gc, repack -adf, fsck --full --strict; with fixed
# author/committer/dates the commit and tree hashes are fixed, so the
# printed log and object listing must match glibc's byte for byte.
. "$(dirname "$0")/lib.sh"
need git awk

scenario() {
	export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
	export GIT_AUTHOR_NAME=ebb GIT_AUTHOR_EMAIL=ebb@example.org
	export GIT_COMMITTER_NAME=ebb GIT_COMMITTER_EMAIL=ebb@example.org
	git init -q -b main repo || return 1
	cd repo || return 1
	git config gc.auto 0
	git config pack.threads 2
	mkdir -p d0/s0 d0/s1 d0/s2 d0/s3 || return 1
	for i in 1 2 3 4 5 6 7 8; do cp -r d0 "d$i"; done
	for c in $(seq 1 12); do
		awk -v c="$c" 'BEGIN {
			srand(c)
			for (f = 0; f < 125; f++) {
				d = "d" (f % 9) "/s" (c % 4)
				path = d "/f" c "_" f ".txt"
				for (l = 0; l < 20 + f % 50; l++)
					printf "commit %d file %d line %d %d\n", c, f, l, int(rand() * 1000000) > path
				close(path)
			}
		}' || return 1
		if [ "$c" -gt 1 ]; then	# edit, rename and delete files of earlier commits
			p=$((c - 1))
			for f in 0 10 20 30 40; do echo "edit $c" >> "d$((f % 9))/s$((p % 4))/f${p}_$f.txt"; done
			git mv "d1/s$((p % 4))/f${p}_1.txt" "d1/s$((p % 4))/renamed_$c.txt" || return 1
			git rm -q "d2/s$((p % 4))/f${p}_2.txt" || return 1
		fi
		git add -A || return 1
		GIT_AUTHOR_DATE="@$((1700000000 + c * 3600)) +0000" GIT_COMMITTER_DATE="@$((1700000000 + c * 3600)) +0000" \
			git commit -q -m "commit $c" || return 1
	done
	git gc -q || return 1
	git repack -q -a -d -f --window=20 || return 1
	git fsck --full --strict --no-progress 2>&1 || return 1
	git log --format='%H %T %s'
	git cat-file --batch-all-objects --batch-check | sort | sha256sum | sed 's/-$/objects/'
	git count-objects -v | grep -E '^(count|in-pack|garbage):'
	git diff --stat HEAD~5 HEAD | tail -n 1
}
run_both git scenario 14
