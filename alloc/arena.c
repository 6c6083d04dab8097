/*
 * arena.c - per-NUMA-node arenas: chunks carved into slabs and page runs.
 *
 * An arena owns chunks of one node. Inside a chunk every page belongs to
 * exactly one run: the header, a FREE run, a SLAB of one small class, or
 * one LARGE block. Free runs carry a state:
 *
 *   ACTIVE --free--> DIRTY --purge_take--> PURGING --purge_done--> CLEAN
 *      ^               |                                             |
 *      +---- reuse ----+------------------ reuse --------------------+
 *
 * Invariant 1 (no live byte is ever purged) holds by construction: only
 * FREE+DIRTY runs are taken for purging; a PURGING run is on no list, so
 * nothing can hand it out or coalesce with it until purge_done. Reuse
 * prefers DIRTY (warm) runs, then CLEAN; neighbours of the same state
 * coalesce (boundary tags: page_run[] of a run's first and last page).
 *
 * Free runs sit in size bins (pages: exact up to 32, then 8 per doubling),
 * one set for DIRTY and one for CLEAN, with a bitmask of non-empty bins;
 * the search is first fit from the smallest bin that surely fits. DIRTY
 * runs are also on the arena's age list, oldest first: that list is the
 * reclaim queue (reclaim/thread.c takes from its head).
 *
 * Slabs track their blocks with a bitmap in the chunk header (1 = handed
 * out, to a thread cache or the application); freeing checks the bit,
 * which catches double frees that got past the thread cache's key check.
 *
 * Pages of a partly used slab that hold no handed-out block are purged too,
 * once the slab has had no free for decay_ms: the allocator never touches
 * a block whose bit is clear, so such a page holds nothing. While its
 * pages are in flight the slab is off the partial list (state PURGING, so
 * no block of it is handed out) and a slab that empties meanwhile is
 * released only when the purge completes (invariant 1). This is what
 * returns the memory of slabs that many threads each keep a few blocks in.
 *
 * Threads: everything here runs under the arena's mutex, taken by the
 * callers of the exported functions (they take it themselves). No syscall
 * is made under it except mmap of a new chunk.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "os.h"
#include "reclaim.h"

arena_t *arenas[EBB_MAX_NODES * EBB_MAX_ARENAS_PER_NODE];
unsigned narenas, arenas_per_node, nnodes;
_Atomic size_t dirty_total_pages, active_total_pages, active_peak_pages;

/* Pages became active: count them, and raise the peak of the reclaim
 * policy's hold window (reclaim/thread.c cap_pages). */
static void active_add(size_t n)
{
	size_t now = atomic_fetch_add_explicit(&active_total_pages, n, memory_order_relaxed) + n;
	size_t peak = atomic_load_explicit(&active_peak_pages, memory_order_relaxed);
	while (now > peak && !atomic_compare_exchange_weak_explicit(&active_peak_pages, &peak, now,
								      memory_order_relaxed, memory_order_relaxed))
		;
}

enum { S_DIRTY = 0, S_CLEAN = 1 };

/* ---- page bins --------------------------------------------------------------- */
static unsigned pbin_floor(size_t n)
{
	if (n <= 32)
		return (unsigned)n - 1;
	unsigned lg = 63u - (unsigned)__builtin_clzll(n);
	unsigned i = (unsigned)(n >> (lg - 3)) - 8;
	return 32 + (lg - 5) * 8 + i;
}

static size_t pbin_min(unsigned b)
{
	if (b < 32)
		return b + 1;
	unsigned g = (b - 32) / 8, i = (b - 32) % 8;
	return (size_t)(8 + i) << (g + 2);
}

static unsigned pbin_ceil(size_t n)
{
	unsigned b = pbin_floor(n);
	return pbin_min(b) < n ? b + 1 : b;
}

static unsigned mask_find(const uint64_t m[2], unsigned from)
{
	for (unsigned w = from / 64; w < 2; w++) {
		uint64_t bits = m[w];
		if (w == from / 64)
			bits &= ~0ull << (from % 64);
		if (bits)
			return w * 64 + (unsigned)__builtin_ctzll(bits);
	}
	return NPBINS;
}

/* ---- free run lists ------------------------------------------------------------- */
_Static_assert(NPBINS <= 128, "two mask words");

static void age_remove(arena_t *a, run_t *r)
{
	if (r->age_prev)
		r->age_prev->age_next = r->age_next;
	else
		a->dirty_head = r->age_next;
	if (r->age_next)
		r->age_next->age_prev = r->age_prev;
	else
		a->dirty_tail = r->age_prev;
	r->age_prev = r->age_next = NULL;
}

static void age_append(arena_t *a, run_t *r)
{
	r->age_next = NULL;
	r->age_prev = a->dirty_tail;
	if (a->dirty_tail)
		a->dirty_tail->age_next = r;
	else
		a->dirty_head = r;
	a->dirty_tail = r;
}

static void bins_remove(arena_t *a, run_t *r)
{
	int s = r->state == ST_DIRTY ? S_DIRTY : S_CLEAN;
	unsigned b = pbin_floor(r->npages);
	if (r->prev)
		r->prev->next = r->next;
	else
		a->free_bins[s][b] = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (!a->free_bins[s][b])
		a->bin_mask[s][b / 64] &= ~(1ull << (b % 64));
	r->prev = r->next = NULL;
	if (s == S_DIRTY) {
		age_remove(a, r);
		a->dirty_pages -= r->npages;
		atomic_fetch_sub_explicit(&dirty_total_pages, r->npages, memory_order_relaxed);
	}
}

static void set_tags(chunk_t *c, size_t f, size_t n)
{
	c->page_run[f] = (uint16_t)f;
	c->page_run[f + n - 1] = (uint16_t)f;
}

/* Make [f, f+n) a FREE run of the given state and put it on its lists. */
static run_t *free_insert(arena_t *a, chunk_t *c, size_t f, size_t n, int state, uint64_t now)
{
	run_t *r = &c->runs[f];
	memset(r, 0, sizeof(*r));
	r->npages = (uint16_t)n;
	r->kind = RUN_FREE;
	r->state = (uint8_t)state;
	set_tags(c, f, n);
	int s = state == ST_DIRTY ? S_DIRTY : S_CLEAN;
	unsigned b = pbin_floor(n);
	r->next = a->free_bins[s][b];
	if (r->next)
		r->next->prev = r;
	a->free_bins[s][b] = r;
	a->bin_mask[s][b / 64] |= 1ull << (b % 64);
	if (state == ST_DIRTY) {
		/* keep the age list sorted: a piece split off an old run
		 * takes the age of the youngest */
		if (a->dirty_tail && a->dirty_tail->dirty_ns > now)
			now = a->dirty_tail->dirty_ns;
		r->dirty_ns = now;
		age_append(a, r);
		a->dirty_pages += n;
		atomic_fetch_add_explicit(&dirty_total_pages, n, memory_order_relaxed);
	}
	return r;
}

/* Free [f, f+n) with the given state, coalescing with free neighbours of
 * the same state. */
