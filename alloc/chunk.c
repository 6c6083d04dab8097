/*
 * chunk.c - the chunk layer: aligned chunks, the pointer -> chunk radix map,
 * huge allocations, and the metadata allocator.
 *
 * A chunk is 4 MiB aligned to 4 MiB; its header (chunk_t) takes its first
 * CHUNK_HDR_PAGES pages, which are touched only where a run descriptor or a
 * slab bitmap is used. A new chunk is bound to its arena's node before
 * anything touches it (numa/bind.c), registered in the radix map, named for
 * /proc/PID/maps where the kernel allows, and handed to the arena as one
 * CLEAN free run.
 *
 * The radix map has one uintptr_t per 4 MiB slot of the 47-bit address
 * space: (chunk | 1) for a chunk, a huge_t * for a huge block that starts in
 * the slot, 0 otherwise. free() of any pointer looks it up before touching
 * memory, which is how a foreign pointer is told apart without a fault.
 *
 * Huge blocks (> 2 MiB) are mappings of their own, aligned to 4 MiB so that
 * no other block of ours shares their first slot; realloc grows them with
 * mremap, in place or onto a fresh aligned range (no copy).
 *
 * Threads: any. rtree_lock serialises leaf creation and writers; readers
 * are lock-free (acquire loads). huge_lock guards the huge_t free list.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "os.h"

/* Every top entry starts at the shared zero leaf (in .bss, never written),
 * so a lookup needs no NULL test. */
uintptr_t rtree_zero_leaf[1u << RTREE_LEAF_BITS];
uint8_t chunk_map[1u << (LG_VADDR - LG_CHUNK)];
_Atomic(uintptr_t *) rtree_top[1u << RTREE_TOP_BITS] = {
	[0 ... (1u << RTREE_TOP_BITS) - 1] = rtree_zero_leaf
};
static pthread_mutex_t rtree_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t base_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t huge_lock = PTHREAD_MUTEX_INITIALIZER;
static huge_t *huge_free_list;
_Atomic size_t huge_live_bytes, huge_live_count, huge_mapped_bytes;

_Static_assert(sizeof(chunk_t) <= 32 * PAGE_SIZE, "chunk header too large");
_Static_assert(SLAB_MAX_PAGES * BITS_PER_PAGE >= 4096, "bitmap too small for 16 B slabs");

/* ---- metadata allocator --------------------------------------------------- */
static char *base_cur, *base_end;

void *base_alloc(size_t bytes)
{
	bytes = ALIGN_UP(bytes, 64);
	pthread_mutex_lock(&base_lock);
	if ((size_t)(base_end - base_cur) < bytes) {
		size_t sz = bytes > 65536 ? ALIGN_UP(bytes, PAGE_SIZE) : 65536;
		void *p;
		if (os_map(sz, PAGE_SIZE, &p)) {
			pthread_mutex_unlock(&base_lock);
			return NULL;
		}
		os_name(p, sz, "ebbmalloc:meta");
		base_cur = p;
		base_end = (char *)p + sz;
	}
	void *r = base_cur;
	base_cur += bytes;
	pthread_mutex_unlock(&base_lock);
	return r;
}

/* ---- radix map -------------------------------------------------------------- */
int rtree_set(const void *p, uintptr_t v)
{
	uintptr_t slot = (uintptr_t)p >> LG_CHUNK;
	unsigned top = (unsigned)(slot >> RTREE_LEAF_BITS);
	ebb_check(((uintptr_t)p >> LG_VADDR) == 0);
	pthread_mutex_lock(&rtree_lock);
	uintptr_t *leaf = atomic_load_explicit(&rtree_top[top], memory_order_relaxed);
	if (leaf == rtree_zero_leaf) {
		void *m;
		if (os_map(sizeof(uintptr_t) << RTREE_LEAF_BITS, PAGE_SIZE, &m)) {
			pthread_mutex_unlock(&rtree_lock);
			return -ENOMEM;
		}
		leaf = m;
		atomic_store_explicit(&rtree_top[top], leaf, memory_order_release);
	}
	atomic_store_explicit((_Atomic uintptr_t *)&leaf[slot & ((1u << RTREE_LEAF_BITS) - 1)], v,
			      memory_order_release);
	pthread_mutex_unlock(&rtree_lock);
	return 0;
}

/* ---- chunks ------------------------------------------------------------------ */
/* Chunks are carved from 64 MiB aligned reservations (mapped read-write,
 * untouched: no RSS), so that a new chunk costs no syscall on the
 * application's thread most of the time; when a reservation cannot be had
 * (RLIMIT_AS, fragmentation) a single chunk is mapped. */
