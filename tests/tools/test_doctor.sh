#!/usr/bin/env bash
# test_doctor.sh - ebb-doctor on real processes.
#
# glibc: heapload starts 32 threads that each malloc 2 MiB in 256-byte
# pieces while all alive, which makes glibc create arenas (8 x CPUs at most).
# heapload itself reports how many distinct 64 MiB heaps its threads' blocks
# live in (from its own pointers): ebb-doctor must find exactly that many
# glibc arena heaps, with their RSS, with and without reading heap headers,
# and recommend ebbrun / MALLOC_ARENA_MAX. When the threads free 9 blocks in
# 10, its walk of the arenas' free lists must find the bytes heapload says
# it freed. With MALLOC_ARENA_MAX=2 it must find one heap. Under jemalloc,
# tcmalloc and mimalloc (LD_PRELOAD; tests/tools/tools.mk installs them) and
# ebbmalloc it must name that allocator and find no glibc arena heaps;
# ebbmalloc linked in statically (libebbmalloc.a) must be recognised too.
. "$(dirname "$0")/lib.sh"

check "--help exits 0 with usage" bash -c "'$DOCTOR' --help | grep -q '^usage: ebb-doctor'"

# glibc with many arenas
start_held g "$HEAPLOAD" arenas 32 2048
pid=$HELD_PID
if wait_line "$T/g.out" '^ready'; then
	heaps=$(sed -n 's/^ready heaps=\([0-9]*\) .*/\1/p' "$T/g.out")
	inarenas=$(sed -n 's/.*in_arenas=\([0-9]*\).*/\1/p' "$T/g.out")
	echo "heapload: $heaps arena heaps, $inarenas threads in them"
	"$DOCTOR" --json $pid > "$T/g.json"
	"$DOCTOR" --json --shape-only $pid > "$T/gs.json"
	"$DOCTOR" $pid > "$T/g.txt"
	[ "$(jstr "$T/g.json" allocator)" = glibc ] && ok "allocator glibc" || fail "allocator '$(jstr "$T/g.json" allocator)'"
	[ "${heaps:-0}" -ge 2 ] && ok "heapload made $heaps arena heaps" || fail "heapload made only '$heaps' arena heaps"
	n=$(jnum "$T/g.json" arena_heaps)
	[ "$n" = "$heaps" ] && ok "ebb-doctor finds $n arena heaps" || fail "ebb-doctor found '$n' arena heaps, heapload has $heaps"
	n=$(jnum "$T/gs.json" arena_heaps)
	[ "$n" = "$heaps" ] && ok "--shape-only finds $n arena heaps" || fail "--shape-only found '$n', want $heaps"
	n=$(jnum "$T/g.json" arenas)
	[ "$n" = "$heaps" ] && ok "$n arenas (one heap each)" || fail "arenas '$n', want $heaps"
	rss=$(jnum "$T/g.json" arena_heaps_rss_kib)
	want=$((inarenas * 2048))
	[ "${rss:-0}" -ge "$want" ] && ok "arena heaps RSS $rss KiB >= $want KiB touched in them" \
		|| fail "arena heaps RSS '$rss' KiB < $want KiB"
	grep -q "glibc arena heaps: $heaps in $heaps arenas" "$T/g.txt" && ok "text names the heaps" || fail "text: $(grep 'arena heaps' "$T/g.txt")"
	grep -q "^finding: $heaps glibc arena heaps hold" "$T/g.txt" && grep -q '^try: ebbrun -- .*heapload arenas 32 2048' "$T/g.txt" \
		&& grep -q 'MALLOC_ARENA_MAX=2' "$T/g.txt" && ok "finding and recommendation" \
		|| { fail "no finding/recommendation"; cat "$T/g.txt"; }
	fr=$(jnum "$T/g.json" arena_free_bytes); sys=$(jnum "$T/g.json" arena_system_bytes)
	grep -q '"arena_walk_ok": true' "$T/g.json" && [ "${sys:-0}" -gt 0 ] && [ $((fr * 20)) -lt "$sys" ] \
		&& ok "nothing freed: free chunks $fr of $sys bytes (< 5%)" || fail "nothing freed, yet free chunks '$fr' of '$sys'"
else
	fail "heapload arenas never got ready: $(cat "$T/g.err")"
fi
end_held g $pid