static void free_coalesce(arena_t *a, chunk_t *c, size_t f, size_t n, int state, uint64_t now)
{
	if (f > c->hdr_pages) {
		run_t *l = &c->runs[c->page_run[f - 1]];
		if (l->kind == RUN_FREE && l->state == state) {
			size_t lf = run_page(l);
			bins_remove(a, l);
			n += f - lf;
			f = lf;
		}
	}
	if (f + n < CHUNK_PAGES) {
		run_t *r = &c->runs[f + n];
		if (r->kind == RUN_FREE && r->state == state) {
			bins_remove(a, r);
			n += r->npages;
		}
	}
	free_insert(a, c, f, n, state, now);
}

/* Take a free run of exactly n pages. Returns its descriptor with kind and
 * state still to be set by the caller, or NULL when out of memory. *was
 * receives the state the pages had (DIRTY or CLEAN). May drop and retake
 * the arena lock to map a new chunk. */
static run_t *run_alloc(arena_t *a, size_t n, int *was)
{
	unsigned b0 = pbin_ceil(n), bf = pbin_floor(n);
	run_t *r = NULL;
	for (;;) {
		for (int s = 0; s < 2 && !r; s++) {
			unsigned b = mask_find(a->bin_mask[s], b0);
			if (b < NPBINS)
				r = a->free_bins[s][b];
		}
		/* the floor bin may hold a run that fits */
		for (int s = 0; s < 2 && !r && bf != b0; s++)
			for (run_t *x = a->free_bins[s][bf]; x; x = x->next)
				if (x->npages >= n) {
					r = x;
					break;
				}
		if (r)
			break;
		/* mmap, mbind and naming are syscalls: not under the lock
		 * (other threads of the arena keep going meanwhile). One
		 * thread maps at a time, and the others look again once it
		 * has: when a thousand threads start at once and all find the
		 * arena full, each mapping a chunk of its own made hundreds
		 * of chunks nobody needed (bench/parked.c: 415 chunks for
		 * 245 MiB at the peak, the headers of 333 unused ones
		 * resident). */
		uint64_t gen = a->chunk_gen;
		pthread_mutex_unlock(&a->lock);
		pthread_mutex_lock(&a->grow_lock);
		pthread_mutex_lock(&a->lock);
		if (a->chunk_gen != gen) {
			pthread_mutex_unlock(&a->grow_lock);
			continue;	/* another thread added one: look again */
		}
		pthread_mutex_unlock(&a->lock);
		chunk_t *c = chunk_new(a);
		pthread_mutex_lock(&a->lock);
		pthread_mutex_unlock(&a->grow_lock);
		if (!c)
			return NULL;
		a->chunk_gen++;
		c->next = a->chunks;
		a->chunks = c;
		a->nchunks++;
		free_insert(a, c, c->hdr_pages, CHUNK_PAGES - c->hdr_pages, ST_CLEAN, 0);
	}
	chunk_t *c = chunk_of(r);
	size_t f = run_page(r), m = r->npages;
	int st = r->state;
	uint64_t ns = r->dirty_ns;
	bins_remove(a, r);
	if (m > n) {
		run_t *rest = free_insert(a, c, f + n, m - n, st, ns);
		(void)rest;
	}
	r = &c->runs[f];
	memset(r, 0, sizeof(*r));
	r->npages = (uint16_t)n;
	set_tags(c, f, n);
	*was = st;
	a->active_pages += n;
	active_add(n);
	return r;
}

/* An ACTIVE run (slab or large) becomes free and dirty. */
static void run_release(arena_t *a, run_t *r, uint64_t now)
{
	chunk_t *c = chunk_of(r);
	size_t f = run_page(r), n = r->npages;
	if (r->kind == RUN_SLAB)
		memset(&c->page_cls[f], 0, n);
	else
		c->page_cls[f] = 0;
	a->active_pages -= n;
	atomic_fetch_sub_explicit(&active_total_pages, n, memory_order_relaxed);
	free_coalesce(a, c, f, n, ST_DIRTY, now);
}

/* ---- init and selection ------------------------------------------------------- */
/* Arena locks are held for microseconds (a batch of blocks), transfer
 * cache locks for a copy of pointers: spin a little before sleeping in the
 * kernel (glibc's adaptive mutex), as a futex sleep costs more than the
 * critical section. (Transfer caches had plain mutexes: bench/prodcons.c
 * under strace -f made 3.8-8.3K futex calls a second, 0.3-0.5K adaptive.) */
static void lock_init_adaptive(pthread_mutex_t *m)
{
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(m, &attr);
	pthread_mutexattr_destroy(&attr);
}

int arena_init(arena_t *a, unsigned node, unsigned index)
{
	memset(a, 0, sizeof(*a));
	lock_init_adaptive(&a->lock);
	pthread_mutex_init(&a->grow_lock, NULL);
	a->node = node;
	a->index = index;
	for (unsigned c = 0; c <= NSMALL; c++) {
		lock_init_adaptive(&a->xfer[c].mu);
		size_t k = c ? XFER_BYTES / sizeclass_info[c].size : 0;
		a->xfer[c].cap = (uint16_t)(k < XFER_SLOTS ? k : XFER_SLOTS);
	}
	return 0;
}

arena_t *arena_pick(unsigned node, unsigned seed)
{
	if (node >= nnodes)
		node = 0;
	return arenas[node * arenas_per_node + seed % arenas_per_node];
}

/* For a thread's cache: the arena of the node with the fewest threads
 * (ties: seed order), so that two busy threads share an arena lock only
 * when there are more threads than arenas. */
arena_t *arena_pick_for_thread(unsigned node, unsigned seed)
{
	if (node >= nnodes)
		node = 0;
	arena_t *best = NULL;
	unsigned best_n = UINT32_MAX;
	for (unsigned k = 0; k < arenas_per_node; k++) {
		arena_t *a = arenas[node * arenas_per_node + (seed + k) % arenas_per_node];
		unsigned n = atomic_load_explicit(&a->nthreads, memory_order_relaxed);
		if (n < best_n) {
			best = a;
			best_n = n;
		}
	}
	atomic_fetch_add_explicit(&best->nthreads, 1, memory_order_relaxed);
	return best;
}

void arena_thread_leave(arena_t *a)
{
	atomic_fetch_sub_explicit(&a->nthreads, 1, memory_order_relaxed);
}


/* ---- small blocks -------------------------------------------------------------- */
static void partial_push(arena_t *a, run_t *r)
{
	r->prev = NULL;
	r->next = a->partial[r->cls];
	if (r->next)
		r->next->prev = r;
	a->partial[r->cls] = r;
	r->on_list = 1;
}

static void partial_remove(arena_t *a, run_t *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		a->partial[r->cls] = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	r->on_list = 0;
}

static inline uint64_t *slab_bits(chunk_t *c, size_t f)
{
	return &c->bitmap[f * (BITS_PER_PAGE / 64)];
}