#define RESERVE_BYTES ((size_t)64 << 20)
static char *res_cur, *res_end;

static void *chunk_map_space(void)
{
	void *p = NULL;
	pthread_mutex_lock(&base_lock);
	if (res_cur == res_end) {
		void *r;
		if (os_map(RESERVE_BYTES, CHUNK_SIZE, &r) == 0) {
			res_cur = r;
			res_end = (char *)r + RESERVE_BYTES;
		}
	}
	if (res_cur != res_end) {
		p = res_cur;
		res_cur += CHUNK_SIZE;
	}
	pthread_mutex_unlock(&base_lock);
	if (!p && os_map(CHUNK_SIZE, CHUNK_SIZE, &p))
		return NULL;
	return p;
}

chunk_t *chunk_new(arena_t *a)
{
	void *p = chunk_map_space();
	if (!p)
		return NULL;
	if (opt(OPT_numa) && nnodes > 1)
		bind_range(p, CHUNK_SIZE, a->node);	/* advisory: failure is counted, not fatal */
	/* by hand, not ebb_snprintf: this runs at the bottom of whichever
	 * thread's stack needed a chunk, and a frame less here is a stack
	 * page less for parked threads (bench/parked.c) */
	_Static_assert(EBB_MAX_NODES <= 10, "a node is one digit in a chunk's name");
	char name[] = "ebbmalloc:node0";
	name[sizeof(name) - 2] = (char)('0' + a->node);
	os_name(p, CHUNK_SIZE, name);
	if (rtree_set(p, (uintptr_t)p | 1)) {
		os_unmap(p, CHUNK_SIZE);
		return NULL;
	}
	chunk_t *c = p;
	atomic_store_explicit((_Atomic uint8_t *)&chunk_map[(uintptr_t)p >> LG_CHUNK],
			      (uint8_t)(a->node + 1), memory_order_release);
	c->magic = CHUNK_MAGIC;
	c->arena = a;
	c->node = a->node;
	c->hdr_pages = (uint32_t)CHUNK_HDR_PAGES;
	run_t *h = &c->runs[0];
	h->kind = RUN_HDR;
	h->npages = (uint16_t)CHUNK_HDR_PAGES;
	for (size_t i = 0; i < CHUNK_HDR_PAGES; i++)
		c->page_run[i] = 0;
	return c;
}

/* Give an empty chunk back to the kernel (no lock held). Nothing points
 * into it: every block was freed and its pages purged. */
void chunk_release(chunk_t *c)
{
	atomic_store_explicit((_Atomic uint8_t *)&chunk_map[(uintptr_t)c >> LG_CHUNK], 0,
			      memory_order_release);
	rtree_set(c, 0);
	os_unmap(c, CHUNK_SIZE);
}

/* ---- huge blocks ---------------------------------------------------------- */
static huge_t *huge_desc_get(void)
{
	pthread_mutex_lock(&huge_lock);
	huge_t *h = huge_free_list;
	if (h)
		huge_free_list = h->next_free;
	pthread_mutex_unlock(&huge_lock);
	if (!h)
		h = base_alloc(sizeof(huge_t));
	if (h)
		memset(h, 0, sizeof(*h));
	return h;
}

static void huge_desc_put(huge_t *h)
{
	pthread_mutex_lock(&huge_lock);
	h->next_free = huge_free_list;
	huge_free_list = h;
	pthread_mutex_unlock(&huge_lock);
}

/* ---- the huge cache --------------------------------------------------------- */
/*
 * A freed huge block is kept mapped (and resident) for up to decay_ms, at
 * most huge_cache_bytes in all, so that a program that frees and mallocs
 * multi-MiB buffers does not pay mmap + page faults + munmap (and the TLB
 * shootdowns and mmap_lock waits they cause other threads) each time. A
 * request takes the smallest cached mapping at least its size: as it is
 * if the request is at least 3/4 of it, else with the tail unmapped. When
 * every cached mapping is smaller, it takes the largest one of at least
 * half its size and grows it with mremap (moved, not copied, if it cannot
 * grow in place): only the growth is fresh pages. With exact fits only,
 * bench/latency.c's churner (random sizes of 2-8 MiB) found none: every
 * block was mapped and faulted in afresh, 390 page faults a block, and the
 * zeroing that streamed through the cache showed in the probe thread's
 * tail. The reclaim thread unmaps what is older than decay_ms (so munmap
 * runs on it, not on the application's threads), and malloc_trim unmaps
 * everything.
 * Cached mappings are not in the radix map; a second free of one is found
 * here (huge_cache_holds) and reported as a double free.
 */
