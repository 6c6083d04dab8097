/*
 * tcache.c - per-thread caches: bins, limits, flushing, thread exit, fork.
 *
 * Each thread has a tcache_t in static TLS (initial-exec: no allocation, no
 * lock to reach it). A bin is a LIFO stack of free blocks of one class,
 * linked through their first word; their second word holds tcache_key, so
 * that a second free of a cached block is noticed on the fast path and
 * confirmed on the slow path. A bin holds at most bin->max blocks, and all
 * bins together at most tcache_max_bytes (tc->room counts down).
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
#include <string.h>

#include "internal.h"
#include "os.h"

__thread tcache_t ebb_tcache __attribute__((tls_model("initial-exec")));
uintptr_t tcache_key;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static tcache_t *reg_head;
static pthread_key_t tc_key;
static int tc_key_ok;
static _Atomic unsigned tc_seq;

#define FLUSH_BATCH 256

/* ---- limits ------------------------------------------------------------------ */
static void bin_limits(tcache_t *tc)
{
	size_t limit = (size_t)opt(OPT_tcache_max_bytes);
	size_t budget = limit / 32;
	for (unsigned c = 1; c <= NCLASS; c++) {
		tbin_t *b = &tc->bins[c];
		size_t size = sizeclass_info[c].size;
		size_t max;
		if (limit == 0)
			max = 0;
		else if (c <= NSMALL)
			max = budget / size < 4 ? 4 : budget / size > 256 ? 256 : budget / size;
		else if (size <= 256 * 1024)
			max = budget * 2 / size < 1 ? 1 : budget * 2 / size > 8 ? 8 : budget * 2 / size;
		else
			max = 0;
		if (max * size > limit)
			max = limit / size;
		b->max = (uint32_t)max;
		b->batch = (uint32_t)(max / 2 ? max / 2 : 1);
		b->low = 0;
	}
	tc->room = (int64_t)limit;
}

/* ---- registry and thread exit ------------------------------------------------- */
static void tcache_destructor(void *arg)
{
	tcache_t *tc = arg;
	if (tc->state != TC_ACTIVE)
		return;
	tcache_enter(tc);
	tc->state = TC_BUSY;
	tcache_flush_all(tc);
	pthread_mutex_lock(&reg_lock);
	if (tc->reg_prev)
		tc->reg_prev->reg_next = tc->reg_next;
	else
		reg_head = tc->reg_next;
	if (tc->reg_next)
		tc->reg_next->reg_prev = tc->reg_prev;
	pthread_mutex_unlock(&reg_lock);
	for (unsigned c = 0; c <= NCLASS; c++)
		tc->bins[c].max = 0;
	tc->room = 0;
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
	tc->arena = arena_pick(tc->node, atomic_fetch_add_explicit(&tc_seq, 1, memory_order_relaxed));
	bin_limits(tc);
	atomic_store_explicit(&tc->last_active_ns, os_now_ns(), memory_order_relaxed);
	/* pthread_setspecific may allocate for high key numbers; we are BUSY,
	 * so such a call is served by the arenas directly. */
	if (tc_key_ok != 1 || pthread_setspecific(tc_key, tc) != 0) {
		for (unsigned c = 0; c <= NCLASS; c++)
			tc->bins[c].max = 0;
		tc->room = 0;
		tc->state = TC_DEAD;	/* no destructor: never cache */
		return -1;
	}
	pthread_mutex_lock(&reg_lock);
	tc->reg_prev = NULL;
	tc->reg_next = reg_head;
	if (reg_head)
		reg_head->reg_prev = tc;
	reg_head = tc;
	pthread_mutex_unlock(&reg_lock);
	tc->state = TC_ACTIVE;
	return 0;
}

/* ---- returning blocks ---------------------------------------------------------- */
void tcache_return_blocks(void **blocks, unsigned n)
{
	/* Group by owning arena: take the first block's arena, pull every
	 * block of that arena to the front, hand them back, repeat. */
	while (n > 0) {
		arena_t *a = chunk_of(blocks[0])->arena;
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++) {
			if (chunk_of(blocks[i])->arena == a) {
				void *t = blocks[k];
				blocks[k++] = blocks[i];
				blocks[i] = t;
			}
		}
		arena_dalloc_batch(a, blocks, k);
		blocks += k;
		n -= k;
	}
}

void tcache_flush_bin(tcache_t *tc, unsigned cls, unsigned keep)
{
	tbin_t *b = &tc->bins[cls];
	void *blocks[FLUSH_BATCH];
	size_t size = sizeclass_info[cls].size;
	/* keep the first `keep` (most recently freed, warm) blocks */
	void **p = b->head, **last = NULL;
	unsigned k = 0;
	while (p && k < keep) {
		last = p;
		p = p[0];
		k++;
	}
	if (last)
		last[0] = NULL;
	else
		b->head = NULL;
	b->count = k;
	unsigned n = 0;
	while (p) {
		void **next = p[0];
		/* p[1] keeps tcache_key: a later free of p takes the slow
		 * path, which finds it free in its slab (double free) */
		blocks[n++] = p;
		tc->room += (int64_t)size;
		if (n == FLUSH_BATCH) {
			tcache_return_blocks(blocks, n);
			n = 0;
		}
		p = next;
	}
	if (n)
		tcache_return_blocks(blocks, n);
	if (b->low > k)
		b->low = k;
}