static run_t *slab_new(arena_t *a, unsigned cls)
{
	const struct class_info *ci = &sizeclass_info[cls];
	int was;
	run_t *r = run_alloc(a, ci->slab_pages, &was);
	if (!r)
		return NULL;
	chunk_t *c = chunk_of(r);
	size_t f = run_page(r);
	r->kind = RUN_SLAB;
	r->state = ST_ACTIVE;
	r->cls = (uint8_t)cls;
	r->nfree = (uint16_t)ci->slab_objs;
	r->hint = 0;
	r->resident = 0;
	r->scanned = 0;
	r->dirty_ns = os_now_ns();
	for (size_t i = 0; i < ci->slab_pages; i++) {
		c->page_cls[f + i] = (uint8_t)cls;
		c->page_run[f + i] = (uint16_t)f;
		c->page_off[f + i] = (uint32_t)(f << LG_PAGE);
	}
	memset(slab_bits(c, f), 0, ((ci->slab_objs + 63) / 64) * sizeof(uint64_t));
	partial_push(a, r);
	return r;
}

/* ---- transfer caches ------------------------------------------------------------ */
static unsigned xfer_take(arena_t *a, unsigned cls, void **out, unsigned n)
{
	ebb_assert_internal(cls >= 1 && cls <= NSMALL);
	struct xfer *x = &a->xfer[cls];
	if (!__atomic_load_n(&x->n, __ATOMIC_RELAXED))	/* a hint: checked again under mu */
		return 0;
	pthread_mutex_lock(&x->mu);
	unsigned k = x->n < n ? x->n : n;
	/* n is read unlocked as a hint: stores are atomic */
	__atomic_store_n(&x->n, (uint16_t)(x->n - k), __ATOMIC_RELAXED);
	memcpy(out, x->blk + x->n, k * sizeof(void *));
	x->used = 1;
	pthread_mutex_unlock(&x->mu);
	return k;
}

static unsigned xfer_put(arena_t *a, unsigned cls, void *const *blocks, unsigned n)
{
	ebb_check(cls >= 1 && cls <= NSMALL);
	struct xfer *x = &a->xfer[cls];
	if (__atomic_load_n(&x->n, __ATOMIC_RELAXED) >= x->cap)	/* a hint, as above */
		return 0;
	pthread_mutex_lock(&x->mu);
	if (!x->blk) {		/* no slots yet (arena_dalloc_cached makes them) */
		pthread_mutex_unlock(&x->mu);
		return 0;
	}
	unsigned room = x->cap - x->n, k = n < room ? n : room;
	memcpy(x->blk + x->n, blocks, k * sizeof(void *));
	__atomic_store_n(&x->n, (uint16_t)(x->n + k), __ATOMIC_RELEASE);	/* blocks first (fork) */
	x->used = 1;
	pthread_mutex_unlock(&x->mu);
	return k;
}

unsigned arena_alloc_small(arena_t *a, unsigned cls, void **out, unsigned n)
{
	const struct class_info *ci = &sizeclass_info[cls];
	uint64_t now = 0;
	/* the transfer cache first, without the arena's lock: the newest
	 * flushed blocks, the warmest (they stay counted in alloc_bytes) */
	unsigned from_xfer = xfer_take(a, cls, out, n), got = from_xfer;
	if (got == n)
		return got;
	pthread_mutex_lock(&a->lock);
	arena_remote_drain_locked(a, &now);
	while (got < n) {
		run_t *r = a->partial[cls];
		if (!r && !(r = slab_new(a, cls)))
			break;
		chunk_t *c = chunk_of(r);
		size_t f = run_page(r);
		char *base = chunk_page_addr(c, f);
		uint64_t *bits = slab_bits(c, f);
		unsigned nw = (ci->slab_objs + 63) / 64;
		unsigned w = r->hint;
		for (; w < nw && got < n; w++) {
			uint64_t avail = ~bits[w];
			if (w == nw - 1 && ci->slab_objs % 64)
				avail &= (1ull << (ci->slab_objs % 64)) - 1;
			while (avail && got < n) {
				unsigned b = (unsigned)__builtin_ctzll(avail);
				avail &= avail - 1;
				bits[w] |= 1ull << b;
				size_t off = (size_t)(w * 64 + b) * ci->size;
				out[got++] = base + off;
				r->nfree--;
				/* the block's pages are (or will be) touched */
				size_t p0 = off >> LG_PAGE, p1 = (off + ci->size - 1) >> LG_PAGE;
				r->resident |= ((2u << (p1 - p0)) - 1) << p0;
			}
			if (avail)
				break;
		}
		r->hint = (uint16_t)(w < nw ? w : nw - 1);
		if (r->nfree == 0)
			partial_remove(a, r);
	}
	a->alloc_bytes += (uint64_t)(got - from_xfer) * ci->size;
	pthread_mutex_unlock(&a->lock);
	return got;
}

/* ---- large blocks -------------------------------------------------------------- */
void *arena_alloc_large(arena_t *a, unsigned cls, size_t align)
{
	size_t np = sizeclass_info[cls].slab_pages;
	size_t extra = align > PAGE_SIZE ? align / PAGE_SIZE - 1 : 0;
	int was;
	pthread_mutex_lock(&a->lock);
	run_t *r = run_alloc(a, np + extra, &was);
	if (!r) {
		pthread_mutex_unlock(&a->lock);
		return NULL;
	}
	chunk_t *c = chunk_of(r);
	size_t f = run_page(r);
	if (extra) {
		uintptr_t addr = (uintptr_t)chunk_page_addr(c, f);
		size_t lead = (ALIGN_UP(addr, align) - addr) / PAGE_SIZE;
		size_t trail = extra - lead;
		uint64_t now = was == ST_DIRTY ? os_now_ns() : 0;
		a->active_pages -= extra;
		atomic_fetch_sub_explicit(&active_total_pages, extra, memory_order_relaxed);
		/* the kept run's descriptor and tags first: the trimmed
		 * pieces coalesce with their other neighbours and read them */
		r = &c->runs[f + lead];
		memset(r, 0, sizeof(*r));
		r->npages = (uint16_t)np;
		r->kind = RUN_LARGE;
		set_tags(c, f + lead, np);
		if (lead)
			free_coalesce(a, c, f, lead, was, now);
		if (trail)
			free_coalesce(a, c, f + lead + np, trail, was, now);
		f += lead;
	}
	r->kind = RUN_LARGE;
	r->state = ST_ACTIVE;
	r->cls = (uint8_t)cls;
	c->page_off[f] = (uint32_t)(f << LG_PAGE);
	c->page_cls[f] = (uint8_t)cls;
	a->alloc_bytes += sizeclass_info[cls].size;
	pthread_mutex_unlock(&a->lock);
	return chunk_page_addr(c, f);
}

/* Grow the large block at p (class cls) to class new_cls in place, by
 * taking pages from the free run right after it (DIRTY or CLEAN, never
 * PURGING). Returns 1 on success, 0 if the neighbour is not free or too
 * small (the caller then moves the block). */
