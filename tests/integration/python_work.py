# python_work.py - allocation-heavy but deterministic Python work for
# tests/integration/python.sh: prints digests, one per line.
import hashlib
import json
import random
import threading


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


rng = random.Random(12345)

# a large dict of small objects
d = {}
for i in range(50000):
    k = "key-%d-%x" % (i, rng.getrandbits(32))
    d[k] = {"i": i, "f": i / 7.0, "s": "v" * (i % 37), "l": list(range(i % 11))}
print("dict", len(d), digest(d))

# sort large lists several ways
lst = [rng.getrandbits(48) for _ in range(150000)]
words = ["".join(chr(97 + rng.randrange(26)) for _ in range(rng.randrange(1, 16))) for _ in range(50000)]
print("sorted-ints", hashlib.sha256(repr(sorted(lst)).encode()).hexdigest())
print("sorted-words", hashlib.sha256("\n".join(sorted(words, key=lambda w: (len(w), w))).encode()).hexdigest())

# JSON round trip of the whole structure, must be equal
blob = json.dumps({"d": d, "lst": lst, "words": words})
back = json.loads(blob)
if back["d"] != d or back["lst"] != lst or back["words"] != words:
    raise SystemExit("JSON round trip changed the data")
print("json", len(blob), hashlib.sha256(blob.encode()).hexdigest())

# churn: delete half, rebuild, grow and shrink lists
for k in list(d)[::2]:
    del d[k]
for i in range(50000):
    d["n%d" % i] = [i] * (i % 50)
print("churned", len(d), digest(d))

# threads allocating their own structures (the GIL serialises them, the
# allocator still sees several threads and cross-thread frees)
results = [None] * 6


def work(t):
    r = random.Random(t)
    objs = [{"t": t, "x": [r.random() for _ in range(50)]} for _ in range(8000)]
    objs.sort(key=lambda o: o["x"][0])
    results[t] = digest(objs)


ths = [threading.Thread(target=work, args=(t,)) for t in range(6)]
for th in ths:
    th.start()
for th in ths:
    th.join()
for t, r in enumerate(results):
    print("thread", t, r)
