/*
 * tcache.c - per-thread caches: bins, limits, flushing, thread exit, fork.
 *
 * Each thread has a tcache_t in static TLS (initial-exec: no allocation, no
 * lock to reach it), whose bins lie at the start of its slot region
 * (below). A bin is a LIFO stack of free blocks of one class: an
 * array of pointers, newest on top, so that a refill or a flush moves
 * pointers and never reads or writes the blocks (a linked list made every
 * refill touch each block it linked: a cache miss or a page fault apiece,
 * most of the p99.9 of bench/latency.c, and every flush read each block's
 * link). A cached block's second word holds tcache_key, written by free, so
 * that a second free of a cached block is noticed on the fast path and
 * confirmed on the slow path; malloc clears it. (The fastfree build keeps
 * the key in the first word, tags refilled blocks' slots, and checks at
 * malloc and at the flush instead: alloc/fastpath.h, bin_release_prepare.)
 * A bin holds at most
 * its max blocks, and the maxima are kept such that all bins together
 * hold at most tcache_max_bytes (see "limits" below).
 *
 * The stacks of one thread lie in class order in one array (its slot
 * region, mapped at the thread's first allocation and recycled when the
 * thread exits), each with room for its max: a thread touches about as
 * many slots as its bins' largest maxima, a page or so for most threads
 * (with a fixed 2 KiB per bin, 1000 parked threads would pin a page or
 * more per bin each). A bin that outgrows its room moves the stacks above
 * it (bin_make_room): at most a few times per class in a thread's life.
 *
 * Blocks in a cache may belong to any arena of the thread's node; a flush
 * groups them by owning arena and hands each group back under that
 * arena's lock (one lock round trip per arena per flush).
 *
 * Thread exit (a pthread key destructor) flushes everything (invariant 5)
 * and marks the cache DEAD: later calls on that thread (other destructors)
 * go straight to the arenas.
 *
 * Threads: a cache is used only by its owner, except by fork's child
 * handler (the other threads no longer exist) and the stats reader (which
 * reads published counters only).
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"
#include "reclaim.h"

/* The fast paths' bounds start at 0 (closed) and open when the thread's
 * cache is set up (tcache_init): until then every call takes the slow
 * path, which starts the library and the cache. Open from the start, a
 * thread's first fast path read the size-class table while another
 * thread's first call was still writing it (harmless, every bin of an
 * uninitialised cache is empty, but a data race: tests/hardening/first_use.c
 * under TSan). */
const tbin_t tcache_zero_bins[NCLASS + 1];
__thread tcache_t ebb_tcache __attribute__((tls_model("initial-exec"))) = {
	.bins = (tbin_t *)tcache_zero_bins,	/* read only: nothing writes a bin of a cache not ACTIVE */
	.node_tag = NODE_TAG_NONE,
};
uintptr_t tcache_key;
static void steal_signal(tcache_t *t, int on);	/* the fast paths' bounds: closed or open */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
/* Sum of every live cache's bound_bytes: growth stops at tcache_total_bytes. */
static _Atomic size_t bound_total;
static _Atomic unsigned live_caches;
static tcache_t *reg_head;
static pthread_key_t tc_key;
static int tc_key_ok;
static _Atomic unsigned tc_seq;

/* Blocks handed back per round of a flush (a lock round trip per arena
 * each): the buffer is on the stack of an application thread's free, so
 * it stays small (it was 2 KiB); the overflow and GC flushes take at most
 * a batch (TCACHE_BATCH_MAX), and a flush of a whole bin takes its rounds
 * from the top, where nothing has to move. */
#define FLUSH_BATCH 32

/* ---- slot regions --------------------------------------------------------------- */
/* One region holds every bin's stack at its largest: sum over classes of
 * bin_cap (tcache_max_bytes is read at start only). Regions of exited
 * threads are kept on a list (linked through their first slot) for the
 * next thread: a thread pool that turns over does not mmap each time. */
static size_t slot_region_slots;
static void **slot_free_regions;	/* under reg_lock */

static uint32_t bin_cap(unsigned cls, size_t limit);

/* After the bins' stacks, each small class has a stack of blocks of other
 * nodes freed by this thread (never reused here: they go home), sent home
 * a class at a time when full (TCACHE_REMOTE_MAX blocks or REMOTE_BYTES),
 * on every flush of the whole cache (idle, exit, a node change) and by
 * trim; so a cross-node producer/consumer pair moves blocks in batches of
 * one class, one transfer-cache lock round trip each, as on one node. */
#define REMOTE_BYTES ((size_t)16 << 10)
static uint8_t remote_cap[NSMALL + 1];
static uint16_t remote_off[NSMALL + 1];	/* from the end of the bins' stacks */
static size_t remote_slots;

/* The region starts with the bins (tcache_t.bins), then the slots: the
 * bins are purged with the stacks when a parked thread's cache is flushed
 * (tcache_idle_scan), and its TLS keeps only the words the fast paths test. */
#define BINS_BYTES ALIGN_UP((NCLASS + 1) * sizeof(tbin_t), 64)

static size_t slot_region_bytes(void)
{
	return ALIGN_UP(BINS_BYTES + (slot_region_slots + remote_slots) * sizeof(void *), PAGE_SIZE);
}

static tbin_t *region_bins(void **slots)
{
	return (tbin_t *)((char *)slots - BINS_BYTES);
}

static void **remote_stack(const tcache_t *tc, unsigned cls)
{
	return tc->slots + slot_region_slots + remote_off[cls];
}

static void **slots_get(void)
{
	pthread_mutex_lock(&reg_lock);
	if (!slot_region_slots) {
		size_t limit = (size_t)opt(OPT_tcache_max_bytes), n = 0;
		for (unsigned c = 1; c <= NCLASS; c++)
			n += bin_cap(c, limit);
		for (unsigned c = 1; c <= NSMALL; c++) {
			size_t k = REMOTE_BYTES / sizeclass_info[c].size;
			remote_cap[c] = (uint8_t)(k < 1 ? 1 : k > TCACHE_REMOTE_MAX ? TCACHE_REMOTE_MAX : k);
			remote_off[c] = (uint16_t)remote_slots;
			remote_slots += remote_cap[c];
		}
		/* slot 0 holds no stack: the slot below any bin's top can be
		 * read (the fastfree build's free compares it with the block) */
		slot_region_slots = n + 1;
	}
	void **r = slot_free_regions;
	if (r)
		slot_free_regions = r[0];
	pthread_mutex_unlock(&reg_lock);
	if (r) {
		r[0] = NULL;
		return r;
	}
	void *m;
	size_t bytes = slot_region_bytes();
	if (os_map(bytes, PAGE_SIZE, &m))
		return NULL;
	os_name(m, bytes, "ebbmalloc:tcache");
	return (void **)((char *)m + BINS_BYTES);
}