int arena_grow_large(arena_t *a, void *p, unsigned new_cls)
{
	chunk_t *c = chunk_of(p);
	size_t f = chunk_page_of(c, p);
	int ok = 0;
	pthread_mutex_lock(&a->lock);
	run_t *r = &c->runs[f];
	if (r->kind != RUN_LARGE || c->page_cls[f] != r->cls) {
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	size_t np = r->npages, want = sizeclass_info[new_cls].slab_pages;
	size_t need = want - np;
	if (want > np && f + np < CHUNK_PAGES) {
		run_t *nx = &c->runs[f + np];
		if (nx->kind == RUN_FREE && nx->state != ST_PURGING && nx->npages >= need) {
			size_t m = nx->npages;
			int st = nx->state;
			uint64_t ns = nx->dirty_ns;
			bins_remove(a, nx);
			if (m > need)
				free_insert(a, c, f + np + need, m - need, st, ns);
			a->alloc_bytes += sizeclass_info[new_cls].size - sizeclass_info[r->cls].size;
			r->npages = (uint16_t)want;
			r->cls = (uint8_t)new_cls;
			c->page_cls[f] = (uint8_t)new_cls;
			set_tags(c, f, want);
			a->active_pages += need;
			active_add(need);
			ok = 1;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return ok;
}

/* ---- freeing -------------------------------------------------------------------- */
/* Locate p's slab index or abort: p must be a block start in a live run. */
static run_t *block_run(chunk_t *c, const void *p, const char *fn, size_t *idx_out)
{
	size_t pg = chunk_page_of(c, p);
	unsigned cls = pg < CHUNK_PAGES ? c->page_cls[pg] : 0;
	if (cls == 0 || pg < c->hdr_pages)
		ebb_fatal_ptr(fn, "invalid pointer", p);
	if (cls > NSMALL) {
		run_t *r = &c->runs[pg];
		if (((uintptr_t)p & PAGE_MASK) || r->kind != RUN_LARGE || c->page_run[pg] != pg)
			ebb_fatal_ptr(fn, "invalid pointer", p);
		*idx_out = 0;
		return r;
	}
	run_t *r = &c->runs[c->page_run[pg]];
	const struct class_info *ci = &sizeclass_info[cls];
	size_t off = (uintptr_t)p - (uintptr_t)chunk_page_addr(c, run_page(r));
	size_t idx = (size_t)(((uint64_t)off * ci->recip) >> 32);
	if (r->kind != RUN_SLAB || idx * ci->size != off || idx >= ci->slab_objs)
		ebb_fatal_ptr(fn, "invalid pointer", p);
	*idx_out = idx;
	return r;
}

void arena_check_block(const void *p, const char *fn)
{
	uintptr_t e = rtree_get(p);
	if (!(e & 1))
		ebb_fatal_ptr(fn, "invalid pointer", p);
	chunk_t *c = chunk_of(p);
	arena_t *a = c->arena;
	size_t idx;
	pthread_mutex_lock(&a->lock);
	run_t *r = block_run(c, p, fn, &idx);
	if (r->kind == RUN_SLAB) {
		uint64_t *bits = slab_bits(c, run_page(r));
		if (!(bits[idx / 64] & (1ull << (idx % 64)))) {
			pthread_mutex_unlock(&a->lock);
			ebb_fatal_ptr(fn, "double free", p);
		}
		/* freed already, and waiting in the transfer cache */
		struct xfer *x = &a->xfer[r->cls];
		int found = 0;
		pthread_mutex_lock(&x->mu);
		for (unsigned i = 0; i < x->n && !found; i++)
			found = x->blk[i] == p;
		pthread_mutex_unlock(&x->mu);
		if (found) {
			pthread_mutex_unlock(&a->lock);
			ebb_fatal_ptr(fn, "double free", p);
		}
	}
	pthread_mutex_unlock(&a->lock);
}

/* Return one block under the lock. Returns 1 if a run was released. */
static int dalloc_one_locked(arena_t *a, void *p, uint64_t now)
{
	chunk_t *c = chunk_of(p);
	ebb_check(c->arena == a);
	size_t idx;
	run_t *r = block_run(c, p, "free", &idx);
	if (r->kind == RUN_LARGE) {
		a->alloc_bytes -= sizeclass_info[r->cls].size;
		run_release(a, r, now);
		return 1;
	}
	const struct class_info *ci = &sizeclass_info[r->cls];
	uint64_t *bits = slab_bits(c, run_page(r));
	uint64_t bit = 1ull << (idx % 64);
	if (!(bits[idx / 64] & bit)) {
		pthread_mutex_unlock(&a->lock);
		ebb_fatal_ptr("free", "double free", p);
	}
	bits[idx / 64] &= ~bit;
	if (idx / 64 < r->hint)
		r->hint = (uint16_t)(idx / 64);
	r->nfree++;
	r->dirty_ns = now;
	r->scanned = 0;
	a->alloc_bytes -= ci->size;
	if (r->state == ST_PURGING) {
		/* pages in flight: purge_done puts it back or releases it */
	} else if (r->nfree == ci->slab_objs) {
		if (r->on_list)
			partial_remove(a, r);
		run_release(a, r, now);
		return 1;
	} else if (!r->on_list) {
		partial_push(a, r);
	}
	return 0;
}

/* A freed small block goes to its class's transfer cache while that has
 * room: a later refill takes it back without either side touching the
 * slab (a producer/consumer pair then trades pointers, not bitmap bits).
 * Returns 1 if p was kept there. The checks are free's own (a block start
 * of a small class in a live slab page); what they cannot see, the walker
 * and arena_check_block do. */
static int xfer_put_one(arena_t *a, void *p)
{
	chunk_t *c = chunk_of(p);
	size_t pg = chunk_page_of(c, p);
	unsigned cls = c->page_cls[pg];
	if (!cls || cls > NSMALL || pg < c->hdr_pages ||
	    !chunk_is_block_start(c, pg, cls, p))
		return 0;
	return xfer_put(a, cls, &p, 1) == 1;
}

static void dalloc_batch(arena_t *a, void **blocks, unsigned n, int to_xfer);

void arena_dalloc_cached(arena_t *a, unsigned cls, void **blocks, unsigned n)
{
	/* a flush: the blocks were checked as they were freed, and are all
	 * of cls, so no block's metadata is read here; page-run classes
	 * (cached up to 256 KiB) have no transfer cache */
	atomic_fetch_add_explicit(&a->cache_flushes, 1, memory_order_relaxed);
	if (cls <= NSMALL && !__atomic_load_n(&a->xfer[cls].blk, __ATOMIC_RELAXED)) {
		/* the class's first flush: its slots, from the metadata
		 * allocator (which may map), with no lock held */
		void **slots = base_alloc(XFER_SLOTS * sizeof(void *));
		struct xfer *x = &a->xfer[cls];
		pthread_mutex_lock(&x->mu);
		if (!x->blk)
			__atomic_store_n(&x->blk, slots, __ATOMIC_RELEASE);	/* NULL (no memory): none */
		pthread_mutex_unlock(&x->mu);
	}
	unsigned k = cls <= NSMALL ? xfer_put(a, cls, blocks, n) : 0;
	if (k < n)
		dalloc_batch(a, blocks + k, n - k, 0);	/* that cache is full */
}

/* Blocks pushed by threads that found the lock taken (arena_dalloc_batch):
 * whoever holds the lock next returns them all (allocation, purging, and
 * stats, so that figures read after freeing everything are exact). */
int arena_remote_drain_locked(arena_t *a, uint64_t *now)
{
	void **p = atomic_exchange_explicit(&a->remote_head, NULL, memory_order_acquire);
	int released = 0;
	if (!p)
		return 0;
	if (!*now)
		*now = os_now_ns();
	while (p) {
		void **next = p[0];
		if (!xfer_put_one(a, p))
			released |= dalloc_one_locked(a, p, *now);
		p = next;
	}
	return released;
}

/* to_xfer: offer each block to its class's transfer cache first (a batch
 * of mixed classes); 0 when the caller just found that cache full. */
static void dalloc_batch(arena_t *a, void **blocks, unsigned n, int to_xfer)
{
	if (n == 0)
		return;
	if (pthread_mutex_trylock(&a->lock) != 0) {
		/* Contended (a producer refilling from this arena, say): push
		 * the batch, linked through the blocks' first words, with one
		 * CAS and leave; the lock holder's next drain returns them. */
		for (unsigned i = 0; i + 1 < n; i++)
			((void **)blocks[i])[0] = blocks[i + 1];
		void **last = blocks[n - 1];
		void *head = atomic_load_explicit(&a->remote_head, memory_order_relaxed);
		do {
			last[0] = head;
		} while (!atomic_compare_exchange_weak_explicit(&a->remote_head, &head, blocks[0],
							       memory_order_release, memory_order_relaxed));
		return;
	}
	uint64_t now = 0;
	int released = arena_remote_drain_locked(a, &now);
	for (unsigned i = 0; i < n; i++) {
		/* a small block goes to its class's transfer cache while it
		 * has room: a later refill takes it back without either side
		 * touching the slab (a producer/consumer pair then trades
		 * pointers, not bitmap bits) */
		void *p = blocks[i];
		if (to_xfer && xfer_put_one(a, p))
			continue;
		if (!now)
			now = os_now_ns();
		released |= dalloc_one_locked(a, p, now);
	}
	size_t dirty = a->dirty_pages;
	pthread_mutex_unlock(&a->lock);
	if (released)
		reclaim_notify(dirty * PAGE_SIZE,
			       atomic_load_explicit(&active_total_pages, memory_order_relaxed) * PAGE_SIZE);
}

void arena_dalloc_batch(arena_t *a, void **blocks, unsigned n)
{
	dalloc_batch(a, blocks, n, 1);
}

/* A class's blocks leave its transfer cache XFER_DRAIN at a time (the
 * copy lives on the caller's stack, which may be an application thread's
 * under OOM relief), from the top: as many as it held when the drain
 * started (fewer if refills took some meanwhile; flushes that come
 * meanwhile may be among them, which only sends them to their slabs). */
#define XFER_DRAIN 256
int arena_xfer_drain_locked(arena_t *a, int unused_only, uint64_t now)
{
	int released = 0;
	void *blk[XFER_DRAIN];
	for (unsigned c = 1; c <= NSMALL; c++) {
		struct xfer *x = &a->xfer[c];
		pthread_mutex_lock(&x->mu);
		unsigned left = x->n && !(unused_only && x->used) ? x->n : 0;
		x->used = 0;
		pthread_mutex_unlock(&x->mu);
		while (left) {
			pthread_mutex_lock(&x->mu);
			unsigned k = x->n < left ? x->n : left;
			if (k > XFER_DRAIN)
				k = XFER_DRAIN;
			__atomic_store_n(&x->n, (uint16_t)(x->n - k), __ATOMIC_RELAXED);
			memcpy(blk, x->blk + x->n, k * sizeof(void *));
			pthread_mutex_unlock(&x->mu);
			left = k ? left - k : 0;
			for (unsigned i = 0; i < k; i++)
				released |= dalloc_one_locked(a, blk[i], now);
		}
	}
	return released;
}

uint64_t arena_xfer_bytes(arena_t *a)
{
	uint64_t b = 0;
	for (unsigned c = 1; c <= NSMALL; c++) {
		pthread_mutex_lock(&a->xfer[c].mu);
		b += (uint64_t)a->xfer[c].n * sizeclass_info[c].size;
		pthread_mutex_unlock(&a->xfer[c].mu);
	}
	return b;
}

/* ---- reclaim hand-off ------------------------------------------------------------ */
/* Is page pg of slab r free of handed-out blocks? */
static int slab_page_empty(chunk_t *c, run_t *r, const struct class_info *ci, size_t pg)
{
	uint64_t *bits = slab_bits(c, run_page(r));
	size_t first = (pg << LG_PAGE) / ci->size;
	size_t last = (((pg + 1) << LG_PAGE) - 1) / ci->size;
	if (first >= ci->slab_objs)
		return 1;	/* only the slab's tail waste */
	if (last >= ci->slab_objs)
		last = ci->slab_objs - 1;
	for (size_t i = first; i <= last; i++)
		if (bits[i / 64] & (1ull << (i % 64)))
			return 0;
	return 1;
}

/* Take the empty pages of idle partial slabs (under the lock). */
static unsigned slab_pages_take(arena_t *a, uint64_t now_ns, uint64_t decay_ns, int force,
				struct iovec *out, unsigned max)
{
	unsigned n = 0;
	for (unsigned cls = 1; cls <= NSMALL && n < max; cls++) {
		const struct class_info *ci = &sizeclass_info[cls];
		run_t *r = a->partial[cls];
		while (r && n < max) {
			run_t *next = r->next;
			int old = os_ns_since(now_ns, r->dirty_ns) >= decay_ns;
			if (r->scanned || (!force && !old)) {
				r = next;
				continue;
			}
			r->scanned = 1;
			chunk_t *c = chunk_of(r);
			char *base = chunk_page_addr(c, run_page(r));
			unsigned first_n = n;
			size_t pg = 0;
			while (pg < ci->slab_pages && n < max) {
				if (!(r->resident & (1u << pg)) || !slab_page_empty(c, r, ci, pg)) {
					pg++;
					continue;
				}
				size_t start = pg;
				while (pg < ci->slab_pages && (r->resident & (1u << pg)) &&
				       slab_page_empty(c, r, ci, pg))
					pg++;
				out[n].iov_base = base + (start << LG_PAGE);
				out[n].iov_len = (pg - start) << LG_PAGE;
				a->purge_taken[old ? PURGE_DECAY : PURGE_FORCED] += pg - start;
				n++;
			}
			if (n > first_n) {
				partial_remove(a, r);
				r->state = ST_PURGING;
			}
			r = next;
		}
	}
	return n;
}

/* Complete a slab-page range: its pages are no longer resident. */
static void slab_pages_done(arena_t *a, run_t *r, const struct iovec *v, int purged)
{
	size_t f = run_page(r);
	size_t p0 = chunk_page_of(chunk_of(r), v->iov_base) - f;
	size_t np = v->iov_len >> LG_PAGE;
	if (purged) {
		for (size_t pg = p0; pg < p0 + np; pg++)
			r->resident &= ~(1u << pg);
		a->purged_bytes += v->iov_len;
	}
}

/* After every range of the batch is complete: put the slab back, or
 * release it if it emptied while its pages were in flight. Once per slab
 * (a slab may have several ranges in a batch). */
static void slab_restore(arena_t *a, run_t *r, uint64_t now)
{
	if (r->kind != RUN_SLAB || r->state != ST_PURGING)
		return;
	r->state = ST_ACTIVE;
	if (r->nfree == sizeclass_info[r->cls].slab_objs)
		run_release(a, r, now);
	else if (r->nfree > 0 && !r->on_list)
		partial_push(a, r);
}

size_t arena_dirty_pages(arena_t *a)
{
	pthread_mutex_lock(&a->lock);
	size_t n = a->dirty_pages;
	pthread_mutex_unlock(&a->lock);
	return n;
}

unsigned arena_purge_take(arena_t *a, uint64_t now_ns, uint64_t decay_ns,
			  size_t excess_pages, int force, struct iovec *out, unsigned max)
{
	unsigned n = 0;
	size_t taken = 0;
	uint64_t drained_ns = 0;
	pthread_mutex_lock(&a->lock);
	arena_remote_drain_locked(a, &drained_ns);	/* what they free may be purgeable */
	/* transfer caches: classes idle since the last pass go back to their
	 * slabs (which may then empty and be purged); everything if forced */
	if (force || a->xfer_pass_ns != now_ns) {	/* once per pass: it clears the marks */
		a->xfer_pass_ns = now_ns;
		arena_xfer_drain_locked(a, !force, now_ns);
	}
	run_t *r = a->dirty_head;
	while (r && n < max) {
		run_t *next = r->age_next;
		int old = os_ns_since(now_ns, r->dirty_ns) >= decay_ns;
		if (!force && !old && taken >= excess_pages)
			break;
		size_t np = r->npages;
		bins_remove(a, r);
		r->state = ST_PURGING;
		a->purging_pages += np;
		out[n].iov_base = run_addr(r);
		out[n].iov_len = np * PAGE_SIZE;
		n++;
		/* not old: the cap's share while it lasts, then forced */
		a->purge_taken[old ? PURGE_DECAY : taken < excess_pages ? PURGE_CAP : PURGE_FORCED] += np;
		taken += np;
		r = next;
	}
	if (n < max)
		n += slab_pages_take(a, now_ns, decay_ns, force, out + n, max - n);
	pthread_mutex_unlock(&a->lock);
	return n;
}

/* Wholly free (and purged: no RSS) chunks kept mapped per arena, so that a
 * heap that empties and refills does not pay mmap + munmap (on the
 * application's threads) per chunk each time. Under address-space
 * pressure oom relief unmaps them all (arena_release_empty). */
#define CHUNKS_RETAINED 8

/* A chunk whose pages are one CLEAN free run holds nothing: unlink it
 * (under the lock) so the caller can unmap it after unlocking. */
static int chunk_is_empty(chunk_t *c)
{
	run_t *r = &c->runs[c->hdr_pages];
	return r->kind == RUN_FREE && r->state == ST_CLEAN && r->npages == CHUNK_PAGES - c->hdr_pages;
}

static unsigned chunks_empty(arena_t *a)
{
	unsigned n = 0;
	for (chunk_t *c = a->chunks; c; c = c->next)
		n += chunk_is_empty(c);
	return n;
}

static int chunk_take_if_empty(arena_t *a, chunk_t *c)
{
	run_t *r = &c->runs[c->hdr_pages];
	if (!chunk_is_empty(c) || chunks_empty(a) <= CHUNKS_RETAINED)
		return 0;
	bins_remove(a, r);
	chunk_t **pp = &a->chunks;
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	a->nchunks--;
	return 1;
}

void arena_purge_done(arena_t *a, const struct iovec *v, unsigned n, int purged)
{
	chunk_t *empty = NULL;	/* unlinked empty chunks, chained through next */
	run_t *slabs[RECLAIM_BATCH_MAX];
	unsigned nslabs = 0;
	pthread_mutex_lock(&a->lock);
	for (unsigned i = 0; i < n; i++) {
		chunk_t *c = chunk_of(v[i].iov_base);
		size_t f = chunk_page_of(c, v[i].iov_base);
		run_t *r = &c->runs[c->page_run[f]];
		if (r->kind == RUN_SLAB && r->state == ST_PURGING) {
			slab_pages_done(a, r, &v[i], purged);
			if (nslabs < RECLAIM_BATCH_MAX)
				slabs[nslabs++] = r;
			continue;
		}
		r = &c->runs[f];
		ebb_check(r->kind == RUN_FREE && r->state == ST_PURGING);
		size_t np = r->npages;
		a->purging_pages -= np;
		if (purged)
			a->purged_bytes += np * PAGE_SIZE;
		/* Pages a failed purge left resident are still counted CLEAN:
		 * retrying forever would be worse; the failure is in the stats. */
		free_coalesce(a, c, f, np, ST_CLEAN, 0);
		if (chunk_take_if_empty(a, c)) {
			c->next = empty;
			empty = c;
		}
	}
	uint64_t now = nslabs ? os_now_ns() : 0;
	for (unsigned i = 0; i < nslabs; i++)
		slab_restore(a, slabs[i], now);
	pthread_mutex_unlock(&a->lock);
	while (empty) {
		chunk_t *next = empty->next;
		chunk_release(empty);
		empty = next;
	}
}

/* Unmap every wholly free chunk of the arena (address-space pressure). */
void arena_release_empty(arena_t *a)
{
	chunk_t *empty = NULL;
	pthread_mutex_lock(&a->lock);
	arena_xfer_drain_locked(a, 0, os_now_ns());
	for (chunk_t **pp = &a->chunks; *pp;) {
		chunk_t *c = *pp;
		if (chunk_is_empty(c)) {
			bins_remove(a, &c->runs[c->hdr_pages]);
			*pp = c->next;
			a->nchunks--;
			c->next = empty;
			empty = c;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&a->lock);
	while (empty) {
		chunk_t *next = empty->next;
		chunk_release(empty);
		empty = next;
	}
}

/* ---- invariant walker ------------------------------------------------------------- */
/* What the walk of the chunks counts, to be compared with the arena's
 * lists and counters. */
struct walk_sums {
	size_t dirty, active, purging, clean;	/* pages */
	size_t usable;			/* pages of the chunks outside their headers */
	size_t runs;			/* runs of every kind (bounds the list walks) */
	size_t binned[2];		/* FREE runs that belong in a size bin: [S_DIRTY], [S_CLEAN] */
	size_t on_partial;		/* slabs flagged on a partial list */
};

/* Is p a live block start of class cls in one of a's chunks: the run it
 * lies in has that class, p is a block boundary, and its slab bit is set
 * (page runs: the LARGE run starts at p)? Caller holds a->lock. */
static int block_is_live_locked(arena_t *a, const void *p, unsigned cls)
{
	if (rtree_get(p) != ((uintptr_t)chunk_of(p) | 1))
		return 0;
	chunk_t *c = chunk_of(p);
	size_t pg = chunk_page_of(c, p);
	if (c->magic != CHUNK_MAGIC || c->arena != a || pg < c->hdr_pages || cls == 0 ||
	    cls > NCLASS || c->page_cls[pg] != cls)
		return 0;
	run_t *r = &c->runs[c->page_run[pg]];
	if (cls > NSMALL)
		return r->kind == RUN_LARGE && c->page_run[pg] == pg && r->cls == cls &&
		       ((uintptr_t)p & PAGE_MASK) == 0;
	size_t off = (uintptr_t)p - (uintptr_t)chunk_page_addr(c, run_page(r));
	size_t idx = off / sizeclass_info[cls].size;
	return r->kind == RUN_SLAB && r->cls == cls && idx * sizeclass_info[cls].size == off &&
	       idx < sizeclass_info[cls].slab_objs &&
	       (slab_bits(c, run_page(r))[idx / 64] & (1ull << (idx % 64)));
}

int arena_block_is_live(const void *p, unsigned cls)
{
	if (rtree_get(p) != ((uintptr_t)chunk_of(p) | 1))
		return 0;
	arena_t *a = chunk_of(p)->arena;
	pthread_mutex_lock(&a->lock);
	int ok = block_is_live_locked(a, p, cls);
	pthread_mutex_unlock(&a->lock);
	return ok;
}

static int slab_is_valid(chunk_t *c, run_t *r, size_t f, struct walk_sums *w)
{
	const struct class_info *ci = &sizeclass_info[r->cls];
	if (r->cls == 0 || r->cls > NSMALL || r->npages != ci->slab_pages)
		return 0;
	if (r->state != ST_ACTIVE && r->state != ST_PURGING)
		return 0;
	/* the free count matches the bitmap; no bit past the last block */
	unsigned used = 0, nw = (ci->slab_objs + 63) / 64;
	uint64_t *bits = slab_bits(c, f);
	for (unsigned i = 0; i < nw; i++)
		used += (unsigned)__builtin_popcountll(bits[i]);
	if (used + r->nfree != ci->slab_objs)
		return 0;
	if (ci->slab_objs % 64 && (bits[nw - 1] >> (ci->slab_objs % 64)))
		return 0;
	/* an empty slab is released, unless its pages are in flight */
	if (r->nfree == ci->slab_objs && r->state != ST_PURGING)
		return 0;
	/* no free bit below the allocation hint */
	if (r->hint >= nw)
		return 0;
	for (unsigned i = 0; i < r->hint; i++)
		if (~bits[i])
			return 0;
	/* on the partial list exactly when it has free blocks (never while
	 * its pages are in flight) */
	if (r->state == ST_PURGING ? r->on_list : (r->nfree > 0) != r->on_list)
		return 0;
	w->on_partial += r->on_list;
	/* a page holding a handed-out block is marked resident */
	for (size_t pg = 0; pg < ci->slab_pages; pg++)
		if (!(r->resident & (1u << pg)) && !slab_page_empty(c, r, ci, pg))
			return 0;
	/* every page maps to the slab (free() and its fast path read these) */
	for (size_t i = f; i < f + r->npages; i++)
		if (c->page_cls[i] != r->cls || c->page_run[i] != f ||
		    c->page_off[i] != (uint32_t)(f << LG_PAGE))
			return 0;
	w->active += r->npages;
	return 1;
}

static int chunk_is_valid(arena_t *a, chunk_t *c, struct walk_sums *w)
{
	if (c->magic != CHUNK_MAGIC || c->arena != a || rtree_get(c) != ((uintptr_t)c | 1) ||
	    c->hdr_pages != CHUNK_HDR_PAGES)
		return 0;
	w->usable += CHUNK_PAGES - c->hdr_pages;
	size_t f = c->hdr_pages;
	int prev_kind = 0, prev_state = -1;
	while (f < CHUNK_PAGES) {
		run_t *r = &c->runs[f];
		size_t n = r->npages;
		if (n == 0 || f + n > CHUNK_PAGES)
			return 0;
		if (c->page_run[f] != f || c->page_run[f + n - 1] != f)
			return 0;
		w->runs++;
		switch (r->kind) {
		case RUN_FREE:
			/* two free neighbours of one state would have coalesced */
			if (prev_kind == RUN_FREE && prev_state == r->state && r->state != ST_PURGING)
				return 0;
			if (r->state == ST_DIRTY) {
				w->dirty += n;
				w->binned[S_DIRTY]++;
			} else if (r->state == ST_CLEAN) {
				w->clean += n;
				w->binned[S_CLEAN]++;
			} else if (r->state == ST_PURGING) {
				/* with the reclaim thread: on no list */
				if (r->prev || r->next || r->age_prev || r->age_next)
					return 0;
				w->purging += n;
			} else {
				return 0;
			}
			for (size_t i = f; i < f + n; i++)
				if (c->page_cls[i])
					return 0;
			break;
		case RUN_SLAB:
			if (!slab_is_valid(c, r, f, w))
				return 0;
			break;
		case RUN_LARGE:
			if (r->state != ST_ACTIVE || r->cls <= NSMALL || r->cls > NCLASS ||
			    n != sizeclass_info[r->cls].slab_pages || c->page_cls[f] != r->cls ||
			    c->page_off[f] != (uint32_t)(f << LG_PAGE))
				return 0;
			/* only the first page starts a block: free() of an
			 * inner address is an invalid pointer */
			for (size_t i = f + 1; i < f + n; i++)
				if (c->page_cls[i])
					return 0;
			w->active += n;
			break;
		default:
			return 0;
		}
		prev_kind = r->kind;
		prev_state = r->state;
		f += n;
	}
	return f == CHUNK_PAGES;
}

/* The size bins hold every DIRTY and CLEAN run once, each in the bin of
 * its state and size, and the mask says which bins are non-empty. */
static int free_bins_are_valid(arena_t *a, const struct walk_sums *w)
{
	for (int s = 0; s < 2; s++) {
		size_t seen = 0;
		for (unsigned b = 0; b < NPBINS; b++) {
			int bit = (a->bin_mask[s][b / 64] >> (b % 64)) & 1;
			if (bit != (a->free_bins[s][b] != NULL))
				return 0;
			run_t *prev = NULL;
			for (run_t *r = a->free_bins[s][b]; r; prev = r, r = r->next) {
				chunk_t *c = chunk_of(r);
				if (++seen > w->binned[s] || r->prev != prev || c->arena != a ||
				    r->kind != RUN_FREE || r->state != (s == S_DIRTY ? ST_DIRTY : ST_CLEAN) ||
				    pbin_floor(r->npages) != b || c->page_run[run_page(r)] != run_page(r))
					return 0;
			}
		}
		if (seen != w->binned[s])
			return 0;
	}
	return 1;
}

/* The partial lists hold exactly the slabs flagged on_list, of their class. */
static int partial_lists_are_valid(arena_t *a, const struct walk_sums *w)
{
	size_t seen = 0;
	for (unsigned cls = 1; cls <= NSMALL; cls++) {
		run_t *prev = NULL;
		for (run_t *r = a->partial[cls]; r; prev = r, r = r->next)
			if (++seen > w->on_partial || r->prev != prev || chunk_of(r)->arena != a ||
			    r->kind != RUN_SLAB || r->cls != cls || !r->on_list || r->state != ST_ACTIVE ||
			    r->nfree == 0 || r->nfree >= sizeclass_info[cls].slab_objs)
				return 0;
	}
	return seen == w->on_partial && a->partial[0] == NULL;
}

/* The dirty list is the reclaim queue: every DIRTY run once, oldest first. */
static int dirty_list_is_valid(arena_t *a, const struct walk_sums *w)
{
	size_t aged = 0, seen = 0;
	uint64_t last = 0;
	run_t *prev = NULL;
	for (run_t *r = a->dirty_head; r; prev = r, r = r->age_next) {
		if (++seen > w->binned[S_DIRTY] || r->age_prev != prev || chunk_of(r)->arena != a ||
		    r->kind != RUN_FREE || r->state != ST_DIRTY || r->dirty_ns < last)
			return 0;
		last = r->dirty_ns;
		aged += r->npages;
	}
	return a->dirty_tail == prev && seen == w->binned[S_DIRTY] && aged == w->dirty;
}

/* Transfer caches: distinct live block starts of their class, within cap
 * (distinct: sorted, a copy, then neighbours compared; pairwise was 500 000
 * comparisons a full class). */
static int xfer_is_valid(arena_t *a)
{
	void *sorted[XFER_SLOTS];	/* 8 KiB of stack: the walker's (EBB_DEBUG 3, tests) */
	int ok = 1;
	for (unsigned cls = 1; cls <= NSMALL && ok; cls++) {
		struct xfer *x = &a->xfer[cls];
		pthread_mutex_lock(&x->mu);
		unsigned n = x->n;
		ok = n <= x->cap && x->cap <= XFER_SLOTS && (n == 0 || x->blk);
		for (unsigned i = 0; i < n && ok; i++) {
			ok = block_is_live_locked(a, x->blk[i], cls);
			sorted[i] = x->blk[i];
		}
		pthread_mutex_unlock(&x->mu);
		/* Shell sort, gaps 3h+1 */
		unsigned h = 1;
		while (ok && h < n / 3)
			h = 3 * h + 1;
		for (; ok && h >= 1; h /= 3)
			for (unsigned i = h; i < n; i++) {
				void *v = sorted[i];
				unsigned j = i;
				for (; j >= h && (uintptr_t)sorted[j - h] > (uintptr_t)v; j -= h)
					sorted[j] = sorted[j - h];
				sorted[j] = v;
			}
		for (unsigned i = 1; i < n && ok; i++)
			ok = sorted[i - 1] != sorted[i];
	}
	return ok;
}

/* Blocks waiting on the remote stack (pushed by frees that found the lock
 * taken): live blocks of this arena. Pushes only prepend, and only a lock
 * holder pops, so the chain is stable while we hold the lock. */
static int remote_stack_is_valid(arena_t *a)
{
	size_t limit = a->nchunks * (CHUNK_SIZE / MIN_ALIGN);
	for (void **p = atomic_load_explicit(&a->remote_head, memory_order_acquire); p; p = p[0]) {
		chunk_t *c = chunk_of(p);
		if (limit-- == 0 || rtree_get(p) != ((uintptr_t)c | 1) || c->arena != a)
			return 0;
		size_t pg = chunk_page_of(c, p);
		if (pg < c->hdr_pages || !block_is_live_locked(a, p, c->page_cls[pg]))
			return 0;
	}
	return 1;
}

int arena_is_valid(arena_t *a)
{
	struct walk_sums w = { 0 };
	size_t nchunks = 0;
	int ok = 1;
	pthread_mutex_lock(&a->lock);
	for (chunk_t *c = a->chunks; c && ok; c = c->next)
		ok = ++nchunks <= a->nchunks && chunk_is_valid(a, c, &w);
	/* every page of every chunk is accounted for exactly once */
	ok = ok && nchunks == a->nchunks && w.dirty == a->dirty_pages && w.active == a->active_pages &&
	     w.purging == a->purging_pages && w.dirty + w.active + w.purging + w.clean == w.usable;
	ok = ok && dirty_list_is_valid(a, &w) && free_bins_are_valid(a, &w) &&
	     partial_lists_are_valid(a, &w) && xfer_is_valid(a) && remote_stack_is_valid(a);
	pthread_mutex_unlock(&a->lock);
	return ok;
}

/* ---- fork ---------------------------------------------------------------------------- */
/* The transfer caches' locks are not taken for fork (72 per arena: more
 * locks than a thread should hold at once, and TSan's deadlock detector
 * stops at 64). Under an arena's lock nothing is half-way in its transfer
 * caches (drains, walks and checks hold both); a put or take on another
 * thread may be: a put stores its blocks before the count (release), a
 * take lowers the count before copying out, so the child sees either the
 * blocks or not, never a count over garbage, and at worst leaks blocks a
 * thread that does not exist in the child was handing over. The child
 * re-initialises the locks. */
void arena_atfork_prepare(void)
{
	/* grow locks first: each is taken before its arena's lock */
	for (unsigned i = 0; i < narenas; i++)
		pthread_mutex_lock(&arenas[i]->grow_lock);
	for (unsigned i = 0; i < narenas; i++)
		pthread_mutex_lock(&arenas[i]->lock);
}

void arena_atfork_parent(void)
{
	for (unsigned i = narenas; i-- > 0;)
		pthread_mutex_unlock(&arenas[i]->lock);
	for (unsigned i = narenas; i-- > 0;)
		pthread_mutex_unlock(&arenas[i]->grow_lock);
}

void arena_atfork_child(void)
{
	/* the arena locks were taken by this thread in prepare: unlocked (not
	 * re-initialised: undefined for a locked mutex, and a double lock to
	 * TSan when the child's threads take them); the transfer caches'
	 * locks may have been held by threads the child does not have */
	for (unsigned i = narenas; i-- > 0;)
		pthread_mutex_unlock(&arenas[i]->lock);
	for (unsigned i = narenas; i-- > 0;)
		pthread_mutex_unlock(&arenas[i]->grow_lock);
	for (unsigned i = 0; i < narenas; i++) {
		for (unsigned c = 0; c <= NSMALL; c++)
			lock_init_adaptive(&arenas[i]->xfer[c].mu);
	}
}