void tcache_flush_all(tcache_t *tc)
{
	for (unsigned c = 1; c <= NCLASS; c++)
		if (tc->bins[c].head)
			tcache_flush_bin(tc, c, 0);
	tc->cached_pub = 0;
}

void tcache_set_node(tcache_t *tc, unsigned node)
{
	if (node == tc->node)
		return;
	/* blocks of the old node go home before the thread switches */
	tcache_flush_all(tc);
	tc->node = node;
	tc->arena = arena_pick(node, atomic_fetch_add_explicit(&tc_seq, 1, memory_order_relaxed));
}

/* Incremental GC, called every few hundred slow-path events: a bin whose
 * low-water mark stayed above zero since the last look kept blocks it did
 * not need; give back half of them. */
void tcache_gc_tick(tcache_t *tc)
{
	for (unsigned i = 0; i < 8; i++) {
		unsigned c = tc->gc_bin;
		tc->gc_bin = tc->gc_bin >= NCLASS ? 1 : tc->gc_bin + 1;
		if (c == 0)
			continue;
		tbin_t *b = &tc->bins[c];
		if (b->low > 0 && b->count > 0) {
			unsigned drop = (b->low + 1) / 2;
			tcache_flush_bin(tc, c, b->count > drop ? b->count - drop : 0);
		}
		b->low = b->count;
	}
	tc->cached_pub = (uint64_t)((int64_t)opt(OPT_tcache_max_bytes) - tc->room);
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
 * the reclaim thread, without the owner's help, by an asymmetric Dekker
 * handshake:
 *
 *   owner (every allocator call)        reclaim thread (tcache_idle_scan)
 *   in_use++  (plain store)             steal_req = 1        (for each idle cache)
 *   compiler barrier                    membarrier(PRIVATE_EXPEDITED)
 *   if (steal_req) wait until 0         if (in_use == 0) flush the cache
 *   ... use the cache ...               steal_req = 0        (release)
 *   in_use--  (release store)
 *
 * membarrier() runs a full barrier on every CPU running a thread of this
 * process, so either the owner's in_use store is visible to the reclaim
 * thread (it backs off), or the owner's later load sees steal_req and the
 * owner waits until the flush is done. The owner's side costs three plain
 * memory operations and a branch on each call, no fences. Without
 * membarrier (old kernels, seccomp) the scan is off and only ebb_thread_idle
 * and the owner's own GC return idle memory. Thread exit cannot race: the
 * destructor holds in_use, and the scan runs under the registry lock that
 * unregistering takes.
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
	while (atomic_load_explicit(&tc->steal_req, memory_order_acquire))
		sched_yield();
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
		uint64_t last = atomic_load_explicit(&t->last_active_ns, memory_order_relaxed);
		if (t == tcache_self() || now_ns - last < idle_ns ||
		    atomic_load_explicit(&t->idle_flushed, memory_order_relaxed))
			continue;
		atomic_store_explicit(&t->steal_req, 1, memory_order_relaxed);
		t->scan_mark = 1;
		marked++;
	}
	if (marked) {
		int barrier_ok = os_membarrier() == 0;
		for (tcache_t *t = reg_head; t; t = t->reg_next) {
			if (!t->scan_mark)
				continue;
			if (barrier_ok && atomic_load_explicit(&t->in_use, memory_order_acquire) == 0 &&
			    t->state == TC_ACTIVE) {
				tcache_flush_all(t);
				atomic_store_explicit(&t->idle_flushed, 1, memory_order_relaxed);
			}
			atomic_store_explicit(&t->steal_req, 0, memory_order_release);
			t->scan_mark = 0;
		}
	}
	pthread_mutex_unlock(&reg_lock);
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
	pthread_mutex_init(&reg_lock, NULL);
	/* The other threads do not exist in the child: return what their
	 * caches held (walking the lists by pointer, which is consistent at
	 * every instant of the fast paths) and forget them. */
	tcache_t *self = tcache_self();
	tcache_t *t = reg_head;
	reg_head = NULL;
	while (t) {
		tcache_t *next = t->reg_next;
		atomic_store_explicit(&t->steal_req, 0, memory_order_relaxed);
		if (t != self)
			tcache_flush_all(t);
		t = next;
	}
	if (self->state == TC_ACTIVE) {
		self->reg_prev = self->reg_next = NULL;
		reg_head = self;
	}
}