/* A cache gives its slot region back for the next thread (caller holds
 * reg_lock): its bins go with it, so calls made later by the thread that
 * had it (other destructors) find the read-only empty bins, which nothing
 * lays out again. */
static void cache_region_put_locked(tcache_t *tc)
{
	void **r = tc->slots;
	if (r) {
		r[0] = slot_free_regions;
		slot_free_regions = r;
	}
	tc->slots = NULL;
	tc->bins = (tbin_t *)tcache_zero_bins;
	atomic_store_explicit(&tc->bins_lost, 0, memory_order_relaxed);
}

/* ---- limits ------------------------------------------------------------------ */
/*
 * Each bin has a cap (at most limit/8 bytes of one class, at most 256
 * blocks; classes above 256 KiB are not cached) and a current max that
 * adapts between 0 and the cap. It starts small (8 blocks up to 1 KiB, 2
 * up to 8 KiB, 1 up to 32 KiB, 0 for page-run classes), its first refill
 * is cold (at most COLD_BYTES' worth, below) and does not grow it, and:
 *   - a bin that runs dry (refill) or overflows (flush) doubles its max,
 *     and its refill batch is max/2 (within batch_of's caps), as long as
 *     the sum over bins of max * size stays <= tcache_max_bytes; when the
 *     budget is spent, bins that hold less than half their max give back
 *     half of it first;
 *   - a bin that kept blocks it did not use across a GC tick (its low-water
 *     mark stayed above zero) gives back a share of them that doubles with
 *     each consecutive wasteful tick (1/4, 1/2, all), and halves its max.
 * Since no bin holds more than its max, cached bytes <= bound_bytes <=
 * tcache_max_bytes at all times: the bound is enforced without counting
 * bytes on the fast paths.
 */
/* Blocks moved per refill or flush: half the bin, at most TCACHE_BATCH_MAX
 * blocks and at most TCACHE_BATCH_BYTES of them (at least one block). The
 * caps bound the work a single malloc or free does, at the price of one
 * arena lock round trip per batch: a refill of 128 blocks was most of the
 * p99.9 latency (bench/latency.c), and later flushes of 14 blocks of
 * 16-28 KiB were: half of each batch found the class's transfer cache
 * (XFER_BYTES) full and went to its slabs, ~0.5 us a flush. A batch of
 * 64 KiB fits every class's transfer cache twice over. */
#ifndef TCACHE_BATCH_MAX
#define TCACHE_BATCH_MAX 32
#endif
#ifndef TCACHE_BATCH_BYTES
#define TCACHE_BATCH_BYTES ((size_t)64 << 10)
#endif
static uint32_t batch_of(unsigned cls, uint32_t max)
{
	uint32_t b = max / 2 ? max / 2 : 1;
	size_t size = sizeclass_info[cls].size;	/* 0 in class 0 (no blocks) */
	size_t by_bytes = size ? TCACHE_BATCH_BYTES / size : TCACHE_BATCH_MAX;
	if (b > TCACHE_BATCH_MAX)
		b = TCACHE_BATCH_MAX;
	if (b > by_bytes)
		b = by_bytes ? (uint32_t)by_bytes : 1;
	return b;
}

static uint32_t bin_cap(unsigned cls, size_t limit)
{
	size_t size = sizeclass_info[cls].size;
	if (cls > NSMALL && size > 256 * 1024)
		return 0;
	size_t cap = limit / 8 / size;
	return (uint32_t)(cap > 256 ? 256 : cap);
}

/* With tcache_adaptive off, every small bin holds up to this many blocks
 * (bounded by its cap and the thread's bytes), and never changes. */
#define FIXED_MAX 64

/* In tbin_t.waste_ticks (which counts 0..2): the bin overflowed since the
 * GC last looked at it. */
#define BIN_OVERFLOWED 0x80
/* ... and the bin's max was inherited (bin_limits): the first time it
 * runs dry or overflows after its cold refill (below) is not demand
 * (every new thread's bins start empty) and does not grow it, or maxima
 * would ratchet up generation after generation of a pool's threads.
 * Cleared by then or by the GC. */
#define BIN_INHERITED 0x40
/* ... and the bin has not run dry yet in this thread's life (a new
 * thread's bins, inherited or not): its first refill is a "cold" batch
 * of at most COLD_BYTES (one block from 256 B up), and that first dry
 * spell does not grow it; the second one does, and the bin then refills
 * as any other. A thread that allocates a class once or twice and parks
 * (a JVM's pool of mostly idle threads) takes a block or two instead of
 * half a bin: the rest would go back when its cache is flushed idle, but
 * the page it took them from would keep its one or two live blocks and
 * nothing else (bench/parked.c: 1.4 live blocks of 960 B per resident
 * page). With cold batches, threads that each take a block or two share
 * pages. The price is a refill more per class per thread. */
#define BIN_COLD 0x20
#ifndef COLD_BYTES
#define COLD_BYTES 256
#endif

/* The batch of a bin holding max blocks: a cold bin's is smaller. */
static uint32_t bin_batch(const tbin_t *b, unsigned cls, uint32_t max)
{
	uint32_t n = batch_of(cls, max);
	if ((b->waste_ticks & BIN_COLD) && cls <= NSMALL) {
		uint32_t cold = (uint32_t)(COLD_BYTES / sizeclass_info[cls].size);
		if (cold < 1)
			cold = 1;
		if (n > cold)
			n = cold;
	}
	return n;
}

/* ---- inherited layout ----------------------------------------------------------- */
/*
 * A thread that exits leaves in its slot region where each bin's stack lay
 * and the max each bin had reached; the next thread to get the region (a
 * pool's successor, doing the same work more often than not) starts with
 * those bins instead of growing each from its initial max and moving the
 * stacks above it at every doubling (larson-like turnover: 4 instructions
 * an operation, 0.91 x the speed of fixed bins). What it inherits is
 * clamped to its own budget and the global one, and the GC shrinks what it
 * does not use, as for any bin. The memo is written after the flush (the
 * stacks are empty then), into the region's first slots, magic last, and
 * checked whole before use: a region whose page was purged in between
 * reads as no memo.
 */
#define MEMO_MAGIC ((uintptr_t)0xebb5107a11a7e000ull)
struct memo_ent {
	uint16_t off;	/* the bin's stack starts at slots + off */
	uint16_t max;
};
#define MEMO_SLOTS (2 + ((NCLASS + 1) * sizeof(struct memo_ent) + sizeof(void *) - 1) / sizeof(void *))
_Static_assert(256 * NCLASS < UINT16_MAX, "slot offsets fit a memo entry");

