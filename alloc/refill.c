/*
 * refill.c - everything malloc.c's fast paths hand off: first-use
 * initialisation, refilling and flushing thread-cache bins, blocks of
 * another node, huge blocks, aligned allocation, realloc, and diagnosing
 * bad pointers.
 *
 * Initialisation happens on the first call into the allocator, whoever
 * makes it (the dynamic loader, a constructor, libnuma): phase 1 (size
 * classes, options, topology, arenas) makes no call that could allocate,
 * so it cannot recurse; only then is the allocator marked ready, and phase
 * 2 (pthread_atfork, atexit, verbose output), which may call malloc, runs.
 * A thread's cache is set up on its first slow path; while it is being set
 * up (pthread_setspecific may allocate) the thread is served by its arena
 * directly (invariant 3).
 *
 * Housekeeping (node refresh, cache GC, the idle clock) runs every
 * SLOW_TICK slow-path events, never on the fast path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"
#include "reclaim.h"

_Atomic int ebb_inited;			/* 0 no, 1 in phase 1, 2 ready */
static _Atomic int init_phase2;
static _Atomic unsigned init_owner;

#define SLOW_TICK 64

static void atfork_prepare(void)
{
	reclaim_atfork_prepare();
	tcache_atfork_prepare();
	arena_atfork_prepare();
	chunk_atfork_prepare();
	backend_atfork_prepare();
}

static void atfork_parent(void)
{
	backend_atfork_parent();
	chunk_atfork_parent();
	arena_atfork_parent();
	tcache_atfork_parent();
	reclaim_atfork_parent();
}

static void atfork_child(void)
{
	backend_atfork_child();
	chunk_atfork_child();
	arena_atfork_child();
	/* first: no reclaim thread may be started from inside this handler,
	 * and flushing the dead threads' caches below would try */
	reclaim_atfork_child();
	tcache_atfork_child();
	reclaim_atfork_child_done();
}

static void init_phase1(void)
{
	sizeclass_init();
	options_init();
	tcache_key = (uintptr_t)os_random();
	topo_init();
	nnodes = topo_nnodes();
	unsigned apn = (unsigned)opt(OPT_arenas_per_node);
	if (apn == 0) {
		/* one arena per CPU of the node, at most 4: enough to keep
		 * lock contention low (caches absorb most traffic), few
		 * enough that memory is not spread thin. */
		unsigned cpus = topo_cpus_of_node(0);
		apn = cpus < 1 ? 1 : cpus > 4 ? 4 : cpus;
	}
	if (apn > EBB_MAX_ARENAS_PER_NODE)
		apn = EBB_MAX_ARENAS_PER_NODE;
	arenas_per_node = apn;
	/* static storage (.bss, touched only for the arenas in use): init
	 * maps nothing, so a first malloc that meets ENOMEM gets NULL instead
	 * of a process that cannot start (tests/hardening/init_oom.c) */
	static arena_t mem[EBB_MAX_NODES * EBB_MAX_ARENAS_PER_NODE];
	for (unsigned n = 0; n < nnodes; n++)
		for (unsigned k = 0; k < apn; k++) {
			unsigned i = n * apn + k;
			arena_init(&mem[i], n, i);
			arenas[i] = &mem[i];
		}
	narenas = nnodes * apn;
}

static void init_phase2_run(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	if (opt(OPT_stats))
		stats_at_exit_arm();
	if (opt(OPT_verbose)) {
		ebb_message("ebbmalloc %d.%d%s, %s, %u arena(s) per node",
			    EBBMALLOC_VERSION_MAJOR, EBBMALLOC_VERSION_MINOR,
			    ebb_build_free_reads_block ? "" : " (fastfree build: free does not read the block)",
			    topo_describe(), arenas_per_node);
		options_print();
		/* the backend is otherwise probed at the first purge; with
		 * verbose on, probe it now so that start-up names it */
		backend_select((int)opt(OPT_reclaim_backend));
	}
}

