/* test_arena.c - slabs, page runs, coalescing and the dirty -> purging ->
 * clean state machine (invariant 1), checked with the invariant walker. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "os.h"
#include "reclaim.h"

static arena_t *A;

static uint64_t test_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* purge everything arena a holds dirty (what earlier tests left, say) */
static void purge_everything(arena_t *a)
{
	static struct iovec v[1024];
	unsigned n;
	while ((n = arena_purge_take(a, test_now(), 0, 0, 1, v, 1024)))
		arena_purge_done(a, v, n, 1);
}

static int setup(void **state)
{
	(void)state;
	setenv("EBB_RECLAIM", "off", 1);	/* this test drives purging itself */
	setenv("EBB_ARENAS_PER_NODE", "2", 1);	/* the dirty cap's share (below) */
	ebb_init_slow();
	A = arenas[0];
	return 0;
}

static void test_small_fill_and_free(void **state)
{
	(void)state;
	unsigned cls = sizeclass_of(48);
	const struct class_info *ci = &sizeclass_info[cls];
	unsigned n = ci->slab_objs * 3 + 7;	/* spans several slabs */
	void **blocks = calloc(n, sizeof(void *));
	unsigned got = 0;
	while (got < n)
		got += arena_alloc_small(A, cls, blocks + got, n - got);
	assert_true(arena_is_valid(A));
	/* distinct, aligned to the class, writable without overlap */
	for (unsigned i = 0; i < n; i++) {
		assert_true(((uintptr_t)blocks[i] & 15) == 0);
		memset(blocks[i], (int)(i & 0xff), ci->size);
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned char *p = blocks[i];
		for (unsigned k = 0; k < ci->size; k++)
			assert_int_equal(p[k], i & 0xff);
	}
	size_t active = A->active_pages;
	arena_dalloc_batch(A, blocks, n);
	assert_true(arena_is_valid(A));
	/* every slab emptied: its pages became dirty */
	assert_true(A->active_pages < active);
	free(blocks);
}

static void test_large_runs_coalesce(void **state)
{
	(void)state;
	unsigned cls = sizeclass_of(64 * 1024);
	void *a = arena_alloc_large(A, cls, 0);
	void *b = arena_alloc_large(A, cls, 0);
	void *c = arena_alloc_large(A, cls, 0);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_int_equal((uintptr_t)a & PAGE_MASK, 0);
	assert_true(arena_is_valid(A));
	void *v[3] = { a, c, b };	/* free the middle last: all three merge */
	arena_dalloc_batch(A, v, 3);
	assert_true(arena_is_valid(A));	/* the walker fails on uncoalesced same-state neighbours */
}

static void test_aligned_large(void **state)
{
	(void)state;
	for (size_t align = 8192; align <= 1 << 20; align <<= 1) {
		void *p = arena_alloc_large(A, sizeclass_of(40000), align);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % align, 0);
		assert_true(arena_is_valid(A));
		arena_dalloc_batch(A, &p, 1);
		assert_true(arena_is_valid(A));
	}
}

static int overlaps(void *p, size_t len, const struct iovec *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if ((char *)p < (char *)v[i].iov_base + v[i].iov_len &&
		    (char *)v[i].iov_base < (char *)p + len)
			return 1;
	return 0;
}

static void test_purging_runs_are_not_reused(void **state)
{
	(void)state;
	unsigned cls = sizeclass_of(256 * 1024);
	void *blocks[8];
	for (int i = 0; i < 8; i++)
		blocks[i] = arena_alloc_large(A, cls, 0);
	arena_dalloc_batch(A, blocks, 8);
	static struct iovec v[1024];
	unsigned n = arena_purge_take(A, test_now(), 0, 0, 1, v, 1024);
	assert_true(n > 0);
	assert_int_equal(A->dirty_pages, 0);
	assert_true(A->purging_pages > 0);
	assert_true(arena_is_valid(A));
	/* while the purge is in flight nothing may hand those pages out */
	void *again[8];
	for (int i = 0; i < 8; i++) {
		again[i] = arena_alloc_large(A, cls, 0);
		assert_false(overlaps(again[i], 256 * 1024, v, n));
	}
	arena_purge_done(A, v, n, 1);
	assert_int_equal(A->purging_pages, 0);
	assert_true(arena_is_valid(A));
	arena_dalloc_batch(A, again, 8);
	assert_true(arena_is_valid(A));
}

/* Dirty memory over the cap is purged from every arena in proportion to
 * the dirty memory it holds (reclaim/thread.c pass): taken from the arenas
 * in turn, the whole excess came out of the first one, which then had no
 * dirty run left to reuse while the second kept its own. */