static void memo_write(tcache_t *tc)
{
	if (slot_region_slots < MEMO_SLOTS || !opt(OPT_tcache_adaptive))
		return;
	/* in place (the stacks are empty): no 500-byte array on the stack of
	 * a thread that is exiting */
	struct memo_ent *e = (struct memo_ent *)(tc->slots + 2);
	for (unsigned c = 0; c <= NCLASS; c++) {
		const tbin_t *b = &tc->bins[c];
		e[c].off = (uint16_t)(tbin_base(b) - tc->slots);
		e[c].max = (uint16_t)tbin_max(b);
	}
	ebb_compiler_barrier();
	tc->slots[1] = (void *)(MEMO_MAGIC ^ (uintptr_t)tc->slots);
}

/* The memo left in slots, if any and if it describes a layout that fits
 * the region, read in place: the region is the caller's alone now, and
 * nothing writes to its slots until the caller consumed the memo
 * (memo_consume). A thread's first malloc runs here, at the bottom of
 * whatever stack the thread has: a copy of the memo on the stack (500
 * bytes) was enough to make 1000 parked threads fault in a third page of
 * stack each (bench/parked.c). */
static const struct memo_ent *memo_read(void **slots)
{
	if (slot_region_slots < MEMO_SLOTS || !opt(OPT_tcache_adaptive) ||
	    slots[1] != (void *)(MEMO_MAGIC ^ (uintptr_t)slots))
		return NULL;
	const struct memo_ent *e = (const struct memo_ent *)(slots + 2);
	for (unsigned c = 0; c <= NCLASS; c++) {
		size_t end = c < NCLASS ? e[c + 1].off : slot_region_slots;
		if ((size_t)e[c].off + e[c].max > end)
			return NULL;
	}
	return e;
}

/* A region is inherited once. */
static void memo_consume(void **slots)
{
	slots[1] = NULL;
}

static void bin_limits(tcache_t *tc)
{
	size_t limit = (size_t)opt(OPT_tcache_max_bytes);
	const struct memo_ent *memo = memo_read(tc->slots);
	int inherit = memo != NULL;
	if (inherit) {
		/* all of it, or the initial maxima in the inherited layout */
		size_t want = 0;
		for (unsigned c = 1; c <= NCLASS; c++)
			want += (size_t)memo[c].max * sizeclass_info[c].size;
		if (want > limit || atomic_load_explicit(&bound_total, memory_order_relaxed) + want >
					    (size_t)opt(OPT_tcache_total_bytes))
			inherit = -1;
	}
	size_t off = 1;		/* past slot 0 (slots_get) */
	tc->bound_bytes = 0;
	for (unsigned c = 0; c <= NCLASS; c++) {
		tbin_t *b = &tc->bins[c];
		size_t size = sizeclass_info[c].size;
		uint32_t cap = c ? bin_cap(c, limit) : 0;
		uint32_t max = c == 0 || c > NSMALL ? 0 : size <= 1024 ? 8 : size <= 8192 ? 2 : 1;
		if (!opt(OPT_tcache_adaptive) && c && c <= NSMALL)
			max = FIXED_MAX;	/* a classic fixed-size cache */
		if (inherit) {
			/* the room up to the next stack; the memo was checked */
			size_t end = c < NCLASS ? memo[c + 1].off : slot_region_slots;
			off = memo[c].off;
			if (inherit > 0)
				max = memo[c].max;
			if (max > end - off)
				max = (uint32_t)(end - off);
		}
		if (max > cap)
			max = cap;
		if (tc->bound_bytes + max * size > limit)
			max = 0;
		tbin_place(b, tc->slots + off, 0, max);
		b->low = 0;
		b->waste_ticks = !max ? 0 : inherit > 0 ? BIN_INHERITED : 0;
		if (max && opt(OPT_tcache_adaptive) && c <= NSMALL)
			b->waste_ticks |= BIN_COLD;	/* inherited or not */
		b->batch = (uint16_t)bin_batch(b, c, max);
		off += max;
		tc->bound_bytes += max * size;
	}
	if (memo)
		memo_consume(tc->slots);
	atomic_fetch_add_explicit(&bound_total, tc->bound_bytes, memory_order_relaxed);
}

/* A cache that stops caching (thread exit) gives its bound back; its
 * bins must be empty. */
static void bin_limits_clear(tcache_t *tc)
{
	for (unsigned c = 0; c <= NCLASS; c++)
		tbin_place(&tc->bins[c], NULL, 0, 0);
	atomic_fetch_sub_explicit(&bound_total, tc->bound_bytes, memory_order_relaxed);
	tc->bound_bytes = 0;
}

/* A bin's capacity is the room up to the next bin's stack (the region's
 * end for the last one): at least its max. Capacities only grow, to the
 * next power of two of a max that no longer fits (at most the bin's cap,
 * so they always fit the region); a bin whose max shrinks keeps its room,
 * so a max that comes and goes (GC halving, dry doubling) moves nothing
 * after the first time. The stacks move at most log2(256) times per class
 * in a thread's life, and a thread touches sum(highest max) slots. */
static unsigned bin_capacity(const tcache_t *tc, unsigned cls)
{
	void **end = cls < NCLASS ? tbin_base(&tc->bins[cls + 1]) : tc->slots + slot_region_slots;
	return (unsigned)(end - tbin_base(&tc->bins[cls]));
}

/* Move the stacks of the classes above cls up by delta slots. Owner only,
 * inside its gate (or the reclaim thread during a steal). From the top
 * class down, so no stack overwrites one not yet moved. */
static void bin_make_room(tcache_t *tc, unsigned cls, unsigned delta)
{
	atomic_store_explicit(&tc->relayout, 1, memory_order_relaxed);
	ebb_compiler_barrier();
	for (unsigned c = NCLASS; c > cls; c--) {
		tbin_t *b = &tc->bins[c];
		void **base = tbin_base(b);
		unsigned n = tbin_count(b), max = tbin_max(b);
		if (n)
			memmove(base + delta, base, n * sizeof(void *));
		tbin_place(b, base + delta, n, max);
	}
	ebb_compiler_barrier();
	atomic_store_explicit(&tc->relayout, 0, memory_order_relaxed);
}