int ebb_init_slow(void)
{
	if (ebb_likely(atomic_load_explicit(&ebb_inited, memory_order_acquire) == 2))
		return 0;
	unsigned me = os_gettid();
	int expect = 0;
	if (atomic_compare_exchange_strong_explicit(&ebb_inited, &expect, 1,
						    memory_order_acq_rel, memory_order_acquire)) {
		atomic_store_explicit(&init_owner, me, memory_order_relaxed);
		init_phase1();
		atomic_store_explicit(&ebb_inited, 2, memory_order_release);
	} else {
		ebb_check(atomic_load_explicit(&init_owner, memory_order_relaxed) != me);
		while (atomic_load_explicit(&ebb_inited, memory_order_acquire) != 2)
			sched_yield();
	}
	int zero = 0;
	if (atomic_load_explicit(&init_owner, memory_order_relaxed) == me &&
	    atomic_compare_exchange_strong_explicit(&init_phase2, &zero, 1,
						    memory_order_acq_rel, memory_order_relaxed))
		init_phase2_run();
	return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */
/* The arena a cache refills from and a large block comes from: of the
 * thread's node, the one of the CPU the thread runs on. Two threads that
 * run at the same time then take different arena locks however many
 * threads there are. Measured on 2 CPUs, 2 arenas, bench/prodcons.c with
 * two pairs: each pair on one CPU (pin=1) 51-67M blocks/s against 29-46M
 * with an arena fixed per thread (which put both producers on one arena);
 * each pair across two CPUs (pin=2) 22-24M against 27-29M (blocks freed
 * on a CPU then come back to the other one's arena); unpinned, larson and
 * the JVM workload: no difference beyond noise; callgrind: none. With
 * EBB_ARENA_PICK=thread, or when the CPU is unknown, the thread's own
 * arena (the least shared at its start). */
static arena_t *thread_arena(tcache_t *tc)
{
	unsigned cpu = 0;
	if (tc->arena && (arenas_per_node == 1 || opt(OPT_arena_pick) != 0))
		return tc->arena;
	if (os_getcpu(&cpu) != 0)
		return tc->arena ? tc->arena : arena_pick(0, 0);
	/* a thread without a cache has no node of its own: the CPU's */
	return arena_pick(tc->arena ? tc->node : topo_node_of_cpu(cpu), topo_rank_of_cpu(cpu));
}

static void *alloc_direct(tcache_t *tc, unsigned cls)
{
	arena_t *a = thread_arena(tc);
	if (cls > NSMALL)
		return arena_alloc_large(a, cls, 0);
	void *p;
	return arena_alloc_small(a, cls, &p, 1) ? p : NULL;
}

/* Out of address space or memory: purge everything dirty now (which also
 * unmaps empty chunks) before giving up, once. */
static void oom_relief(void)
{
	reclaim_run(1, 0);
	for (unsigned i = 0; i < narenas; i++)
		arena_release_empty(arenas[i]);
}

static void *alloc_huge_z(size_t size, size_t align, int *zeroed)
{
	huge_t *h = huge_alloc(size, align, zeroed);
	if (!h && size <= (SIZE_MAX >> 1)) {
		oom_relief();
		h = huge_alloc(size, align, zeroed);
	}
	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	return h->addr;
}

static void *alloc_huge(size_t size, size_t align)
{
	int zeroed;
	return alloc_huge_z(size, align, &zeroed);
}

/* calloc of a huge block: fresh mappings are zero already, reused ones
 * are cleared. */
void *refill_calloc_huge(size_t size)
{
	if (ebb_unlikely(atomic_load_explicit(&ebb_inited, memory_order_acquire) != 2))
		ebb_init_slow();
	int zeroed;
	void *p = alloc_huge_z(size, 0, &zeroed);
	if (p && !zeroed)
		memset(p, 0, size);
	return p;
}

static void slow_tick(tcache_t *tc)
{
	/* the idle clock: a cache is idle when its owner has not been here
	 * for tcache_idle_ms. The owner only counts (a clock read per slow
	 * path was 5 % of a producer/consumer run); the idle scan notes when
	 * the count last moved. */
	atomic_store_explicit(&tc->activity, atomic_load_explicit(&tc->activity, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (atomic_load_explicit(&tc->idle_flushed, memory_order_relaxed))
		atomic_store_explicit(&tc->idle_flushed, 0, memory_order_relaxed);
	/* the reclaim thread keeps the stats file: start it on the first
	 * slow path, or a process that allocates little never gets one */
	if (ebb_unlikely(opt_stats_file[0]))
		reclaim_ensure_thread();
	if (++tc->slow_events % SLOW_TICK)
		return;
	/* EBB_DEBUG=3: walk the whole structure now and then (the oracle) */
	ebb_assert_expensive(tcache_is_valid(tc));
	if (EBB_DEBUG >= 3 && tc->slow_events % (SLOW_TICK * 16) == 0)
		for (unsigned i = 0; i < narenas; i++)
			ebb_assert_expensive(arena_is_valid(arenas[i]));
	if (nnodes > 1) {
		unsigned cpu;
		if (os_getcpu(&cpu) == 0)
			tcache_set_node(tc, topo_node_of_cpu(cpu));
	}
	tcache_gc_tick(tc);
}

/* ---- malloc ------------------------------------------------------------------------- */
/* A small block leaves the allocator: neither of its first two words may
 * carry the key (alloc/fastpath.h), whichever build this is. */
static void *block_handout(void *p)
{
	((void **)p)[0] = NULL;
	((void **)p)[1] = NULL;
	return p;
}

/* A page run leaves the allocator: the fastfree build caches page runs too
 * (up to 256 KiB), so it clears their words; the default build leaves a
 * new run's first page untouched. */
static void *run_handout(void *p)
{
	return ebb_build_free_reads_block ? p : block_handout(p);
}

/* A bin's top block, as the fast path takes it: in the fastfree build a
 * block freed into the cache must still have the key in its first word
 * and not in its second (alloc/fastpath.h), or it was handed out, or
 * given back to its arena, since that free. */
static void *bin_pop(tcache_t *tc, tbin_t *b)
{
	void **q = slot_block(b->top[-1]);
	if (!ebb_build_free_reads_block && q == b->top[-1] && !block_freed_here(q, tc->key))
		tcache_fatal_second_free(q, "malloc as it was to hand the block out again");
	b->top--;
	ebb_compiler_barrier();	/* top first, as on the fast path */
	return block_handout(q);
}

static void *malloc_slow(tcache_t *tc, size_t size)
{
	if (ebb_unlikely(atomic_load_explicit(&ebb_inited, memory_order_acquire) != 2))
		ebb_init_slow();
	if (size > LARGE_MAX)
		return alloc_huge(size, 0);
	if (tc->state == TC_UNINIT)
		tcache_init(tc);
	unsigned cls = sizeclass_of(size);
	void *p;
	if (tc->state != TC_ACTIVE) {
		p = alloc_direct(tc, cls);
		if (!p) {
			oom_relief();
			p = alloc_direct(tc, cls);
		}
		goto out;
	}
	slow_tick(tc);
	tbin_t *b = &tc->bins[cls];
	if (tbin_count(b))	/* sizes above the fast path's table, or a bad block on top */
		return bin_pop(tc, b);
	tcache_bin_dry(tc, cls);
	ebb_check(tbin_count(b) == 0);	/* nothing re-entered: the refill fills an empty stack */
	if (cls > NSMALL || tbin_max(b) == 0) {
		p = alloc_direct(tc, cls);
		if (!p) {
			tcache_flush_all(tc);
			oom_relief();
			p = alloc_direct(tc, cls);
		}
		goto out;
	}
	/* The blocks go straight into the bin's stack (the bin is empty, and
	 * 1 <= want <= max: the stack has room). None of them is touched
	 * here, so a refill costs no cache miss or page fault per block;
	 * each one's key is cleared as it is handed out. The block returned
	 * is the top one. Nothing on this path calls back into malloc
	 * (the reclaim thread's start is deferred to a slow path's entry),
	 * so nothing else writes to the stack meanwhile. */
	unsigned want = b->batch;
	if (want > tbin_max(b))
		want = tbin_max(b);
	ebb_assert_internal(want >= 1);	/* max > 0 here, and batch >= 1 */
	arena_t *a = thread_arena(tc);
	unsigned got = arena_alloc_small(a, cls, b->top, want);
	if (got == 0) {
		/* out of memory: give back what the bins hold, purge, retry once */
		tcache_flush_all(tc);
		oom_relief();
		void *one;
		got = arena_alloc_small(a, cls, &one, 1);
		if (got == 0) {
			errno = ENOMEM;
			return NULL;
		}
		return block_handout(one);
	}
	void **q = b->top[got - 1];
	if (!ebb_build_free_reads_block)	/* not freed here: their words are the slab's */
		for (unsigned i = 0; i + 1 < got; i++)
			b->top[i] = (void *)((uintptr_t)b->top[i] | SLOT_FRESH);
	b->top += got - 1;
	return block_handout(q);
out:
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	return cls <= NSMALL ? block_handout(p) : run_handout(p);
}

/* The slow paths' entry from a fast path (busy set): take the gate, which
 * waits out an idle flush in progress, and start the reclaim thread if a
 * free asked for it (no bin is half-way here). */
static tcache_t *slow_entry(void)
{
	tcache_t *tc = tcache_self();
	tcache_enter(tc);
	if (ebb_unlikely(atomic_load_explicit(&tc->bins_lost, memory_order_relaxed)) &&
	    tc->state == TC_ACTIVE)
		tcache_bins_relay(tc);	/* purged while the thread was idle */
	if (ebb_unlikely(atomic_load_explicit(&reclaim_start_wanted, memory_order_relaxed)))
		reclaim_start_pending();
	return tc;
}

void *refill_malloc_slow(size_t size, uint32_t busy)
{
	tcache_t *tc = slow_entry();
	void *p = malloc_slow(tc, size);
	tcache_exit(tc);
	tcache_fast_exit(tc, busy);
	return p;
}

/* ---- free ---------------------------------------------------------------------------- */
static int bin_contains(tbin_t *b, void *p)
{
	for (void **s = tbin_base(b); s < b->top; s++)
		if (slot_block(*s) == p)	/* tagged or not */
			return 1;
	return 0;
}

static void free_slow(tcache_t *tc, void *p)
{
	if (!p)
		return;
	uintptr_t e = rtree_get(p);
	if (e == 0)
		ebb_fatal_ptr("free", huge_cache_holds(p) ? "double free" : "invalid pointer", p);
	if (!(e & 1)) {
		huge_t *h = (huge_t *)e;
		if (h->addr != p)
			ebb_fatal_ptr("free", "invalid pointer", p);
		huge_free(h);
		return;
	}
	chunk_t *c = chunk_of(p);
	size_t pg = chunk_page_of(c, p);
	unsigned cls = c->page_cls[pg];
	if (cls == 0) {
		/* not a block start of a live run: a freed run whose first
		 * block still carries the key was freed before */
		if (pg >= c->hdr_pages && ((uintptr_t *)p)[1] == tcache_key)
			ebb_fatal_ptr("free", "double free", p);
		ebb_fatal_ptr("free", "invalid pointer", p);
	}
	if (!chunk_is_block_start(c, pg, cls, p))
		ebb_fatal_ptr("free", "invalid pointer", p);
	/* the key: in the second word of a block cached or in an arena; in
	 * the fastfree build, in the first word of a cached one */
	if (((uintptr_t *)p)[1] == tcache_key ||
	    (!ebb_build_free_reads_block && ((uintptr_t *)p)[0] == tcache_key)) {
		/* cached blocks carry the key: is p in our cache already, or
		 * back in its slab? Otherwise the key was a coincidence or
		 * another thread's cache holds it (not detectable cheaply). */
		if (tc->state == TC_ACTIVE &&
		    (bin_contains(&tc->bins[cls], p) || tcache_remote_contains(tc, cls, p)))
			ebb_fatal_ptr("free", "double free", p);
		arena_check_block(p, "free");
	}
	/* a thread whose first call is free (a pure consumer) gets its
	 * cache here too, or every free it makes would take a lock */
	if (tc->state == TC_UNINIT)
		tcache_init(tc);
	if (tc->state != TC_ACTIVE) {
		((uintptr_t *)p)[1] = tcache_key;
		arena_dalloc_batch(c->arena, &p, 1);
		return;
	}
	/* before the node test: the tick may move the thread to another node
	 * (tcache_set_node), and a block of the old node must not be cached
	 * in the new node's bins (EBB_NUMA_FAKE=2 under DEBUG=3 caught it) */
	slow_tick(tc);
	if (c->node != tc->node) {
		/* another node's block goes home (never into this thread's
		 * bins, where this node's threads would reuse it), with others
		 * in a batch: a lock round trip per block made a cross-node
		 * producer/consumer pair a third as fast as one node */
		((uintptr_t *)p)[1] = tcache_key;
		if (cls <= NSMALL) {
			tcache_remote_push(tc, cls, p);
		} else {
			atomic_fetch_add_explicit(&c->arena->remote_frees, 1, memory_order_relaxed);
			arena_dalloc_batch(c->arena, &p, 1);
		}
		return;
	}
	tbin_t *b = &tc->bins[cls];
	if (tbin_count(b) >= tbin_max(b))
		tcache_bin_overflow(tc, cls);
	if (tbin_count(b) >= tbin_max(b)) {	/* no room even after growing and flushing */
		((uintptr_t *)p)[1] = tcache_key;
		arena_dalloc_batch(c->arena, &p, 1);
		return;
	}
	((void **)p)[ebb_build_free_reads_block ? 1 : 0] = (void *)tcache_key;
	b->top[0] = p;
	ebb_compiler_barrier();	/* slot before top, as on the fast path */
	b->top++;
}

void refill_free_slow(void *p, uint32_t busy)
{
	tcache_t *tc = slow_entry();
	free_slow(tc, p);
	tcache_exit(tc);
	tcache_fast_exit(tc, busy);
}

/* ---- usable size, aligned, realloc ------------------------------------------------- */
static size_t usable_checked(const void *p, const char *fn, huge_t **hp)
{
	uintptr_t e = rtree_get(p);
	*hp = NULL;
	if (e == 0)
		ebb_fatal_ptr(fn, huge_cache_holds(p) ? "use after free" : "invalid pointer", p);
	if (!(e & 1)) {
		huge_t *h = (huge_t *)e;
		if (h->addr != p)
			ebb_fatal_ptr(fn, "invalid pointer", p);
		*hp = h;
		return h->map_bytes;
	}
	chunk_t *c = chunk_of(p);
	size_t pg = chunk_page_of(c, p);
	unsigned cls = c->page_cls[pg];
	if (cls == 0)
		ebb_fatal_ptr(fn, "invalid pointer", p);
	if (!chunk_is_block_start(c, pg, cls, p))
		ebb_fatal_ptr(fn, "invalid pointer", p);
	return sizeclass_info[cls].size;
}

size_t refill_usable_size(const void *p)
{
	if (!p)
		return 0;
	huge_t *h;
	return usable_checked(p, "malloc_usable_size", &h);
}

/* API misuse that costs a lookup, so checked from EBB_DEBUG 1 on (release
 * builds ignore the size and alignment, as C23 allows): a size larger than
 * the block cannot be the one it was allocated with, and a pointer without
 * the alignment it names was not allocated with it. */
void refill_check_sized(const char *fn, const void *p, size_t align, size_t size)
{
	if (!p)
		return;
	huge_t *h;
	if (size > usable_checked(p, fn, &h))
		ebb_fatal_ptr(fn, "size larger than the block", p);
	if (align && !(align & (align - 1)) && ((uintptr_t)p & (align - 1)))
		ebb_fatal_ptr(fn, "pointer without the stated alignment", p);
}

void *refill_aligned(size_t align, size_t size)
{
	if (ebb_unlikely(atomic_load_explicit(&ebb_inited, memory_order_acquire) != 2))
		ebb_init_slow();
	if (size == 0)
		size = 1;
	if (align <= MIN_ALIGN)
		return ebb_malloc(size);
	if (size > LARGE_MAX || align >= LARGE_MAX) {
		if (size > SIZE_MAX - align) {
			errno = ENOMEM;
			return NULL;
		}
		return alloc_huge(size, align);
	}
	if (align <= PAGE_SIZE) {
		/* a class whose size is a multiple of align: its blocks sit at
		 * multiples of their size from a page-aligned slab start */
		unsigned cls = sizeclass_of(size > align ? size : align);
		while (cls <= NSMALL && sizeclass_info[cls].size % align)
			cls++;
		return ebb_malloc(sizeclass_info[cls].size);
	}
	unsigned cls = sizeclass_of(size > SMALL_MAX ? size : SMALL_MAX + 1);
	tcache_t *tc = tcache_self();
	void *p = arena_alloc_large(thread_arena(tc), cls, align);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	return run_handout(p);
}

void *refill_realloc(void *p, size_t size)
{
	if (!p)
		return ebb_malloc(size);
	if (size == 0) {
		/* glibc: realloc(p, 0) frees p and returns NULL */
		ebb_free(p);
		return NULL;
	}
	huge_t *h;
	size_t old = usable_checked(p, "realloc", &h);
	if (h && size > LARGE_MAX) {
		if (huge_realloc(h, size))
			return h->addr;
	} else if (!h && size <= old) {
		/* shrinking by less than half, or within the class: keep it */
		if (size > old / 2 || sizeclass_of(size) == sizeclass_of(old))
			return p;
	} else if (!h && old > SMALL_MAX && size <= LARGE_MAX) {
		/* a page run grows into the free pages right after it */
		chunk_t *c = chunk_of(p);
		if (arena_grow_large(c->arena, p, sizeclass_of(size)))
			return p;
	}
	void *q = ebb_malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	ebb_free(p);
	return q;
}