#define SHARE_BLOCKS 80
static void test_cap_excess_shared_by_arenas(void **state)
{
	(void)state;
	assert_true(narenas >= 2);
	arena_t *B = arenas[1];
	int64_t decay = atomic_load(&opt_values[OPT_decay_ms]);
	int64_t hold = atomic_load(&opt_values[OPT_dirty_hold_ms]);
	atomic_store(&opt_values[OPT_decay_ms], 3600000);	/* nothing decays */
	atomic_store(&opt_values[OPT_dirty_hold_ms], 0);	/* the cap alone (the hold: below) */
	reclaim_run(1, 0);					/* nothing dirty */
	assert_int_equal(A->dirty_pages + B->dirty_pages, 0);
	assert_int_equal(atomic_load(&dirty_total_pages), 0);	/* no arena outside arenas[] left any */
	unsigned cls = sizeclass_of(1 << 20);
	void *a[SHARE_BLOCKS], *b[SHARE_BLOCKS], *fa[SHARE_BLOCKS / 2], *fb[SHARE_BLOCKS / 2];
	for (int i = 0; i < SHARE_BLOCKS; i++) {
		assert_non_null(a[i] = arena_alloc_large(A, cls, 0));
		assert_non_null(b[i] = arena_alloc_large(B, cls, 0));
	}
	for (int i = 0; i < SHARE_BLOCKS / 2; i++) {	/* every other one: no coalescing */
		fa[i] = a[2 * i];
		fb[i] = b[2 * i];
	}
	arena_dalloc_batch(A, fa, SHARE_BLOCKS / 2);
	arena_dalloc_batch(B, fb, SHARE_BLOCKS / 2);
	size_t each = (size_t)(SHARE_BLOCKS / 2) << (20 - LG_PAGE);
	assert_int_equal(A->dirty_pages, each);
	assert_int_equal(B->dirty_pages, each);
	uint64_t cap_bytes, hold_bytes;
	reclaim_cap_stats(&cap_bytes, &hold_bytes);
	assert_int_equal(hold_bytes, 0);		/* no hold: the cap is a share of active */
	assert_true(cap_bytes >= (uint64_t)16 << 20);
	uint64_t before[2][PURGE_REASONS];
	memcpy(before[0], A->purge_taken, sizeof(before[0]));
	memcpy(before[1], B->purge_taken, sizeof(before[1]));
	/* 80 MiB dirty, cap 25 % of ~80 MiB active: both arenas purge about
	 * half of the 70 MiB over half the cap, and keep about 5 MiB each */
	reclaim_run(0, 0);
	/* ... and the stats say the cap took them, nothing the decay */
	assert_int_equal(A->purge_taken[PURGE_CAP] - before[0][PURGE_CAP], each - A->dirty_pages);
	assert_int_equal(B->purge_taken[PURGE_CAP] - before[1][PURGE_CAP], each - B->dirty_pages);
	assert_int_equal(A->purge_taken[PURGE_DECAY], before[0][PURGE_DECAY]);
	assert_int_equal(A->purge_taken[PURGE_FORCED], before[0][PURGE_FORCED]);
	size_t keep_min = (size_t)2 << (20 - LG_PAGE);
	assert_true(A->dirty_pages >= keep_min);
	assert_true(B->dirty_pages >= keep_min);
	assert_true(A->dirty_pages < each / 2 && B->dirty_pages < each / 2);
	assert_true(arena_is_valid(A) && arena_is_valid(B));
	for (int i = 0; i < SHARE_BLOCKS / 2; i++) {
		fa[i] = a[2 * i + 1];
		fb[i] = b[2 * i + 1];
	}
	arena_dalloc_batch(A, fa, SHARE_BLOCKS / 2);
	arena_dalloc_batch(B, fb, SHARE_BLOCKS / 2);
	size_t left = A->dirty_pages;
	memcpy(before[0], A->purge_taken, sizeof(before[0]));
	reclaim_run(1, 0);	/* a trim: forced, whatever the cap */
	assert_int_equal(A->dirty_pages, 0);
	assert_int_equal(A->purge_taken[PURGE_FORCED] - before[0][PURGE_FORCED] +
			 A->purge_taken[PURGE_CAP] - before[0][PURGE_CAP], left);
	/* the cap's share (its excess over half of itself) is less than all */
	assert_true(A->purge_taken[PURGE_FORCED] > before[0][PURGE_FORCED]);
	assert_int_equal(A->purge_taken[PURGE_DECAY], before[0][PURGE_DECAY]);
	atomic_store(&opt_values[OPT_decay_ms], decay);
	atomic_store(&opt_values[OPT_dirty_hold_ms], hold);
}

/* The hold (reclaim/thread.c cap_pages): dirty memory up to what active
 * memory fell by from its recent peak is kept whatever the cap, so that a
 * dip and regrowth reuse pages; once the peak is older than the hold, the
 * cap alone applies again. */