static void bin_set_max(tcache_t *tc, unsigned cls, uint32_t max)
{
	tbin_t *b = &tc->bins[cls];
	size_t size = sizeclass_info[cls].size;
	uint32_t old = tbin_max(b);
	if (max == old)
		return;
	if (tbin_count(b) > max)	/* before its stack shrinks */
		tcache_flush_bin(tc, cls, max);
	ebb_check(tbin_count(b) <= max && tbin_max(b) == old);	/* nothing re-entered */
	if (max >= old)
		atomic_fetch_add_explicit(&bound_total, (max - old) * size, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&bound_total, (old - max) * size, memory_order_relaxed);
	tc->bound_bytes = tc->bound_bytes - old * size + max * size;
	unsigned room = bin_capacity(tc, cls);
	if (max > room) {
		unsigned want = 1;
		while (want < max)
			want <<= 1;
		unsigned cap = bin_cap(cls, (size_t)opt(OPT_tcache_max_bytes));
		if (want > cap)
			want = cap;	/* >= max: max never exceeds the cap */
		bin_make_room(tc, cls, want - room);
	}
	tbin_place(b, tbin_base(b), tbin_count(b), max);
	b->batch = (uint16_t)bin_batch(b, cls, max);
}

/* Budget is spent: the bins with the largest share (max * size) give back
 * half of it (flushing what they hold beyond), until need bytes are free.
 * A small class keeps at least one slot. Runs only when a bin wants to
 * grow and the budget is full, so the scan over the bins is amortised
 * over at least a batch of calls. */
static void budget_reclaim(tcache_t *tc, unsigned except, size_t need)
{
	size_t limit = (size_t)opt(OPT_tcache_max_bytes);
	for (int rounds = 0; rounds < 8 && tc->bound_bytes + need > limit; rounds++) {
		unsigned best = 0;
		size_t best_bytes = 0;
		for (unsigned c = 1; c <= NCLASS; c++) {
			size_t bytes = (size_t)tbin_max(&tc->bins[c]) * sizeclass_info[c].size;
			uint32_t floor = c <= NSMALL ? 1 : 0;
			if (c != except && tbin_max(&tc->bins[c]) > floor && bytes > best_bytes) {
				best = c;
				best_bytes = bytes;
			}
		}
		if (!best)
			return;
		tbin_t *b = &tc->bins[best];
		uint32_t floor = best <= NSMALL ? 1 : 0;
		bin_set_max(tc, best, tbin_max(b) / 2 > floor ? tbin_max(b) / 2 : floor);
	}
}

/* The bin ran dry (refill) or overflowed (flush): let it hold more. */
static void bin_grow(tcache_t *tc, unsigned cls)
{
	tbin_t *b = &tc->bins[cls];
	size_t limit = (size_t)opt(OPT_tcache_max_bytes);
	size_t size = sizeclass_info[cls].size;
	uint32_t cap = bin_cap(cls, limit);
	int inherited = b->waste_ticks & BIN_INHERITED;
	b->waste_ticks = 0;	/* no longer cold either */
	b->batch = (uint16_t)batch_of(cls, tbin_max(b));
	if (!opt(OPT_tcache_adaptive) || inherited)
		return;
	uint32_t max = tbin_max(b);
	if (max >= cap)
		return;
	uint32_t grow = max ? max : 1;
	if (max + grow > cap)
		grow = cap - max;
	if (tc->bound_bytes + grow * size > limit) {
		/* the scan costs ~1 us: at most once per SLOW_TICK slow paths,
		 * so a thread whose bins all want to grow does not pay it on
		 * every refill (bench/latency.c p99.9) */
		if (tc->slow_events - tc->last_budget_scan < 64)
			return;
		tc->last_budget_scan = tc->slow_events;
		budget_reclaim(tc, cls, grow * size);
	}
	/* all threads together: growth stops at tcache_total_bytes */
	size_t total = atomic_load_explicit(&bound_total, memory_order_relaxed);
	if (total + grow * size > (size_t)opt(OPT_tcache_total_bytes))
		return;
	if (tc->bound_bytes + grow * size <= limit)
		bin_set_max(tc, cls, tbin_max(b) + grow);
}

void tcache_bin_dry(tcache_t *tc, unsigned cls)
{
	tbin_t *b = &tc->bins[cls];
	b->low = 0;
	if (b->waste_ticks & BIN_COLD) {
		/* the first dry spell, not demand: this refill takes the
		 * cold batch. An inherited bin stays BIN_INHERITED: its next
		 * dry spell comes from the cold batch being small, not from
		 * demand either (a pool's threads grew their bins past the
		 * predecessor's every generation, and relaid their stacks) */
		b->waste_ticks &= (uint8_t)~BIN_COLD;
		return;
	}
	bin_grow(tc, cls);
}

void tcache_bin_overflow(tcache_t *tc, unsigned cls)
{
	tbin_t *b = &tc->bins[cls];
	/* An overflow flushes a batch, and a batch is at most
	 * TCACHE_BATCH_MAX blocks: past two batches a bigger bin flushes as
	 * often per block freed and only holds more blocks longer (a
	 * consumer's bins grew to 256 blocks a class, a working set that
	 * made producer/consumer slower adaptive than fixed). Beyond that,
	 * only running dry (this thread allocating what it freed) grows it. */
	if (tbin_max(b) < 2 * TCACHE_BATCH_MAX)
		bin_grow(tc, cls);
	b->waste_ticks |= BIN_OVERFLOWED;	/* for the GC: blocks flow through it */
	if (tbin_count(b) >= tbin_max(b))
		tcache_flush_bin(tc, cls, tbin_max(b) - batch_of(cls, tbin_max(b)));
}

size_t tcache_cached_bytes(const tcache_t *tc)
{
	size_t t = 0;
	for (unsigned c = 1; c <= NCLASS; c++)
		t += (size_t)tbin_count(&tc->bins[c]) * sizeclass_info[c].size;
	return t;
}

/* ---- registry and thread exit ------------------------------------------------- */
static void tcache_destructor(void *arg)
{
	tcache_t *tc = arg;
	if (tc->state != TC_ACTIVE)
		return;
	tcache_enter(tc);
	tc->state = TC_BUSY;
	tc->node_tag = NODE_TAG_NONE;
	tcache_flush_all(tc);
	if (!atomic_load_explicit(&tc->bins_lost, memory_order_relaxed))
		memo_write(tc);	/* (purged bins are zeros: no layout to leave) */
	bin_limits_clear(tc);
	pthread_mutex_lock(&reg_lock);
	if (tc->reg_prev)
		tc->reg_prev->reg_next = tc->reg_next;
	else
		reg_head = tc->reg_next;
	if (tc->reg_next)
		tc->reg_next->reg_prev = tc->reg_prev;
	cache_region_put_locked(tc);
	pthread_mutex_unlock(&reg_lock);
	atomic_fetch_sub_explicit(&live_caches, 1, memory_order_relaxed);
	arena_thread_leave(tc->arena);
	tc->state = TC_DEAD;
	tcache_exit(tc);
}