#define HUGE_CACHE_SLOTS 16
static struct {
	huge_t  *h;
	uint64_t freed_ns;
} huge_cache[HUGE_CACHE_SLOTS];
static size_t huge_cache_bytes_now;
static _Atomic size_t huge_cache_count;

static huge_t *huge_cache_take(size_t map, size_t align)
{
	if (align > CHUNK_SIZE || !atomic_load_explicit(&huge_cache_count, memory_order_relaxed))
		return NULL;
	int fit = -1, grow = -1;	/* smallest >= map; largest in [map/2, map) */
	pthread_mutex_lock(&huge_lock);
	for (int i = 0; i < HUGE_CACHE_SLOTS; i++) {
		huge_t *h = huge_cache[i].h;
		if (!h)
			continue;
		if (h->map_bytes >= map) {
			if (fit < 0 || h->map_bytes < huge_cache[fit].h->map_bytes)
				fit = i;
		} else if (h->map_bytes >= map / 2) {
			if (grow < 0 || h->map_bytes > huge_cache[grow].h->map_bytes)
				grow = i;
		}
	}
	int bi = fit >= 0 ? fit : grow;
	huge_t *best = NULL;
	if (bi >= 0) {
		best = huge_cache[bi].h;
		huge_cache[bi].h = NULL;
		huge_cache_bytes_now -= best->map_bytes;
		atomic_fetch_sub_explicit(&huge_cache_count, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&huge_lock);
	return best;
}

/* 1 if p is the address of a freed huge block waiting in the cache: a
 * second free of it is a double free, not a pointer we never returned. */
int huge_cache_holds(const void *p)
{
	int found = 0;
	if (!atomic_load_explicit(&huge_cache_count, memory_order_relaxed))
		return 0;
	pthread_mutex_lock(&huge_lock);
	for (int i = 0; i < HUGE_CACHE_SLOTS && !found; i++)
		found = huge_cache[i].h && huge_cache[i].h->addr == p;
	pthread_mutex_unlock(&huge_lock);
	return found;
}

/* 1 if h was cached (and now belongs to the cache), 0 if the caller must
 * unmap it. */
static int huge_cache_put(huge_t *h)
{
	size_t cap = (size_t)opt(OPT_huge_cache_bytes);
	int done = 0;
	pthread_mutex_lock(&huge_lock);
	if (huge_cache_bytes_now + h->map_bytes <= cap) {
		for (int i = 0; i < HUGE_CACHE_SLOTS; i++)
			if (!huge_cache[i].h) {
				huge_cache[i].h = h;
				huge_cache[i].freed_ns = os_now_ns();
				huge_cache_bytes_now += h->map_bytes;
				atomic_fetch_add_explicit(&huge_cache_count, 1, memory_order_relaxed);
				done = 1;
				break;
			}
	}
	pthread_mutex_unlock(&huge_lock);
	return done;
}

static void huge_unmap(huge_t *h)
{
	os_unmap(h->addr, h->map_bytes);
	atomic_fetch_sub_explicit(&huge_mapped_bytes, h->map_bytes, memory_order_relaxed);
	huge_desc_put(h);
}

/* Unmap cached blocks older than decay_ns (all if force). Returns bytes. */
size_t huge_cache_trim(uint64_t now_ns, uint64_t decay_ns, int force)
{
	huge_t *victims[HUGE_CACHE_SLOTS];
	int n = 0;
	size_t bytes = 0;
	if (!atomic_load_explicit(&huge_cache_count, memory_order_relaxed))
		return 0;
	pthread_mutex_lock(&huge_lock);
	for (int i = 0; i < HUGE_CACHE_SLOTS; i++) {
		huge_t *h = huge_cache[i].h;
		if (h && (force || os_ns_since(now_ns, huge_cache[i].freed_ns) >= decay_ns)) {
			victims[n++] = h;
			huge_cache[i].h = NULL;
			huge_cache_bytes_now -= h->map_bytes;
			atomic_fetch_sub_explicit(&huge_cache_count, 1, memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&huge_lock);
	for (int i = 0; i < n; i++) {
		bytes += victims[i]->map_bytes;
		huge_unmap(victims[i]);
	}
	return bytes;
}

huge_t *huge_alloc(size_t size, size_t align, int *zeroed)
{
	if (size > (SIZE_MAX >> 1) || align > (SIZE_MAX >> 2))
		return NULL;
	size_t map = ALIGN_UP(size, PAGE_SIZE);
	huge_t *h = huge_cache_take(map, align);
	if (h) {
		if (rtree_set(h->addr, (uintptr_t)h)) {
			huge_unmap(h);
			return NULL;
		}
		h->req_bytes = size;
		*zeroed = 0;
		atomic_fetch_add_explicit(&huge_live_bytes, h->map_bytes, memory_order_relaxed);
		atomic_fetch_add_explicit(&huge_live_count, 1, memory_order_relaxed);
		/* trim a tail of more than a quarter, grow one too small */
		if (map < h->map_bytes / 4 * 3 || map > h->map_bytes) {
			if (huge_realloc(h, size))
				return h;
			if (map <= h->map_bytes)
				return h;	/* could not trim: usable as it is */
			huge_free(h);		/* could not grow: map afresh */
		} else {
			return h;
		}
	}
	*zeroed = 1;
	h = huge_desc_get();
	if (!h)
		return NULL;
	void *p;
	if (os_map(map, align > CHUNK_SIZE ? align : CHUNK_SIZE, &p)) {
		huge_desc_put(h);
		return NULL;
	}
	os_name(p, map, "ebbmalloc:huge");
	h->addr = p;
	h->map_bytes = map;
	h->req_bytes = size;
	if (rtree_set(p, (uintptr_t)h)) {
		os_unmap(p, map);
		huge_desc_put(h);
		return NULL;
	}
	atomic_fetch_add_explicit(&huge_live_bytes, map, memory_order_relaxed);
	atomic_fetch_add_explicit(&huge_mapped_bytes, map, memory_order_relaxed);
	atomic_fetch_add_explicit(&huge_live_count, 1, memory_order_relaxed);
	return h;
}

void huge_free(huge_t *h)
{
	rtree_set(h->addr, 0);
	atomic_fetch_sub_explicit(&huge_live_bytes, h->map_bytes, memory_order_relaxed);
	atomic_fetch_sub_explicit(&huge_live_count, 1, memory_order_relaxed);
	if (!huge_cache_put(h))
		huge_unmap(h);
}

/* Resize a huge block to size (> LARGE_MAX) without copying. */
huge_t *huge_realloc(huge_t *h, size_t size)
{
	if (size > (SIZE_MAX >> 1))
		return NULL;
	size_t map = ALIGN_UP(size, PAGE_SIZE);
	size_t old = h->map_bytes;
	if (map == old) {
		h->req_bytes = size;
		return h;
	}
	if (map < old || os_remap_inplace(h->addr, old, map) == 0) {
		if (map < old)
			os_unmap((char *)h->addr + map, old - map);
		h->map_bytes = map;
		h->req_bytes = size;
		atomic_fetch_add_explicit(&huge_live_bytes, map - old, memory_order_relaxed);
		atomic_fetch_add_explicit(&huge_mapped_bytes, map - old, memory_order_relaxed);
		return h;
	}
	/* Move: reserve a fresh aligned range and mremap the pages onto it. */
	void *dst;
	if (os_map(map, CHUNK_SIZE, &dst))
		return NULL;
	if (rtree_set(dst, (uintptr_t)h)) {
		os_unmap(dst, map);
		return NULL;
	}
	/* The move unmaps the old range, and another thread's mmap may get
	 * it at once and register it: forget the old address first, never
	 * after (clearing it late erased the newcomer's entry, and its free
	 * was refused as an invalid pointer). The block is ours alone, so no
	 * one looks it up in between. */
	rtree_set(h->addr, 0);
	if (os_remap_move(h->addr, old, map, dst)) {
		rtree_set(h->addr, (uintptr_t)h);	/* cannot fail: its leaf exists */
		rtree_set(dst, 0);
		os_unmap(dst, map);
		return NULL;
	}
	h->addr = dst;
	h->map_bytes = map;
	h->req_bytes = size;
	atomic_fetch_add_explicit(&huge_live_bytes, map - old, memory_order_relaxed);
	atomic_fetch_add_explicit(&huge_mapped_bytes, map - old, memory_order_relaxed);
	return h;
}

void chunk_atfork_prepare(void)
{
	pthread_mutex_lock(&huge_lock);
	pthread_mutex_lock(&base_lock);
	pthread_mutex_lock(&rtree_lock);
}

void chunk_atfork_parent(void)
{
	pthread_mutex_unlock(&rtree_lock);
	pthread_mutex_unlock(&base_lock);
	pthread_mutex_unlock(&huge_lock);
}

/* The child's thread is the one that took the locks in prepare: it
 * unlocks them (re-initialising a locked mutex is undefined, and TSan
 * then reports the child's threads taking it as a double lock). */
void chunk_atfork_child(void)
{
	pthread_mutex_unlock(&rtree_lock);
	pthread_mutex_unlock(&base_lock);
	pthread_mutex_unlock(&huge_lock);
}