# fragmentation: the threads free 9 blocks in 10; the walk of the arenas'
# free lists must find what they freed (less their tcaches: 7 chunks each)
start_held f "$HEAPLOAD" arenas 32 2048 10
pid=$HELD_PID
if wait_line "$T/f.out" '^ready'; then
	inarenas=$(sed -n 's/.*in_arenas=\([0-9]*\).*/\1/p' "$T/f.out")
	freed=$(sed -n 's/.*freed=\([0-9]*\).*/\1/p' "$T/f.out")
	"$DOCTOR" --json $pid > "$T/f.json"
	"$DOCTOR" $pid > "$T/f.txt"
	fr=$(jnum "$T/f.json" arena_free_bytes); top=$(jnum "$T/f.json" arena_top_bytes); sys=$(jnum "$T/f.json" arena_system_bytes)
	lo=$((freed - inarenas * 7 * 272 - 65536))
	echo "heapload freed $freed bytes in arenas; ebb-doctor: free $fr + top $top of $sys"
	grep -q '"arena_walk_ok": true' "$T/f.json" && ok "arena free lists walked" || fail "arena walk not ok"
	[ $((fr + top)) -ge $lo ] && [ $((fr + top)) -le "$sys" ] && ok "free chunks $((fr + top)) in [$lo, $sys]" \
		|| fail "free chunks $fr + top $top not in [$lo, $sys]"
	grep -q 'That is fragmentation, not live data' "$T/f.txt" && ok "fragmentation named in the finding" \
		|| { fail "no fragmentation finding"; grep -A8 '^finding' "$T/f.txt"; }
	grep -q '"main_arena_found": true' "$T/f.json" && ok "main arena found through the arena ring" || fail "main arena not found"
else
	fail "heapload arenas (keep 10) never got ready: $(cat "$T/f.err")"
fi
end_held f $pid

# MALLOC_ARENA_MAX=2: the main arena and one more
start_held m env MALLOC_ARENA_MAX=2 "$HEAPLOAD" arenas 16 256
pid=$HELD_PID
if wait_line "$T/m.out" '^ready'; then
	heaps=$(sed -n 's/^ready heaps=\([0-9]*\) .*/\1/p' "$T/m.out")
	"$DOCTOR" --json $pid > "$T/m.json"
	n=$(jnum "$T/m.json" arena_heaps)
	[ "$heaps" = 1 ] && [ "$n" = 1 ] && ok "MALLOC_ARENA_MAX=2: 1 arena heap" || fail "MALLOC_ARENA_MAX=2: heapload $heaps, doctor '$n'"
	[ "$(jnum "$T/m.json" arena_limit)" = 2 ] && ok "arena limit read from MALLOC_ARENA_MAX" || fail "arena_limit $(jnum "$T/m.json" arena_limit)"
else
	fail "heapload (MALLOC_ARENA_MAX=2) never got ready"
fi
end_held m $pid