int tcache_init(tcache_t *tc)
{
	if (tc->state != TC_UNINIT)
		return tc->state == TC_ACTIVE ? 0 : -1;
	tc->state = TC_BUSY;	/* re-entrant calls from here on go to the arenas */
	pthread_mutex_lock(&reg_lock);
	if (!tc_key_ok) {
		/* pthread_key_create does not allocate; done once, under the
		 * registry lock, after the arenas exist */
		tc_key_ok = pthread_key_create(&tc_key, tcache_destructor) == 0 ? 1 : -1;
	}
	pthread_mutex_unlock(&reg_lock);
	unsigned cpu = 0;
	os_getcpu(&cpu);
	tc->node = topo_node_of_cpu(cpu);
	tc->node_tag = NODE_TAG_NONE;	/* set when ACTIVE */
	tc->arena = arena_pick_for_thread(tc->node, atomic_fetch_add_explicit(&tc_seq, 1, memory_order_relaxed));
	tc->key = tcache_key;
	tc->slots = slots_get();
	if (!tc->slots) {
		tc->state = TC_DEAD;	/* no memory for the stacks: never cache */
		return -1;
	}
	tc->bins = region_bins(tc->slots);
	bin_limits(tc);
	tc->seen_activity = atomic_load_explicit(&tc->activity, memory_order_relaxed);
	tc->seen_ns = os_now_ns();
	/* pthread_setspecific may allocate for high key numbers; we are BUSY,
	 * so such a call is served by the arenas directly. */
	if (tc_key_ok != 1 || pthread_setspecific(tc_key, tc) != 0) {
		bin_limits_clear(tc);
		pthread_mutex_lock(&reg_lock);
		cache_region_put_locked(tc);
		pthread_mutex_unlock(&reg_lock);
		tc->state = TC_DEAD;	/* no destructor: never cache */
		return -1;
	}
	/* open the fast paths (their bounds, as a steal's end restores them);
	 * before registering, after which only the reclaim thread writes them */
	steal_signal(tc, 0);
	pthread_mutex_lock(&reg_lock);
	tc->reg_prev = NULL;
	tc->reg_next = reg_head;
	if (reg_head)
		reg_head->reg_prev = tc;
	reg_head = tc;
	pthread_mutex_unlock(&reg_lock);
	tc->state = TC_ACTIVE;
	tc->node_tag = tc->node + 1;
	/* a second thread with a cache: idle caches may now need flushing
	 * without their owner, which is the reclaim thread's job */
	if (atomic_fetch_add_explicit(&live_caches, 1, memory_order_relaxed) >= 1)
		reclaim_ensure_thread();
	return 0;
}

/* ---- returning blocks ---------------------------------------------------------- */
/* Pull every block of the first block's arena to the front of blocks[0..n):
 * returns how many, and that arena in *a. Callers hand the group back and
 * repeat on the rest, one lock round trip per arena. */
static unsigned arena_group(void **blocks, unsigned n, arena_t **a)
{
	*a = chunk_of(blocks[0])->arena;
	/* the blocks of one arena already in front (all of them, mostly)
	 * stay where they are: no swaps */
	unsigned k = 1;
	while (k < n && chunk_of(blocks[k])->arena == *a)
		k++;
	for (unsigned i = k + 1; i < n; i++) {
		if (chunk_of(blocks[i])->arena == *a) {
			void *t = blocks[k];
			blocks[k++] = blocks[i];
			blocks[i] = t;
		}
	}
	return k;
}

void tcache_return_blocks(unsigned cls, void **blocks, unsigned n)
{
	while (n > 0) {
		arena_t *a;
		unsigned k = arena_group(blocks, n, &a);
		arena_dalloc_cached(a, cls, blocks, k);
		blocks += k;
		n -= k;
	}
}

_Atomic uint64_t tcache_flush_count;

/* The fastfree build (alloc/fastpath.h): a bin's blocks are about to go
 * back to their arenas. A refilled block's slot loses its tag; a freed
 * one must still have the key in its first word and not in its second
 * (else it was handed out again, or given back, since its free: a second
 * free), and the key moves to its second word, which marks a block in an
 * arena. Duplicates within the batch fail at the second copy. */
void tcache_fatal_second_free(const void *p, const char *by)
{
	ebb_message("free(): double free %p (or a write to it after free), found by %s", p, by);
	abort();
}

static void bin_release_prepare(void **blocks, unsigned n)
{
	if (ebb_build_free_reads_block)
		return;
	for (unsigned i = 0; i < n; i++) {
		void **q = slot_block(blocks[i]);
		if (q != blocks[i]) {		/* refilled, never handed out */
			blocks[i] = q;
			continue;
		}
		if (!block_freed_here(q, tcache_key))
			tcache_fatal_second_free(q, "the thread cache as it gave the block back");
		q[0] = NULL;
		q[1] = (void *)tcache_key;
	}
}

/* Invariant walker: the stacks lie in class order within the slot region,
 * none overlapping the next; each holds count <= max distinct blocks, each
 * a live block (its slab bit set, or its page run allocated) of the bin's
 * class on the thread's node; the blocks waiting to go to other nodes are
 * live blocks of those nodes; cached bytes within the bound. */
int tcache_is_valid(const tcache_t *tc)
{
	if (tc->state != TC_ACTIVE)
		return 1;
	if (atomic_load_explicit(&tc->bins_lost, memory_order_relaxed)) {
		/* purged while idle: zeros (or the empty stacks, if the
		 * purge failed), never anything cached */
		for (unsigned c = 0; c <= NCLASS; c++)
			if (tbin_count(&tc->bins[c]))
				return 0;
		return 1;
	}
	if (tc->bound_bytes > (size_t)opt(OPT_tcache_max_bytes))
		return 0;
	size_t bound = 0, used = 1;	/* slot 0 holds no stack */
	for (unsigned c = 0; c <= NCLASS; c++) {
		const tbin_t *b = &tc->bins[c];
		unsigned n = tbin_count(b), max = tbin_max(b);
		void **base = tbin_base(b);
		bound += (size_t)max * sizeclass_info[c].size;
		/* the stacks lie in class order, each within its room; bin 0
		 * (sizes no block has) never holds one */
		if (base < tc->slots + used || n > max || (c == 0 && max != 0))
			return 0;
		used = (size_t)(base - tc->slots) + max;
		for (unsigned i = 0; i < n; i++) {
			void *p = slot_block(base[i]);
			int fresh = p != base[i];
			/* only the fastfree build tags slots; there a freed
			 * block has the key in its first word, not its second
			 * (a refilled one, tagged, has the slab's words) */
			if (ebb_build_free_reads_block ? fresh : !fresh && !block_freed_here(p, tcache_key))
				return 0;
			if (rtree_get(p) != ((uintptr_t)chunk_of(p) | 1))
				return 0;
			chunk_t *ch = chunk_of(p);
			size_t pg = chunk_page_of(ch, p);
			if (ch->page_cls[pg] != c || !chunk_is_block_start(ch, pg, c, p))
				return 0;
			/* a local block (the free fast path took it by its
			 * node tag), still handed out in its arena */
			if (ch->node != tc->node || !arena_block_is_live(p, c))
				return 0;
			for (unsigned j = 0; j < i; j++)	/* cached once */
				if (slot_block(base[j]) == p)
					return 0;
		}
	}
	/* other nodes' blocks: each live, of its stack's class, not of this
	 * node, there once; a full stack goes home at once */
	for (unsigned c = 1; c <= NSMALL; c++) {
		void **st = remote_stack(tc, c);
		if (tc->nremote[c] >= remote_cap[c])
			return 0;
		for (unsigned i = 0; i < tc->nremote[c]; i++) {
			void *p = st[i];
			if (rtree_get(p) != ((uintptr_t)chunk_of(p) | 1))
				return 0;
			chunk_t *ch = chunk_of(p);
			size_t pg = chunk_page_of(ch, p);
			if (ch->node == tc->node || pg < ch->hdr_pages || ch->page_cls[pg] != c ||
			    !arena_block_is_live(p, c))
				return 0;
			for (unsigned j = 0; j < i; j++)
				if (st[j] == p)
					return 0;
		}
	}
	return bound == tc->bound_bytes && used <= slot_region_slots;
}