#define HOLD_BLOCKS 64
static void test_hold_keeps_a_dip(void **state)
{
	(void)state;
	int64_t decay = atomic_load(&opt_values[OPT_decay_ms]);
	int64_t hold = atomic_load(&opt_values[OPT_dirty_hold_ms]);
	atomic_store(&opt_values[OPT_decay_ms], 3600000);	/* nothing decays */
	atomic_store(&opt_values[OPT_dirty_hold_ms], 3600000);	/* the hold: an hour */
	reclaim_run(1, 0);
	assert_int_equal(atomic_load(&dirty_total_pages), 0);
	unsigned cls = sizeclass_of(1 << 20);
	void *a[HOLD_BLOCKS];
	for (int i = 0; i < HOLD_BLOCKS; i++)
		assert_non_null(a[i] = arena_alloc_large(A, cls, 0));
	/* 48 MiB of 64 fall: 3 x the cap (25 % of 16 MiB, floor 16 MiB),
	 * but no more than the fall from the peak */
	arena_dalloc_batch(A, a + HOLD_BLOCKS / 4, HOLD_BLOCKS * 3 / 4);
	size_t fell = (size_t)(HOLD_BLOCKS * 3 / 4) << (20 - LG_PAGE);
	assert_int_equal(A->dirty_pages, fell);
	reclaim_run(0, 0);
	assert_int_equal(A->dirty_pages, fell);		/* held */
	assert_true(arena_is_valid(A));
	/* the stats show the hold: the cap is at least the fall, and the hold
	 * what it adds to the floor (16 MiB above 25 % of 16 MiB active) */
	uint64_t cap_bytes, hold_bytes;
	reclaim_cap_stats(&cap_bytes, &hold_bytes);
	assert_true(cap_bytes >= (uint64_t)fell * PAGE_SIZE);
	assert_int_equal(hold_bytes, cap_bytes - ((uint64_t)16 << 20));
	/* regrowth reuses them: nothing new becomes resident */
	for (int i = HOLD_BLOCKS / 4; i < HOLD_BLOCKS / 2; i++)
		assert_non_null(a[i] = arena_alloc_large(A, cls, 0));
	assert_int_equal(A->dirty_pages, fell / 3 * 2);
	/* a hold of 1 ms: two passes 5 ms apart forget the peak, and the
	 * cap takes the excess over half of itself (hysteresis) */
	atomic_store(&opt_values[OPT_dirty_hold_ms], 1);
	reclaim_run(0, 0);
	struct timespec ts = { 0, 5000000 };
	nanosleep(&ts, NULL);
	reclaim_run(0, 0);
	size_t floor_pages = (size_t)16 << (20 - LG_PAGE);
	assert_true(A->dirty_pages <= floor_pages / 2 + 1);
	assert_true(arena_is_valid(A));
	reclaim_cap_stats(&cap_bytes, &hold_bytes);
	assert_int_equal(hold_bytes, 0);		/* forgotten */
	arena_dalloc_batch(A, a, HOLD_BLOCKS / 2);
	reclaim_run(1, 0);
	atomic_store(&opt_values[OPT_decay_ms], decay);
	atomic_store(&opt_values[OPT_dirty_hold_ms], hold);
}

/* A flush of blocks from two arenas, interleaved, returns each to its
 * own arena (tcache_return_blocks groups them by arena). */
static void test_flush_returns_blocks_to_their_arenas(void **state)
{
	(void)state;
	arena_t *B = arenas[1];
	unsigned cls = sizeclass_of(64);
	arena_t *both[2] = { A, B };
	for (int i = 0; i < 2; i++) {
		pthread_mutex_lock(&both[i]->lock);
		arena_xfer_drain_locked(both[i], 0, test_now());
		pthread_mutex_unlock(&both[i]->lock);
	}
	void *a[4], *b[4];
	assert_int_equal(arena_alloc_small(A, cls, a, 4), 4);
	assert_int_equal(arena_alloc_small(B, cls, b, 4), 4);
	void *mix[8] = { a[0], a[1], b[0], a[2], b[1], b[2], a[3], b[3] };
	tcache_return_blocks(cls, mix, 8);
	for (int i = 0; i < 2; i++) {
		struct xfer *x = &both[i]->xfer[cls];
		void **mine = i ? b : a;
		assert_int_equal(x->n, 4);
		for (int k = 0; k < 4; k++) {
			int found = 0;
			for (unsigned j = 0; j < x->n; j++)
				found |= x->blk[j] == mine[k];
			assert_true(found);
		}
		assert_true(arena_is_valid(both[i]));
		pthread_mutex_lock(&both[i]->lock);
		arena_xfer_drain_locked(both[i], 0, test_now());
		pthread_mutex_unlock(&both[i]->lock);
	}
}

/* With EBB_ARENA_PICK=cpu (the default) a thread refills from the arena
 * of the CPU it runs on: CPUs of a node map to its arenas by rank, so two
 * threads on two CPUs take two locks. Each allowed CPU in turn: pin, empty
 * the bin, refill, and the block comes from arenas[rank % 2]. */