# other allocators, preloaded
for spec in jemalloc:libjemalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4 mimalloc:libmimalloc.so.2; do
	name=${spec%%:*}; lib=$LIBDIR/${spec#*:}
	if [ ! -e "$lib" ]; then fail "$lib not installed: cannot check $name (apt-get install ${spec#*:}, or make test as root)"; continue; fi
	start_held "$name" env LD_PRELOAD="$lib" "$HEAPLOAD" arenas 8 512
	pid=$HELD_PID
	if wait_line "$T/$name.out" '^ready'; then
		"$DOCTOR" --json $pid > "$T/$name.json"
		"$DOCTOR" $pid > "$T/$name.txt"
		a=$(jstr "$T/$name.json" allocator); n=$(jnum "$T/$name.json" arena_heaps)
		[ "$a" = "$name" ] && [ "$n" = 0 ] && grep -q '"preloaded": true' "$T/$name.json" \
			&& grep -q "^finding: $name serves malloc" "$T/$name.txt" \
			&& ok "$name: allocator $a, preloaded, 0 glibc arena heaps" || fail "$name: allocator '$a', arena heaps '$n'"
	else
		fail "heapload under $name never got ready: $(cat "$T/$name.err")"
	fi
	end_held "$name" $pid
done

# ebbmalloc, through ebbrun
if [ -e "$B/libebbmalloc.so" ]; then
	start_held e "$EBBRUN" -- "$HEAPLOAD" arenas 8 512
	pid=$HELD_PID
	if wait_line "$T/e.out" '^ready'; then
		"$DOCTOR" --json $pid > "$T/e.json"
		a=$(jstr "$T/e.json" allocator); n=$(jnum "$T/e.json" arena_heaps)
		[ "$a" = ebbmalloc ] && [ "$n" = 0 ] && ok "ebbmalloc: allocator $a, 0 glibc arena heaps" || fail "ebbmalloc: allocator '$a', arena heaps '$n'"
	else
		fail "heapload under ebbmalloc never got ready: $(cat "$T/e.err")"
	fi
	end_held e $pid
else
	fail "$B/libebbmalloc.so does not exist (run make lib)"
fi

# ebbmalloc purging mostly over its dirty cap (a heap that swings by 64 MiB
# with a decay of a minute): the doctor reads the reasons from the stats
# file and names the two options that trade those purges for RSS
if [ -e "$B/libebbmalloc.so" ]; then
	start_held w "$EBBRUN" -o decay_ms=60000 -o dirty_hold_ms=0 -o stats_file="$T/w.%p" -- "$HEAPLOAD" swing 64 8
	pid=$HELD_PID
	if wait_line "$T/w.out" '^ready'; then
		sleep 0.3	# the stats file is refreshed every 100 ms
		"$DOCTOR" $pid > "$T/w.txt"
		grep -q 'was taken early, over the dirty cap' "$T/w.txt" && grep -q 'EBB_DIRTY_CAP_PCT' "$T/w.txt" \
			&& grep -q 'EBB_DIRTY_HOLD_MS' "$T/w.txt" && grep -q 'the hold is at most the decay' "$T/w.txt" \
			&& ok "ebbmalloc purging over its cap: the doctor says so and names the options" \
			|| { fail "cap purges not reported"; cat "$T/w.txt"; }
		"$DOCTOR" --json $pid > "$T/w.json"
		c=$(jnum "$T/w.json" ebb_purged_cap_bytes); dcy=$(jnum "$T/w.json" ebb_purged_decay_bytes)
		[ "${c:-0}" -ge $((256 << 20)) ] && [ "$dcy" = 0 ] \
			&& ok "--json: purged over the cap $c bytes, by decay $dcy" || fail "--json: cap '$c', decay '$dcy'"
	else
		fail "heapload swing under ebbmalloc never got ready: $(cat "$T/w.err")"
	fi
	end_held w $pid
fi

# ebbmalloc linked into the program (libebbmalloc.a): no library in the
# maps; the program defines malloc, and ebb_malloc in its symbol table
start_held s "$B/tests/tools/heapload-ebb" hold 64 1024
pid=$HELD_PID
if wait_line "$T/s.out" ready; then
	"$DOCTOR" --json $pid > "$T/s.json"
	a=$(jstr "$T/s.json" allocator); n=$(jnum "$T/s.json" arena_heaps)
	[ "$a" = ebbmalloc ] && grep -q '"linked": true' "$T/s.json" && grep -q '"preloaded": false' "$T/s.json" && [ "$n" = 0 ] \
		&& ok "libebbmalloc.a linked in: allocator ebbmalloc, linked, 0 arena heaps" || fail "linked ebbmalloc: $(head -12 "$T/s.json")"
else
	fail "heapload-ebb never got ready: $(cat "$T/s.err")"
fi
end_held s $pid
# plain glibc programs do not define malloc themselves
grep -q '"linked": false' "$T/g.json" && ok "glibc program: not linked" || fail "glibc program reported as linking its own malloc"

# a named anonymous mapping ([anon:NAME], PR_SET_VMA_ANON_NAME: how
# ebbmalloc labels its chunks where the kernel allows) is listed by name
start_held nm "$HEAPLOAD" named 16
pid=$HELD_PID
if wait_line "$T/nm.out" '^ready'; then
	if grep -q 'named=1' "$T/nm.out"; then
		"$DOCTOR" --json $pid > "$T/nm.json"
		grep -q '"name": "\[anon:ebb-tools-test\]", "mappings": 1, "bytes": 16777216, "rss_kib": 16384' "$T/nm.json" \
			&& ok "named mapping listed with its RSS" || fail "named mapping: $(grep -A3 anon_named "$T/nm.json")"
	else
		echo "note: this kernel cannot name anonymous mappings ($(sed 's/ready named=0 //' "$T/nm.out")): named-mapping check not run"
	fi
else
	fail "heapload named never got ready"
fi
end_held nm $pid

# errors
"$DOCTOR" 999999999 2> "$T/err"; rc=$?
[ $rc != 0 ] && ok "bad pid refused (rc $rc)" || fail "bad pid: rc 0"
"$DOCTOR" 2> /dev/null; [ $? = 2 ] && ok "no pid: usage" || fail "no pid: not rc 2"
finish