/* Return all but keep blocks of bin cls to their arenas: the oldest ones
 * (the bottom of the stack), which the GC's low-water mark counts as
 * unused and which are the coldest in the CPU's caches. Returning blocks
 * never calls back into malloc (the reclaim thread's start, which would,
 * is left to the next slow path: reclaim_start_pending), but the bin is
 * made consistent before any block goes back all the same.
 *
 * A round's blocks go back from the stack's own slots, not from a copy on
 * the stack: this runs under a free at the bottom of an application
 * thread's stack, and a 256-byte buffer here made 1000 parked threads
 * fault in a third page of stack each (bench/parked.c). A whole flush
 * lowers the top first and returns the slots above it; a partial one
 * returns the bottom slots where they lie and then moves the rest down,
 * with the cache marked in relayout meanwhile. (Rotating the bottom
 * blocks above the top instead, three reversals of the stack, cost
 * producer/consumer 248.8 instructions per block under callgrind against
 * 235.7, and it ran slower.) */
void tcache_flush_bin(tcache_t *tc, unsigned cls, unsigned keep)
{
	tbin_t *b = &tc->bins[cls];
	unsigned n = tbin_count(b);
	if (keep >= n)
		return;
	atomic_fetch_add_explicit(&tcache_flush_count, 1, memory_order_relaxed);
	while (n > keep) {
		unsigned drop = n - keep < FLUSH_BATCH ? n - keep : FLUSH_BATCH;
		/* fork's child skips a cache caught in here (it leaks the
		 * blocks of a thread that no longer exists, rather than
		 * returning some twice) */
		atomic_store_explicit(&tc->relayout, 1, memory_order_relaxed);
		ebb_compiler_barrier();
		void **base = tbin_base(b);
		/* p[1] keeps tcache_key: a later free of a block takes the
		 * slow path, which finds it free in its slab (double free) */
		if (keep != 0) {	/* the bottom ones where they lie, the rest down */
			bin_release_prepare(base, drop);
			tcache_return_blocks(cls, base, drop);
			memmove(base, base + drop, (n - drop) * sizeof(void *));
		}
		n -= drop;
		b->top = base + n;
		ebb_compiler_barrier();
		atomic_store_explicit(&tc->relayout, 0, memory_order_relaxed);
		if (keep == 0) {	/* all of it: from the top, nothing moved */
			bin_release_prepare(base + n, drop);
			tcache_return_blocks(cls, base + n, drop);
		}
		ebb_check(tbin_count(b) == n);	/* nothing re-entered: the slots were ours */
	}
	if (b->low > n)
		b->low = (uint8_t)n;
}

void tcache_flush_all(tcache_t *tc)
{
	for (unsigned c = 1; c <= NCLASS; c++)
		if (tbin_count(&tc->bins[c]))
			tcache_flush_bin(tc, c, 0);
	tcache_flush_remote(tc);
	tc->cached_pub = 0;
}

/* Send the other nodes' blocks of one class home, by owning arena, as a
 * flush does (into the class's transfer cache, the rest into the slabs). */
static void remote_flush_class(tcache_t *tc, unsigned cls)
{
	unsigned n = tc->nremote[cls];
	/* from the stack's slots, as tcache_flush_bin: no copy on the stack */
	void **b = remote_stack(tc, cls);
	tc->nremote[cls] = 0;
	ebb_compiler_barrier();
	while (n > 0) {
		arena_t *a;
		unsigned k = arena_group(b, n, &a);
		atomic_fetch_add_explicit(&a->remote_frees, k, memory_order_relaxed);
		arena_dalloc_cached(a, cls, b, k);
		b += k;
		n -= k;
	}
	ebb_check(tc->nremote[cls] == 0);	/* nothing re-entered */
}

void tcache_remote_push(tcache_t *tc, unsigned cls, void *p)
{
	unsigned n = tc->nremote[cls];
	remote_stack(tc, cls)[n] = p;
	ebb_compiler_barrier();	/* slot before count (fork's child) */
	tc->nremote[cls] = (uint8_t)(n + 1);
	if (n + 1 >= remote_cap[cls])
		remote_flush_class(tc, cls);
}

void tcache_flush_remote(tcache_t *tc)
{
	for (unsigned c = 1; c <= NSMALL; c++)
		if (tc->nremote[c])
			remote_flush_class(tc, c);
}

int tcache_remote_contains(const tcache_t *tc, unsigned cls, const void *p)
{
	if (cls > NSMALL || !tc->slots)
		return 0;
	void **s = remote_stack(tc, cls);
	for (unsigned i = 0; i < tc->nremote[cls]; i++)
		if (s[i] == p)
			return 1;
	return 0;
}

/* The owner, inside its gate, after an idle flush purged its bins with
 * the slot region: lay them out afresh (initial maxima; the region's
 * memo, if any, was purged too). */
void tcache_bins_relay(tcache_t *tc)
{
	atomic_store_explicit(&tc->bins_lost, 0, memory_order_relaxed);
	bin_limits_clear(tc);
	bin_limits(tc);	/* tc->bins still points to them */
}

