#!/usr/bin/env bash
# stats.sh - stats consistency (issue 7, point 5): stats_check.c under
# LD_PRELOAD with EBB_STATS=1 and EBB_STATS_FILE; then the exit report on
# stderr, malloc_info's XML (python3 xml.etree) and ebb_stats_print's JSON
# (python3 json), whose per-node figures must add up to its totals and each
# node's to the sums of its arenas' (every byte and count figure), with
# active <= mapped at every level and the purges by backend adding up.
# stats.sh 2: the same on the fake 2-node topology (EBB_NUMA_FAKE=2), so the
# per-node sums add more than one node.
set -u
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "python3 is not installed"; exit 77; }
xml=$RT_TMP/malloc_info.xml json=$RT_TMP/stats.json
[ -n "${1:-}" ] && export EBB_NUMA_FAKE=$1
EBB_STATS=1 EBB_STATS_FILE="$RT_TMP/sf.%p" LD_PRELOAD=$RECLAIM_LIB \
	"$RECLAIM_BIN/stats_check" "$xml" "$json" > "$RT_TMP/out" 2> "$RT_TMP/err"
rc=$?
cat "$RT_TMP/out"
fail=0
[ $rc = 0 ] || { echo "FAIL: stats_check exited $rc"; fail=1; }
echo "--- stderr (EBB_STATS=1):"; sed 's/^/  | /' "$RT_TMP/err"
if ! grep -q '^ebbmalloc stats (' "$RT_TMP/err"; then
	echo "FAIL: EBB_STATS=1 printed no 'ebbmalloc stats' report at exit"; fail=1
fi
python3 - "$xml" "$json" <<'PY' || fail=1
import json, sys
import xml.etree.ElementTree as ET
bad = 0
def fail(msg):
    global bad
    bad = 1
    print("FAIL: " + msg)
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as e:
    fail("malloc_info XML is not well-formed: %s" % e)
    root = None
if root is not None:
    heaps = root.findall("heap")
    if root.tag != "malloc" or not root.get("version"):
        fail("malloc_info root is <%s version=%r>, want <malloc version=...>" % (root.tag, root.get("version")))
    if not heaps:
        fail("malloc_info has no <heap>")
    alloc = 0
    for h in heaps:
        t = {x.get("type"): int(x.get("size")) for x in h.findall("total")}
        if "allocated" not in t or "active" not in t:
            fail("heap %s lacks allocated/active totals" % h.get("nr"))
            continue
        if t["allocated"] > t["active"]:
            fail("heap %s: allocated %d > active %d" % (h.get("nr"), t["allocated"], t["active"]))
        alloc += t["allocated"]
    if alloc == 0:
        fail("malloc_info: nothing allocated in any heap")
    print("malloc_info: %d heap(s), %.1f MiB allocated in them" % (len(heaps), alloc / 2**20))
try:
    s = json.load(open(sys.argv[2]))
except Exception as e:
    fail("ebb_stats_print JSON does not parse: %s" % e)
    s = None
if s is not None:
    nodes = s.get("nodes", [])
    if len(nodes) != s.get("nnodes"):
        fail("JSON: %d nodes listed, nnodes %s" % (len(nodes), s.get("nnodes")))
    for k in ("allocated_bytes", "active_bytes"):
        if sum(n[k] for n in nodes) + s["huge_bytes"] != s[k]:
            fail("JSON: nodes' %s + huge != total" % k)
    for k in ("dirty_bytes", "purging_bytes", "purged_bytes", "chunks", "remote_frees"):
        if sum(n[k] for n in nodes) != s[k]:
            fail("JSON: nodes' %s != total" % k)
    if sum(n["mapped_bytes"] for n in nodes) > s["mapped_bytes"]:
        fail("JSON: nodes' mapped_bytes > total")
    # per arena: each node's figures are the sum of its arenas'
    arenas = s.get("arenas", [])
    if not arenas or len(arenas) != s.get("narenas"):
        fail("JSON: %d per-arena rows, narenas %s" % (len(arenas), s.get("narenas")))
    keys = ("allocated_bytes", "active_bytes", "dirty_bytes", "purging_bytes", "purged_bytes",
            "mapped_bytes", "chunks", "remote_frees")
    for n in nodes:
        mine = [a for a in arenas if a["node"] == n["node"]]
        if not mine:
            fail("JSON: node %d has no arena" % n["node"])
        for k in keys:
            if sum(a[k] for a in mine) != n[k]:
                fail("JSON: node %d: arenas' %s %d != node's %d" % (n["node"], k, sum(a[k] for a in mine), n[k]))
        if n["active_bytes"] > n["mapped_bytes"]:
            fail("JSON: node %d: active > mapped" % n["node"])
    for a in arenas:
        if not (a["allocated_bytes"] <= a["active_bytes"] <= a["mapped_bytes"]):
            fail("JSON: arena %d: allocated %d, active %d, mapped %d" % (a["arena"], a["allocated_bytes"], a["active_bytes"], a["mapped_bytes"]))
    if s["active_bytes"] > s["mapped_bytes"]:
        fail("JSON: active > mapped")
    by = s.get("purge_by_backend", {})
    if sorted(by) != ["madvise", "uring", "vector"]:
        fail("JSON: purge_by_backend has %s" % sorted(by))
    if sum(b["batches"] for b in by.values()) < s["purge_batches"]:
        fail("JSON: purge batches by backend < total")
    if sum(b["syscalls"] for b in by.values()) != s["purge_syscalls"]:
        fail("JSON: purge syscalls by backend != total")
    if sum(s["purge_batch_lat_us_log2"]) != s["purge_batches"]:
        fail("JSON: latency histogram holds %d batches of %d" % (sum(s["purge_batch_lat_us_log2"]), s["purge_batches"]))
    print("ebb_stats_print JSON: %d node(s), %d arena(s), allocated %.1f MiB, backend %s" %
          (len(nodes), len(arenas), s["allocated_bytes"] / 2**20, s.get("backend")))
sys.exit(bad)
PY
[ $fail = 0 ] && echo "stats: ok"
exit $fail