static void test_refill_takes_the_cpus_arena(void **state)
{
	(void)state;
	cpu_set_t allowed, one;
	unsigned cls = sizeclass_of(272), tried = 0;
	assert_int_equal(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	for (unsigned c = 0; c < CPU_SETSIZE && tried < 4; c++) {
		if (!CPU_ISSET(c, &allowed))
			continue;
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
		unsigned cpu = 99;
		assert_int_equal(os_getcpu(&cpu), 0);
		assert_int_equal(cpu, c);
		tcache_flush_all(tcache_self());
		void *p = ebb_malloc(sizeclass_info[cls].size);
		assert_non_null(p);
		assert_ptr_equal(chunk_of(p)->arena, arenas[topo_rank_of_cpu(c) % 2]);
		ebb_free(p);
		tried++;
	}
	assert_int_equal(sched_setaffinity(0, sizeof(allowed), &allowed), 0);
	assert_true(tried >= 1);
	/* and with EBB_ARENA_PICK=thread the thread's own arena, wherever */
	assert_int_equal(ebb_ctl("arena_pick", NULL, NULL, "thread", 7), 0);
	tcache_flush_all(tcache_self());
	void *p = ebb_malloc(sizeclass_info[cls].size);
	assert_ptr_equal(chunk_of(p)->arena, tcache_self()->arena);
	ebb_free(p);
	assert_int_equal(ebb_ctl("arena_pick", NULL, NULL, "cpu", 4), 0);
	/* leave both arenas as the later tests expect: no blocks out */
	tcache_flush_all(tcache_self());
	for (int i = 0; i < 2; i++) {
		pthread_mutex_lock(&arenas[i]->lock);
		arena_xfer_drain_locked(arenas[i], 0, test_now());
		pthread_mutex_unlock(&arenas[i]->lock);
		assert_true(arena_is_valid(arenas[i]));
	}
}

static void test_decay_takes_only_old_runs(void **state)
{
	(void)state;
	static struct iovec v[1024];
	purge_everything(A);	/* what earlier tests left */
	unsigned n;
	void *p = arena_alloc_large(A, sizeclass_of(100000), 0);
	arena_dalloc_batch(A, &p, 1);
	uint64_t now = test_now();
	/* young: a one-hour decay takes nothing */
	assert_int_equal(arena_purge_take(A, now, 3600ull * 1000000000ull, 0, 0, v, 1024), 0);
	/* but the dirty cap's excess does */
	n = arena_purge_take(A, now, 3600ull * 1000000000ull, 1, 0, v, 1024);
	assert_int_equal(n, 1);
	arena_purge_done(A, v, n, 1);
	assert_true(arena_is_valid(A));
}

/* regression: a pass reads the clock, then takes the lock; a run freed in
 * between is stamped later than the pass's clock, and the unsigned
 * now - dirty_ns made it ages old: purged at once and counted as decay
 * (test_doctor's decay-free check failed 3 runs in 4) */
static void test_decay_spares_runs_newer_than_the_pass(void **state)
{
	(void)state;
	static struct iovec v[1024];
	unsigned n;
	purge_everything(A);
	uint64_t pass_clock = test_now();
	void *p = arena_alloc_large(A, sizeclass_of(100000), 0);
	arena_dalloc_batch(A, &p, 1);	/* stamped after pass_clock */
	uint64_t decay_before = A->purge_taken[PURGE_DECAY];
	assert_int_equal(arena_purge_take(A, pass_clock, 1000000000ull, 0, 0, v, 1024), 0);
	assert_int_equal(A->purge_taken[PURGE_DECAY], decay_before);
	/* and once it is old, decay takes it (with whatever else earlier
	 * tests left that has aged as well) */
	n = arena_purge_take(A, test_now() + 2000000000ull, 1000000000ull, 0, 0, v, 1024);
	int found = 0;
	for (unsigned i = 0; i < n; i++)
		found |= v[i].iov_base == p;
	assert_true(found);
	assert_true(A->purge_taken[PURGE_DECAY] >= decay_before + 100000 / PAGE_SIZE);
	arena_purge_done(A, v, n, 1);
	assert_true(arena_is_valid(A));
}

/* regression: empty chunks were never unmapped, so a process that freed
 * everything kept its address space and failed under RLIMIT_AS */
static void test_empty_chunks_are_unmapped(void **state)
{
	(void)state;
	unsigned cls = sizeclass_of(1 << 20);
	void *blocks[24];
	for (int i = 0; i < 24; i++)	/* 3 per chunk: 8 chunks */
		blocks[i] = arena_alloc_large(A, cls, 0);
	size_t peak = A->nchunks;
	assert_true(peak >= 8);
	chunk_t *first = chunk_of(blocks[0]);
	arena_dalloc_batch(A, blocks, 24);
	purge_everything(A);
	assert_true(arena_is_valid(A));
	/* a few spare chunks stay mapped (purged, no RSS) ... */
	assert_true(A->nchunks <= peak);
	assert_true(A->nchunks <= 8 + 2);
	/* ... and under address-space pressure every empty one goes */
	arena_release_empty(A);
	assert_true(arena_is_valid(A));
	assert_true(A->nchunks < peak);
	for (chunk_t *c = A->chunks; c; c = c->next)
		assert_ptr_not_equal(c, first);
	assert_int_equal(rtree_get(blocks[0]), 0);
	assert_int_equal(chunk_map[(uintptr_t)first >> LG_CHUNK], 0);
	void *p = arena_alloc_large(A, cls, 0);	/* and the arena still works */
	assert_non_null(p);
	arena_dalloc_batch(A, &p, 1);
}

/* Empty pages of a partly used slab are purged; kept blocks keep their
 * bytes; nothing of the slab is handed out while its pages are in flight;
 * a slab that empties meanwhile is released when the purge completes. */
static void test_slab_pages_purged(void **state)
{
	(void)state;
	static struct iovec v[1024];
	unsigned n;
	purge_everything(A);
	unsigned cls = sizeclass_of(1024);
	const struct class_info *ci = &sizeclass_info[cls];
	assert_true(ci->slab_pages >= 4);
	unsigned per = ci->slab_objs;
	void **b = calloc(per * 4, sizeof(void *));
	unsigned got = 0;
	while (got < per * 4)
		got += arena_alloc_small(A, cls, b + got, per * 4 - got);
	for (unsigned i = 0; i < got; i++)
		memset(b[i], 0x40 + (int)(i % 50), ci->size);
	/* keep the first block of each slab-sized group, free the rest */
	void **fr = calloc(got, sizeof(void *));
	unsigned nf = 0;
	for (unsigned i = 0; i < got; i++)
		if (i % per)
			fr[nf++] = b[i];
	arena_dalloc_batch(A, fr, nf);
	assert_true(arena_is_valid(A));
	n = arena_purge_take(A, test_now(), 0, 0, 1, v, 1024);
	assert_true(n > 0);
	size_t bytes = 0;
	for (unsigned i = 0; i < n; i++) {
		bytes += v[i].iov_len;
		for (unsigned k = 0; k < got; k += per)	/* never a kept block */
			assert_false((char *)b[k] < (char *)v[i].iov_base + v[i].iov_len &&
				     (char *)v[i].iov_base < (char *)b[k] + ci->size);
	}
	assert_true(bytes >= (size_t)3 * PAGE_SIZE);
	assert_true(arena_is_valid(A));
	/* in flight: a refill must not come from those pages */
	void *x[8];
	unsigned nx = arena_alloc_small(A, cls, x, 8);
	for (unsigned j = 0; j < nx; j++)
		for (unsigned i = 0; i < n; i++)
			assert_false((char *)x[j] >= (char *)v[i].iov_base &&
				     (char *)x[j] < (char *)v[i].iov_base + v[i].iov_len);
	arena_dalloc_batch(A, x, nx);
	/* really purge, then check the kept blocks */
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(madvise(v[i].iov_base, v[i].iov_len, MADV_DONTNEED), 0);
	/* one slab empties while in flight: released at completion */
	arena_dalloc_batch(A, &b[0], 1);
	arena_purge_done(A, v, n, 1);
	assert_true(arena_is_valid(A));
	for (unsigned k = per; k < got; k += per) {
		unsigned char *p = b[k];
		for (unsigned j = 0; j < ci->size; j++)
			assert_int_equal(p[j], 0x40 + (int)(k % 50));
	}
	for (unsigned k = per; k < got; k += per)
		arena_dalloc_batch(A, &b[k], 1);
	assert_true(arena_is_valid(A));
	free(b);
	free(fr);
}

/* A page run grows into the free run right after it, not into a live one. */
static void test_large_grows_in_place(void **state)
{
	(void)state;
	unsigned c40 = sizeclass_of(40000), c80 = sizeclass_of(80000);
	void *a = arena_alloc_large(A, c40, 0);
	void *b = arena_alloc_large(A, c40, 0);
	assert_ptr_equal((char *)a + sizeclass_size(c40), b);	/* neighbours (first fit) */
	memset(a, 0x5a, sizeclass_size(c40));
	assert_int_equal(arena_grow_large(A, a, c80), 0);		/* b is live */
	arena_dalloc_batch(A, &b, 1);
	assert_int_equal(arena_grow_large(A, a, c80), 1);		/* b's pages are free now */
	assert_true(arena_is_valid(A));
	chunk_t *c = chunk_of(a);
	size_t pg = chunk_page_of(c, a);
	assert_int_equal(c->page_cls[pg], c80);
	assert_int_equal(c->runs[pg].npages, sizeclass_info[c80].slab_pages);
	unsigned char *q = a;
	for (size_t i = 0; i < sizeclass_size(c40); i++)
		assert_int_equal(q[i], 0x5a);
	memset(a, 1, sizeclass_size(c80));				/* all of it is ours */
	arena_dalloc_batch(A, &a, 1);
	assert_true(arena_is_valid(A));
}

static void test_walker_catches_corruption(void **state)
{
	(void)state;
	void *p = arena_alloc_large(A, sizeclass_of(40000), 0);
	chunk_t *c = chunk_of(p);
	size_t pg = chunk_page_of(c, p);
	uint16_t saved = c->runs[pg].npages;
	c->runs[pg].npages = (uint16_t)(saved + 1);	/* overlaps its neighbour */
	assert_false(arena_is_valid(A));
	c->runs[pg].npages = saved;
	assert_true(arena_is_valid(A));
	size_t ap = A->dirty_pages;
	A->dirty_pages = ap + 1;			/* accounting drift */
	assert_false(arena_is_valid(A));
	A->dirty_pages = ap;
	arena_dalloc_batch(A, &p, 1);
	assert_true(arena_is_valid(A));
}

/* The walker would catch each of these (one at a time, each undone
 * before the next): a slab's free count off its bitmap, a bit past its
 * last block, a hint above a free block, page tags that free()'s fast path
 * trusts, a partial list, a size bin or its mask, the dirty list (the
 * reclaim queue), the chunk count, a transfer cache holding a block
 * twice or one already free in its slab, the remote stack holding a
 * pointer that is not a live block. A check that cannot fail is no check. */
static uint64_t *test_slab_bits(chunk_t *c, size_t f)
{
	return &c->bitmap[f * (BITS_PER_PAGE / 64)];
}

static void test_walker_catches_list_corruption(void **state)
{
	(void)state;
	unsigned cls = sizeclass_of(16);
	const struct class_info *ci = &sizeclass_info[cls];
	void *b[3];
	assert_int_equal(arena_alloc_small(A, cls, b, 3), 3);
	chunk_t *c = chunk_of(b[0]);
	size_t pg = chunk_page_of(c, b[0]);
	size_t f = c->page_run[pg];
	run_t *r = &c->runs[f];
	uint64_t *bits = test_slab_bits(c, f);
	unsigned nw = (ci->slab_objs + 63) / 64;
	assert_true(r->on_list && r->nfree > 0 && nw >= 2);
	assert_true(arena_is_valid(A));

	r->nfree++;					/* free count off its bitmap */
	assert_false(arena_is_valid(A));
	r->nfree--;
	unsigned lastcls = 0;				/* a bit past the last block */
	for (unsigned k = 1; k <= NSMALL && !lastcls; k++)
		if (sizeclass_info[k].slab_objs % 64)
			lastcls = k;
	assert_true(lastcls != 0);
	void *q;
	assert_int_equal(arena_alloc_small(A, lastcls, &q, 1), 1);
	chunk_t *qc = chunk_of(q);
	size_t qf = qc->page_run[chunk_page_of(qc, q)];
	uint64_t *qbits = test_slab_bits(qc, qf);
	unsigned qlast = (sizeclass_info[lastcls].slab_objs + 63) / 64 - 1;
	uint64_t pad = 1ull << (sizeclass_info[lastcls].slab_objs % 64);
	assert_int_equal(qbits[qlast] & pad, 0);
	qbits[qlast] |= pad;
	assert_false(arena_is_valid(A));
	qbits[qlast] &= ~pad;
	assert_true(arena_is_valid(A));
	unsigned w = 0;					/* a hint above a free block */
	while (w < nw && !~bits[w])
		w++;
	assert_true(w + 1 < nw);
	uint16_t hint = r->hint;
	r->hint = (uint16_t)(w + 1);
	assert_false(arena_is_valid(A));
	r->hint = hint;
	uint32_t off = c->page_off[pg];			/* page tags */
	c->page_off[pg] = off + 16;
	assert_false(arena_is_valid(A));
	c->page_off[pg] = off;
	assert_true(arena_is_valid(A));

	unsigned other = sizeclass_of(32);		/* partial list of another class */
	run_t *mine = A->partial[cls], *theirs = A->partial[other];
	A->partial[other] = mine;
	A->partial[cls] = NULL;
	assert_false(arena_is_valid(A));
	A->partial[cls] = mine;
	A->partial[other] = theirs;
	assert_true(arena_is_valid(A));

	/* size bins: a run missing from its bin, a mask bit of an empty bin */
	int s = -1;
	unsigned bin = 0;
	for (int k = 0; k < 2 && s < 0; k++)
		for (unsigned j = 0; j < NPBINS && s < 0; j++)
			if (A->free_bins[k][j] && !A->free_bins[k][j]->next) {
				s = k;
				bin = j;
			}
	assert_true(s >= 0);
	run_t *lone = A->free_bins[s][bin];
	A->free_bins[s][bin] = NULL;
	assert_false(arena_is_valid(A));
	A->free_bins[s][bin] = lone;
	unsigned empty = 0;
	while (A->free_bins[1][empty])
		empty++;
	A->bin_mask[1][empty / 64] ^= 1ull << (empty % 64);
	assert_false(arena_is_valid(A));
	A->bin_mask[1][empty / 64] ^= 1ull << (empty % 64);
	assert_true(arena_is_valid(A));

	/* the dirty list: a lost tail, an order broken */
	void *l1 = arena_alloc_large(A, sizeclass_of(40000), 0);
	void *sep = arena_alloc_large(A, sizeclass_of(40000), 0);
	void *l2 = arena_alloc_large(A, sizeclass_of(40000), 0);
	arena_dalloc_batch(A, &l1, 1);
	arena_dalloc_batch(A, &l2, 1);
	assert_true(A->dirty_head && A->dirty_head != A->dirty_tail);
	run_t *tail = A->dirty_tail;
	A->dirty_tail = tail->age_prev;
	assert_false(arena_is_valid(A));
	A->dirty_tail = tail;
	uint64_t ns = A->dirty_head->dirty_ns;
	A->dirty_head->dirty_ns = tail->dirty_ns + 1;
	assert_false(arena_is_valid(A));
	A->dirty_head->dirty_ns = ns;
	A->nchunks++;					/* the chunk count */
	assert_false(arena_is_valid(A));
	A->nchunks--;
	assert_true(arena_is_valid(A));

	/* a large block: an inner page tagged as a block start */
	size_t sp = chunk_page_of(chunk_of(sep), sep);
	chunk_of(sep)->page_cls[sp + 1] = chunk_of(sep)->page_cls[sp];
	assert_false(arena_is_valid(A));
	chunk_of(sep)->page_cls[sp + 1] = 0;
	assert_true(arena_is_valid(A));

	/* transfer cache: a block twice; a block also free in its slab */
	struct xfer *x = &A->xfer[cls];
	pthread_mutex_lock(&A->lock);
	arena_xfer_drain_locked(A, 0, test_now());
	pthread_mutex_unlock(&A->lock);
	arena_dalloc_cached(A, cls, &b[2], 1);
	assert_int_equal(x->n, 1);
	assert_true(arena_is_valid(A));
	x->blk[x->n++] = b[2];
	assert_false(arena_is_valid(A));
	x->n--;
	size_t i1 = ((uintptr_t)b[1] - (uintptr_t)chunk_page_addr(c, f)) / ci->size;
	x->blk[x->n++] = b[1];
	bits[i1 / 64] &= ~(1ull << (i1 % 64));
	r->nfree++;
	assert_false(arena_is_valid(A));
	bits[i1 / 64] |= 1ull << (i1 % 64);
	r->nfree--;
	x->n--;
	assert_true(arena_is_valid(A));

	/* the remote stack: a live block passes, a freed one or a stranger fails */
	((void **)b[1])[0] = NULL;
	atomic_store(&A->remote_head, b[1]);
	assert_true(arena_is_valid(A));
	bits[i1 / 64] &= ~(1ull << (i1 % 64));
	r->nfree++;
	assert_false(arena_is_valid(A));
	bits[i1 / 64] |= 1ull << (i1 % 64);
	r->nfree--;
	static void *stranger[2] __attribute__((aligned(16)));
	atomic_store(&A->remote_head, (void *)stranger);
	assert_false(arena_is_valid(A));
	atomic_store(&A->remote_head, NULL);
	assert_true(arena_is_valid(A));

	pthread_mutex_lock(&A->lock);
	arena_xfer_drain_locked(A, 0, test_now());
	pthread_mutex_unlock(&A->lock);
	arena_dalloc_batch(A, b, 2);
	arena_dalloc_batch(A, &q, 1);
	arena_dalloc_batch(A, &sep, 1);
	assert_true(arena_is_valid(A));
}

/* The transfer cache: freed small blocks are kept as pointers (their slab
 * bits stay set, and alloc_bytes still counts them: stats subtract them),
 * handed back newest first by the next refill, and returned to their
 * slabs by a drain: a class in use survives one unused-only drain (it
 * clears the marks), not two. */
static void test_transfer_cache(void **state)
{
	(void)state;
	unsigned cls = sizeclass_of(96);
	struct xfer *x = &A->xfer[cls];
	pthread_mutex_lock(&A->lock);
	arena_xfer_drain_locked(A, 0, test_now());
	pthread_mutex_unlock(&A->lock);
	assert_int_equal(x->n, 0);
	assert_int_equal(arena_xfer_bytes(A), 0);
	enum { N = 40 };
	void *b[N], *again[N];
	assert_int_equal(arena_alloc_small(A, cls, b, N), N);
	uint64_t bytes = A->alloc_bytes;
	arena_dalloc_cached(A, cls, b, N);
	assert_int_equal(x->n, N);
	assert_int_equal(A->alloc_bytes, bytes);
	assert_int_equal(arena_xfer_bytes(A), (uint64_t)N * 96);
	assert_true(arena_is_valid(A));
	/* a refill takes them back, newest first */
	assert_int_equal(arena_alloc_small(A, cls, again, 10), 10);
	for (unsigned i = 0; i < 10; i++)
		assert_ptr_equal(again[i], b[N - 10 + i]);
	assert_int_equal(x->n, N - 10);
	assert_int_equal(A->alloc_bytes, bytes);
	assert_true(arena_is_valid(A));
	/* used since the last look: kept once, then drained */
	pthread_mutex_lock(&A->lock);
	arena_xfer_drain_locked(A, 1, test_now());
	assert_int_equal(x->n, N - 10);
	arena_xfer_drain_locked(A, 1, test_now());
	assert_int_equal(x->n, 0);
	pthread_mutex_unlock(&A->lock);
	assert_int_equal(arena_xfer_bytes(A), 0);
	assert_true(arena_is_valid(A));
	/* drained: back in their slabs */
	assert_int_equal(A->alloc_bytes, bytes - (uint64_t)(N - 10) * 96);
	/* a single free (not a flush) may land there too */
	arena_dalloc_batch(A, again, 10);
	assert_int_equal(x->n, 10);
	pthread_mutex_lock(&A->lock);
	arena_xfer_drain_locked(A, 0, test_now());
	pthread_mutex_unlock(&A->lock);
	assert_int_equal(A->alloc_bytes, bytes - (uint64_t)N * 96);
	assert_true(arena_is_valid(A));
	/* the cap bounds it: a batch beyond goes to the slabs */
	unsigned cap = x->cap, n = cap + 20;
	void **v = calloc(n, sizeof(void *));
	assert_int_equal(arena_alloc_small(A, cls, v, n), n);
	bytes = A->alloc_bytes;
	arena_dalloc_cached(A, cls, v, n);
	assert_int_equal(x->n, cap);
	assert_int_equal(A->alloc_bytes, bytes - 20 * 96);
	assert_true(arena_is_valid(A));
	pthread_mutex_lock(&A->lock);
	arena_xfer_drain_locked(A, 0, test_now());
	pthread_mutex_unlock(&A->lock);
	free(v);
}

/* Threads that all find the arena full at once map one chunk between
 * them, not one each: the others wait for it and look again. 16 runs of
 * 1 MiB, 3 to a chunk (1000 usable pages each): exactly 6 chunks. */
#define GROW_THREADS 16
static arena_t grow_arena;
/* linked with --wrap=chunk_new: a slow mmap, so that every thread finds
 * the arena full while the first one maps (the race, every time) */
static _Atomic int slow_chunk_new;
chunk_t *__real_chunk_new(arena_t *a);
chunk_t *__wrap_chunk_new(arena_t *a);
chunk_t *__wrap_chunk_new(arena_t *a)
{
	if (atomic_load(&slow_chunk_new))
		usleep(20000);
	return __real_chunk_new(a);
}
static pthread_barrier_t grow_start;
static void *grow_taker(void *arg)
{
	void **out = arg;
	pthread_barrier_wait(&grow_start);
	*out = arena_alloc_large(&grow_arena, sizeclass_of((size_t)1 << 20), 0);
	return NULL;
}

static void test_concurrent_growth_maps_one_chunk_at_a_time(void **state)
{
	(void)state;
	arena_init(&grow_arena, 0, EBB_MAX_NODES * EBB_MAX_ARENAS_PER_NODE);
	pthread_t t[GROW_THREADS];
	void *p[GROW_THREADS];
	pthread_barrier_init(&grow_start, NULL, GROW_THREADS);
	atomic_store(&slow_chunk_new, 1);
	for (int i = 0; i < GROW_THREADS; i++)
		pthread_create(&t[i], NULL, grow_taker, &p[i]);
	for (int i = 0; i < GROW_THREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&slow_chunk_new, 0);
	pthread_barrier_destroy(&grow_start);
	for (int i = 0; i < GROW_THREADS; i++)
		assert_non_null(p[i]);
	assert_int_equal(grow_arena.nchunks, 6);
	assert_int_equal(grow_arena.chunk_gen, 6);
	assert_true(arena_is_valid(&grow_arena));
	arena_dalloc_batch(&grow_arena, p, GROW_THREADS);
	assert_true(arena_is_valid(&grow_arena));
	/* its dirty pages count in dirty_total_pages, which the reclaim
	 * pass reads, but no pass sees this arena: clean them here */
	static struct iovec v[64];
	unsigned n;
	while ((n = arena_purge_take(&grow_arena, test_now(), 0, 0, 1, v, 64)))
		arena_purge_done(&grow_arena, v, n, 1);
	assert_int_equal(grow_arena.dirty_pages, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_growth_maps_one_chunk_at_a_time),
		cmocka_unit_test(test_small_fill_and_free),
		cmocka_unit_test(test_large_runs_coalesce),
		cmocka_unit_test(test_aligned_large),
		cmocka_unit_test(test_purging_runs_are_not_reused),
		cmocka_unit_test(test_decay_takes_only_old_runs),
		cmocka_unit_test(test_decay_spares_runs_newer_than_the_pass),
		cmocka_unit_test(test_cap_excess_shared_by_arenas),
		cmocka_unit_test(test_hold_keeps_a_dip),
		cmocka_unit_test(test_flush_returns_blocks_to_their_arenas),
		cmocka_unit_test(test_refill_takes_the_cpus_arena),
		cmocka_unit_test(test_empty_chunks_are_unmapped),
		cmocka_unit_test(test_slab_pages_purged),
		cmocka_unit_test(test_large_grows_in_place),
		cmocka_unit_test(test_walker_catches_corruption),
		cmocka_unit_test(test_walker_catches_list_corruption),
		cmocka_unit_test(test_transfer_cache),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