void tcache_set_node(tcache_t *tc, unsigned node)
{
	if (node == tc->node)
		return;
	/* blocks of the old node go home before the thread switches */
	tcache_flush_all(tc);
	tc->node = node;
	tc->node_tag = node + 1;
	arena_thread_leave(tc->arena);
	tc->arena = arena_pick_for_thread(node, atomic_fetch_add_explicit(&tc_seq, 1, memory_order_relaxed));
}

/* Incremental GC, called every SLOW_TICK slow-path events: looks at 2
 * bins (so a tick stays short) and gives back at most a batch from each. A
 * bin whose low-water mark stayed above zero since its last look kept
 * blocks it did not need: it gives back a share of them (1/4, then 1/2,
 * then all, as the waste persists) and halves its max; unless it
 * overflowed meanwhile (blocks flowed through it: not waste). */
void tcache_gc_tick(tcache_t *tc)
{
	for (unsigned i = 0; i < 2; i++) {
		unsigned c = tc->gc_bin;
		tc->gc_bin = tc->gc_bin >= NCLASS ? 1 : tc->gc_bin + 1;
		if (c == 0)
			continue;
		tbin_t *b = &tc->bins[c];
		unsigned n = tbin_count(b);
		int overflowed = b->waste_ticks & BIN_OVERFLOWED;
		uint8_t cold = b->waste_ticks & BIN_COLD;	/* kept: the bin has not run dry */
		b->waste_ticks &= (uint8_t)~(BIN_OVERFLOWED | BIN_INHERITED | BIN_COLD);
		if (overflowed) {
			/* A bin that overflowed since the last look keeps a
			 * low-water mark above zero because blocks pass through
			 * it (a thread that mostly frees: a consumer): that is
			 * not waste, and halving it would only make its flushes
			 * smaller and more frequent (prodcons: 0.75 x the speed
			 * of fixed bins). The overflow flushes already return
			 * what it does not keep. */
			b->waste_ticks = 0;
		} else if (b->low > 0 && n > 0 && opt(OPT_tcache_adaptive)) {
			unsigned shift = b->waste_ticks >= 2 ? 0 : 2 - b->waste_ticks;
			unsigned drop = (b->low + (1u << shift) - 1) >> shift;
			if (drop > n)
				drop = n;
			if (drop > TCACHE_BATCH_MAX)
				drop = TCACHE_BATCH_MAX;
			tcache_flush_bin(tc, c, n - drop);
			if (b->waste_ticks < 2)
				b->waste_ticks++;
			if (tbin_max(b) > 1)
				bin_set_max(tc, c, tbin_max(b) - tbin_max(b) / 2);
		} else {
			b->waste_ticks = 0;
		}
		if (cold) {
			b->waste_ticks |= cold;
			b->batch = (uint16_t)bin_batch(b, c, tbin_max(b));
		}
		n = tbin_count(b);
		b->low = (uint8_t)(n > 255 ? 255 : n);
	}
	atomic_store_explicit(&tc->cached_pub, tcache_cached_bytes(tc), memory_order_relaxed);
}

size_t tcache_stats_bytes(uint64_t *nthreads)
{
	size_t total = 0;
	uint64_t n = 0;
	pthread_mutex_lock(&reg_lock);
	for (tcache_t *t = reg_head; t; t = t->reg_next) {
		total += atomic_load_explicit(&t->cached_pub, memory_order_relaxed);
		n++;
	}
	pthread_mutex_unlock(&reg_lock);
	if (nthreads)
		*nthreads = n;
	return total;
}

/* ---- idle caches ------------------------------------------------------------------ */
/*
 * A parked thread may never call malloc again, so its cache is flushed by
 * the reclaim thread, without the owner's help. The owner's side must cost
 * next to nothing. A fast path stores busy = 1 on entry and puts back the
 * value it found on exit, and it sees a steal in two bounds it compares
 * anyway: malloc's size bound (small_lim) and free's chunk-map bound
 * (map_limit), which only the reclaim thread writes. Everything else that
 * touches the cache (the slow paths, which fast paths reach with busy
 * still 1; thread exit; ebb_thread_idle) holds the gate: one unlocked
 * `addl $1, gate; js wait` and one `subl $1, gate`. gate holds the
 * holders' nesting count in its low 31 bits and GATE_STEAL in bit 31:
 *
 *   owner, fast path                       reclaim thread (tcache_idle_scan)
 *   busy = 1                               steal_active = 1
 *   if (size >= small_lim) slow path       atomic gate |= GATE_STEAL
 *   ... use the cache ...                  small_lim = map_limit = 0
 *   busy = 0                               membarrier(PRIVATE_EXPEDITED)
 *                                          if (busy == 0 && gate == GATE_STEAL)
 *   owner, slow path                           flush
 *   gate += 1; if (gate < 0) wait          small_lim, map_limit = their bounds
 *   ... use the cache ...                  atomic gate &= ~GATE_STEAL
 *   gate -= 1; busy = 0                    steal_active = 0
 *
 * Why it is safe: membarrier() makes every CPU running a thread of the
 * process execute a full barrier, and an instruction is never split by it.
 * So the owner's `busy = 1` either completed before the barrier (its store
 * is then visible: the reclaim thread reads busy 1 and backs off), or runs
 * after it, and then so do the fast path's compares, which read 0 and fail
 * (both test `x < bound`, which no x passes when the bound is 0; a
 * `size <= bound` test let malloc(0) pop class 1's bin during a flush, and
 * the block was handed out while it went back to its slab): the fast
 * path touches nothing and goes to the slow path, whose `addl` on the gate
 * reads GATE_STEAL (stored before the bounds), and it waits there until the
 * bit is cleared, i.e. until the flush is over. The same holds for a
 * holder's `addl`: before the barrier the reclaim thread reads a count >= 1;
 * after it the holder reads GATE_STEAL. The reclaim thread flushes only when
 * it reads busy 0 and exactly GATE_STEAL: its own bit, and no holder inside.
 *
 * The holders' plain read-modify-write can race with the reclaim thread's
 * locked ones: (a) it can erase GATE_STEAL as it is set: the reclaim thread
 * then does not read exactly GATE_STEAL and backs off; (b) it can put back
 * a GATE_STEAL that was just cleared (a "stale" bit): the owner's next
 * entry sees it, finds steal_active == 0 and clears it itself. Neither
 * lets the two touch the cache at once. The bounds are the reclaim
 * thread's alone, so no such race reaches them.
 *
 * A fast path that a signal handler's malloc interrupts finds busy 1 and
 * leaves it 1, so the interrupted call stays covered against a steal (not
 * against the handler's own use of the same bin: malloc in a handler that
 * interrupts malloc is no more safe than in glibc).
 *
 * Without membarrier (old kernels, seccomp) the scan is off and only
 * ebb_thread_idle and the owner's own GC return idle memory. Thread exit
 * cannot race: the destructor holds the gate, and the scan runs under the
 * registry lock that unregistering takes.
 */
static int idle_protocol = -1;	/* -1 unknown, 0 off, 1 on */

int tcache_idle_protocol_init(void)
{
	if (idle_protocol < 0)
		idle_protocol = os_membarrier_register() == 0;
	return idle_protocol;
}

void tcache_wait_steal(tcache_t *tc)
{
	for (;;) {
		uint32_t g = __atomic_load_n(&tc->gate, __ATOMIC_ACQUIRE);
		if (!(g & GATE_STEAL))
			return;
		if (!atomic_load_explicit(&tc->steal_active, memory_order_acquire)) {
			/* a stale bit our own unlocked add put back */
			__atomic_fetch_and(&tc->gate, ~GATE_STEAL, __ATOMIC_ACQ_REL);
			return;
		}
		sched_yield();
	}
}

#define HOLD_MAX 256	/* caches whose slot regions one scan purges */

/* The reclaim thread's request to the fast paths: their bounds at 0 send
 * every call to the slow path, which waits at the gate. */
static void steal_signal(tcache_t *t, int on)
{
	__atomic_store_n(&t->small_lim, on ? 0 : SMALL_LIM, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->map_limit, on ? 0 : MAP_LIMIT, __ATOMIC_SEQ_CST);
}

static void steal_release(tcache_t *t)
{
	steal_signal(t, 0);
	__atomic_fetch_and(&t->gate, ~GATE_STEAL, __ATOMIC_SEQ_CST);
	atomic_store_explicit(&t->steal_active, 0, memory_order_release);
}

void tcache_idle_scan(uint64_t now_ns)
{
	uint64_t idle_ns = (uint64_t)opt(OPT_tcache_idle_ms) * 1000000ull;
	if (idle_ns == 0 || idle_protocol != 1)
		return;
	unsigned marked = 0;
	pthread_mutex_lock(&reg_lock);
	for (tcache_t *t = reg_head; t; t = t->reg_next) {
		t->scan_mark = 0;
		uint64_t act = atomic_load_explicit(&t->activity, memory_order_relaxed);
		if (act != t->seen_activity) {	/* busy since the last scan */
			t->seen_activity = act;
			t->seen_ns = now_ns;
			continue;
		}
		if (t == tcache_self() || os_ns_since(now_ns, t->seen_ns) < idle_ns ||
		    atomic_load_explicit(&t->idle_flushed, memory_order_relaxed))
			continue;
		atomic_store_explicit(&t->steal_active, 1, memory_order_seq_cst);
		__atomic_fetch_or(&t->gate, GATE_STEAL, __ATOMIC_SEQ_CST);
		steal_signal(t, 1);	/* after the bit: a fast path that sees it finds the bit */
		t->scan_mark = 1;
		marked++;
	}
	/* Flushed caches stay held (their gate bit set) until their slot
	 * regions are purged too: an empty stack's pages hold nothing, and a
	 * parked thread would otherwise pin them (~20 KiB a thread that used
	 * many classes: 20 MiB for 1000 parked threads). The purge is one
	 * backend call for them all, made with no lock held; a held cache
	 * cannot go away (its owner, even exiting, waits at the gate). */
	struct iovec iov[HOLD_MAX];
	tcache_t *held[HOLD_MAX];
	unsigned nheld = 0;
	if (marked) {
		int barrier_ok = os_membarrier() == 0;
		size_t region = slot_region_bytes();
		for (tcache_t *t = reg_head; t; t = t->reg_next) {
			if (!t->scan_mark)
				continue;
			t->scan_mark = 0;
			/* seq_cst, as the stores above: for the atomic (TSan,
			 * non-x86) variant this is Dekker's pattern, and an
			 * acquire load may be ordered before the store of the
			 * bounds (C11 allows it; ARMv8's ldar after stlr and
			 * x86 do not) */
			if (barrier_ok && __atomic_load_n(&t->busy, __ATOMIC_SEQ_CST) == 0 &&
			    __atomic_load_n(&t->gate, __ATOMIC_SEQ_CST) == GATE_STEAL &&
			    t->state == TC_ACTIVE) {
				tcache_flush_all(t);
				if (t->slots && nheld < HOLD_MAX) {
					iov[nheld] = (struct iovec){ region_bins(t->slots), region };
					held[nheld++] = t;
					atomic_store_explicit(&t->idle_flushed, 1, memory_order_relaxed);
					continue;
				}
				/* no room to hold it this time: the next scan
				 * flushes (nothing) and purges it */
				if (!t->slots)
					atomic_store_explicit(&t->idle_flushed, 1, memory_order_relaxed);
			}
			steal_release(t);
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (nheld) {
		backend_purge(iov, nheld, RECLAIM_DONTNEED);	/* best effort */
		for (unsigned i = 0; i < nheld; i++) {
			/* the bins read as zeros now (or, if the purge
			 * failed, as the empty stacks they were): the
			 * owner lays them out again before it uses them */
			atomic_store_explicit(&held[i]->bins_lost, 1, memory_order_relaxed);
			steal_release(held[i]);
		}
	}
}

/* ---- fork -------------------------------------------------------------------------- */
void tcache_atfork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
}

void tcache_atfork_parent(void)
{
	pthread_mutex_unlock(&reg_lock);
}

void tcache_atfork_child(void)
{
	/* held by this thread since prepare: unlocked, not re-initialised
	 * (re-initialising a locked mutex is undefined; TSan reported a
	 * double lock when the child's new threads then took it) */
	pthread_mutex_unlock(&reg_lock);
	/* The other threads do not exist in the child: return what their
	 * caches held and forget them. Each stack, up to its top, is
	 * consistent at every instant of the fast paths (a push stores the
	 * slot before the top); a cache caught moving its stacks is skipped. */
	tcache_t *self = tcache_self();
	tcache_t *t = reg_head;
	reg_head = NULL;
	while (t) {
		tcache_t *next = t->reg_next;
		atomic_store_explicit(&t->steal_active, 0, memory_order_relaxed);
		steal_signal(t, 0);
		t->gate &= ~GATE_STEAL;
		if (t != self) {
			/* stopped while moving its stacks: leak what it held */
			if (!atomic_load_explicit(&t->relayout, memory_order_relaxed) && t->slots)
				tcache_flush_all(t);
			bin_limits_clear(t);
			cache_region_put_locked(t);
			t->relayout = 0;
		}
		t = next;
	}
	atomic_store_explicit(&live_caches, self->state == TC_ACTIVE, memory_order_relaxed);
	if (self->state == TC_ACTIVE) {
		self->reg_prev = self->reg_next = NULL;
		reg_head = self;
	}
}
