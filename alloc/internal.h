/*
 * internal.h - shared types, constants and the map of the code.
 *
 * Glossary
 *   page     4 KiB, the unit of runs and of purging ("OS page" is the same
 *            here: ebbmalloc assumes 4 KiB base pages).
 *   chunk    4 MiB of address space aligned to 4 MiB, owned by one arena,
 *            bound to one NUMA node. Its first pages hold the header
 *            (chunk_t): per-page class and run maps, run descriptors, slab
 *            bitmaps. A pointer's chunk is p & ~CHUNK_MASK, and the radix
 *            map (chunk.c) says whether that chunk is ours.
 *   run      a span of pages inside a chunk: FREE (DIRTY, PURGING or
 *            CLEAN), a SLAB of equal small blocks, or one LARGE block.
 *   class    a size class: 1..NSMALL are small (slab) classes up to 32 KiB,
 *            NSMALL+1..NCLASS large (page run) classes up to 2 MiB. Larger
 *            requests are huge: a mapping of their own.
 *   arena    per-NUMA-node allocator state behind one mutex: chunks, free
 *            runs by size, partial slabs by class, the dirty list by age,
 *            and a transfer cache (xfer) per small class: pointers to
 *            blocks flushed by thread caches, for the next refill.
 *   tcache   per-thread cache: a stack (an array of pointers) of free
 *            blocks per class. The fast paths touch only the tcache.
 *   dirty    free pages that may still be resident. The reclaim thread
 *            purges them (PURGING) and they become CLEAN.
 *
 * Flow of memory: os -> chunk (reserve an aligned chunk, bind it to a node)
 * -> arena (carve runs and slabs) -> refill -> tcache -> malloc.c. On free:
 * malloc.c pushes onto the tcache (or, for a block of another node, hands
 * it straight back to its arena) -> tcache flush -> arena (the class's
 * transfer cache while it has room, else the block's slab or run; a slab
 * or run that becomes empty is a DIRTY run, on the age-ordered dirty list)
 * -> reclaim/thread.c takes the oldest dirty runs in batches (PURGING) ->
 * reclaim/backend*.c -> kernel -> arena (CLEAN, coalesced).
 *
 * Locks, in rank order (fork takes them in this order): init_lock,
 * tcache registry, arenas by index, huge_lock, base_lock, rtree_lock,
 * then backend and reclaim (reclaim/). No lock is ever held across a purge
 * syscall; an arena lock is never held while calling into another arena.
 */
#ifndef EBB_INTERNAL_H
#define EBB_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ebbmalloc.h"

/* Everything declared from here on is internal to the library: hidden, so
 * that references need no GOT load (-fvisibility=hidden alone covers
 * definitions, not extern declarations). */
#pragma GCC visibility push(hidden)

#ifndef EBB_DEBUG
#define EBB_DEBUG 0
#endif

#define ebb_likely(x)	__builtin_expect(!!(x), 1)
#define ebb_unlikely(x)	__builtin_expect(!!(x), 0)
#define EBB_NOINLINE	__attribute__((noinline))
#define EBB_INLINE	static inline __attribute__((always_inline))
#define EBB_EXPORT	__attribute__((visibility("default")))
#define EBB_COLD	__attribute__((cold, noinline))

/* ---- assertions (STYLE.md) ---------------------------------------------- */
EBB_COLD __attribute__((noreturn))
void ebb_assert_fail(const char *expr, const char *file, int line);
#define ebb_assert_at(lvl, e) \
	do { if (EBB_DEBUG >= (lvl) && ebb_unlikely(!(e))) \
		ebb_assert_fail(#e, __FILE__, __LINE__); } while (0)
#define ebb_assert(e)		ebb_assert_at(1, e)	/* API misuse */
#define ebb_assert_internal(e)	ebb_assert_at(2, e)	/* our invariants */
#define ebb_assert_expensive(e)	ebb_assert_at(3, e)	/* walkers */
/* Always on: trusting corrupt metadata turns a bug into heap corruption. */
#define ebb_check(e) \
	do { if (ebb_unlikely(!(e))) ebb_assert_fail(#e, __FILE__, __LINE__); } while (0)

/* ---- geometry ------------------------------------------------------------ */
#define LG_PAGE		12
#define PAGE_SIZE	((size_t)1 << LG_PAGE)
#define PAGE_MASK	(PAGE_SIZE - 1)
#define LG_CHUNK	22
#define CHUNK_SIZE	((size_t)1 << LG_CHUNK)
#define CHUNK_MASK	(CHUNK_SIZE - 1)
#define CHUNK_PAGES	(CHUNK_SIZE >> LG_PAGE)
#define LG_VADDR	47	/* user address space we index */

#define NSMALL		72	/* classes 1..72: 16 B .. 32 KiB */
#define NCLASS		120	/* classes 73..120: 36 KiB .. 2 MiB */
#define SMALL_MAX	((size_t)32768)
#define SMALL_LIM	(SMALL_MAX + 1)	/* malloc's fast path serves sizes below it */
#define LARGE_MAX	((size_t)2 << 20)
#define MIN_ALIGN	16
#define SLAB_MAX_PAGES	32
#define BITS_PER_PAGE	(PAGE_SIZE / MIN_ALIGN)	/* bitmap bits reserved per page */

#define EBB_MAX_NODES		EBB_STATS_MAX_NODES
#define EBB_MAX_ARENAS_PER_NODE	16
#define EBB_MAX_CPUS		1024

#define ALIGN_UP(x, a)	(((x) + ((a) - 1)) & ~((a) - 1))

/* ---- size classes (sizeclass.c) ------------------------------------------- */
struct class_info {
	uint32_t size;		/* block size in bytes */
	uint32_t slab_pages;	/* small: pages per slab; large: pages per block */
	uint32_t slab_objs;	/* small: blocks per slab */
	uint32_t recip;		/* ceil(2^32 / size): offset -> index */
	uint64_t divmagic;	/* UINT64_MAX / size + 1: divisibility test; 0 for class 0 */
};
extern struct class_info sizeclass_info[NCLASS + 1];
/* The free fast path's block-start test, one 16-byte entry per class:
 * divmagic as in class_info, span = bytes from a slab's first block to its
 * last block's end (size for a large class). */
struct cls_check {
	uint64_t divmagic;
	uint64_t span;
};
extern struct cls_check sizeclass_check[NCLASS + 1];
/* (size + 15) >> 4 -> class * sizeof(tbin_t), every small size (<= 32 KiB,
 * 4 KiB of table): the malloc fast path's one lookup */
#define SIZECLASS_BIN_OFF_N ((SMALL_MAX >> 4) + 1)
extern uint16_t sizeclass_bin_off[SIZECLASS_BIN_OFF_N];
extern const uint8_t sizeclass_small_tab[65];	/* (size + 15) >> 4 -> class, size <= 1024 */

void sizeclass_init(void);
unsigned sizeclass_of_slow(size_t size);	/* any size <= LARGE_MAX */

/* size <= LARGE_MAX */
EBB_INLINE unsigned sizeclass_of(size_t size)
{
	if (ebb_likely(size <= 1024))
		return sizeclass_small_tab[(size + 15) >> 4];
	return sizeclass_of_slow(size);
}
EBB_INLINE size_t sizeclass_size(unsigned cls) { return sizeclass_info[cls].size; }
/* Is off (from the first block of p's slab or run: chunk offset minus
 * page_off) a block start of class cls? Below the span, so not the
 * slab's tail waste, where one more multiple of the size can fall (a
 * pointer one past the last block would be cached, handed out and
 * written past the slab); and a multiple of the size. Never for class 0. */
/* The same, with the class given as cls * 16: the free fast path indexes
 * the thread cache's bins (16 bytes each too) with the same offset */
EBB_INLINE int sizeclass_is_block_at(size_t cls16, size_t off)
{
	const struct cls_check *k = (const struct cls_check *)((const char *)sizeclass_check + cls16);
	return off < k->span && (uint64_t)off * k->divmagic < k->divmagic;
}
EBB_INLINE int sizeclass_is_block_cls(unsigned cls, size_t off)
{
	return sizeclass_is_block_at((size_t)cls * sizeof(struct cls_check), off);
}

/* ---- runs and chunks (chunk.c) -------------------------------------------- */
enum run_kind { RUN_HDR = 1, RUN_FREE, RUN_SLAB, RUN_LARGE };
enum run_state { ST_ACTIVE = 0, ST_DIRTY, ST_PURGING, ST_CLEAN };

typedef struct run run_t;
struct run {
	uint16_t npages;
	uint8_t  kind;		/* enum run_kind */
	uint8_t  state;		/* enum run_state */
	uint8_t  cls;		/* SLAB/LARGE: class */
	uint8_t  on_list;	/* SLAB: on the partial list */
	uint16_t nfree;		/* SLAB: free blocks */
	uint16_t hint;		/* SLAB: first bitmap word that may hold a free bit */
	uint8_t  scanned;	/* SLAB: no free into it since its pages were last looked at */
	uint8_t  pad0;
	uint32_t resident;	/* SLAB: pages (bit i = page i) a block was handed out on since
				 * the page was last purged: the ones worth purging */
	run_t   *prev, *next;	/* FREE: size-bin list; SLAB: partial list */
	run_t   *age_prev, *age_next;	/* FREE+DIRTY: the arena's dirty list */
	uint64_t dirty_ns;	/* FREE+DIRTY: when it became dirty; SLAB: last free into it */
};

enum chunk_kind { CHUNK_NORMAL = 1, CHUNK_HUGE = 2 };
#define CHUNK_MAGIC 0x65626243484e4b31ULL

typedef struct arena arena_t;
typedef struct chunk chunk_t;
struct chunk {
	uint64_t magic;
	arena_t *arena;
	uint32_t node;		/* read by the free fast path */
	uint32_t hdr_pages;
	chunk_t *next;		/* arena's chunk list */
	uint8_t  page_cls[CHUNK_PAGES];	/* class of blocks starting in the page; 0 = none */
	uint16_t page_run[CHUNK_PAGES];	/* first page of the run holding the page */
	uint32_t page_off[CHUNK_PAGES];	/* page_run << LG_PAGE where page_cls != 0 (fast path) */
	run_t    runs[CHUNK_PAGES];	/* descriptor at each run's first page */
	uint64_t bitmap[CHUNK_PAGES * BITS_PER_PAGE / 64];	/* slab blocks: 1 = in use */
};
#define CHUNK_HDR_PAGES ((sizeof(chunk_t) + PAGE_SIZE - 1) / PAGE_SIZE)

/* A huge allocation: its own mapping, aligned to CHUNK_SIZE, described by a
 * huge_t from the metadata allocator. */
typedef struct huge {
	void    *addr;		/* == the pointer handed out */
	size_t   map_bytes;	/* mapping length (page multiple) */
	size_t   req_bytes;	/* requested size */
	struct huge *next_free;
} huge_t;

EBB_INLINE chunk_t *chunk_of(const void *p)
{
	return (chunk_t *)((uintptr_t)p & ~(uintptr_t)CHUNK_MASK);
}
EBB_INLINE size_t chunk_page_of(const chunk_t *c, const void *p)
{
	return ((uintptr_t)p - (uintptr_t)c) >> LG_PAGE;
}
/* Is p, in page pg of chunk c whose page_cls[pg] is cls (not 0), a block
 * start? Its offset from the first block of its slab or large run
 * (page_off) must pass sizeclass_is_block_cls. The free fast path makes
 * the same test inline, on offsets it has already computed. */
EBB_INLINE int chunk_is_block_start(const chunk_t *c, size_t pg, unsigned cls, const void *p)
{
	return sizeclass_is_block_cls(cls, ((uintptr_t)p & CHUNK_MASK) - c->page_off[pg]);
}
EBB_INLINE void *chunk_page_addr(chunk_t *c, size_t page)
{
	return (char *)c + (page << LG_PAGE);
}
EBB_INLINE size_t run_page(const run_t *r)
{
	return (size_t)(r - chunk_of(r)->runs);
}
EBB_INLINE void *run_addr(run_t *r)
{
	return chunk_page_addr(chunk_of(r), run_page(r));
}

/* The radix map: one entry per 4 MiB slot of the address space.
 * 0 = not ours; (chunk | 1) = a normal chunk; (huge_t *) = a huge block
 * starting in that slot. Leaves are created on demand, never freed. */
#define RTREE_LEAF_BITS	14
#define RTREE_TOP_BITS	(LG_VADDR - LG_CHUNK - RTREE_LEAF_BITS)
extern _Atomic(uintptr_t *) rtree_top[1u << RTREE_TOP_BITS];	/* never NULL: rtree_zero_leaf */
extern uintptr_t rtree_zero_leaf[1u << RTREE_LEAF_BITS];

EBB_INLINE uintptr_t rtree_get(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (ebb_unlikely(a >> LG_VADDR))
		return 0;
	uintptr_t slot = a >> LG_CHUNK;
	uintptr_t *leaf = atomic_load_explicit(&rtree_top[slot >> RTREE_LEAF_BITS],
					       memory_order_acquire);
	return atomic_load_explicit((_Atomic uintptr_t *)&leaf[slot & ((1u << RTREE_LEAF_BITS) - 1)],
				    memory_order_acquire);
}
int  rtree_set(const void *p, uintptr_t v);	/* 0 or -ENOMEM */

/* The fast path's map: one byte per 4 MiB slot, node + 1 where a normal
 * chunk is (0 again once an empty chunk is unmapped), compared with the thread's
 * node_tag: one compare says "ours, and of this node". 32 MiB of .bss, of which only the pages
 * covering slots in use are ever written; reading an unwritten page maps
 * the shared zero page. */
extern uint8_t chunk_map[1u << (LG_VADDR - LG_CHUNK)];
#define MAP_LIMIT ((uintptr_t)sizeof(chunk_map))	/* the free fast path's bound (tcache) */

chunk_t *chunk_new(arena_t *a);			/* mapped, bound, registered */
void     chunk_release(chunk_t *c);		/* unregistered, unmapped */
void    *base_alloc(size_t bytes);		/* metadata: zeroed, never freed */
huge_t  *huge_alloc(size_t size, size_t align, int *zeroed);	/* *zeroed: fresh zero pages */
size_t   huge_cache_trim(uint64_t now_ns, uint64_t decay_ns, int force);
void     huge_free(huge_t *h);
int      huge_cache_holds(const void *p);	/* freed, waiting in the huge cache */
huge_t  *huge_realloc(huge_t *h, size_t size);	/* NULL: could not (h intact) */
void     chunk_atfork_prepare(void);
void     chunk_atfork_parent(void);
void     chunk_atfork_child(void);
extern _Atomic size_t huge_live_bytes, huge_live_count, huge_mapped_bytes;

/* ---- arenas (arena.c) ------------------------------------------------------ */
#define NPBINS 72	/* free-run size bins (pages) */

/* An arena's transfer cache for one small class: blocks thread caches
 * flushed, handed to the next refill as they are (pointers copied, no
 * slab bitmap touched), under a lock of its own, so that a flush and a
 * refill that meet here never take the arena's lock. The blocks' slab bits
 * stay set and alloc_bytes still counts them (stats subtract them). */
#define XFER_SLOTS	1024
#define XFER_BYTES	((size_t)128 << 10)	/* at most this much per class */
struct xfer {
	pthread_mutex_t mu;	/* inside the arena's lock when both are held */
	uint16_t n, cap;	/* cap: min(XFER_SLOTS, XFER_BYTES / size) */
	uint8_t  used;		/* put or taken since the reclaim pass last looked */
	void   **blk;		/* XFER_SLOTS slots (metadata), set at the class's
				 * first flush: arena_init maps nothing, and only
				 * the classes in use touch theirs; NULL: none yet */
};

/* Why arena_purge_take took a page (stats; an old page counts as decay
 * whatever else asked for it). */
enum { PURGE_DECAY, PURGE_CAP, PURGE_FORCED, PURGE_REASONS };

struct arena {
	pthread_mutex_t lock;
	/* one thread at a time maps a new chunk (taken without lock held,
	 * before it); chunk_gen counts the chunks added, under lock */
	pthread_mutex_t grow_lock;
	uint64_t chunk_gen;
	unsigned node, index;		/* index: global, 0.. */
	run_t   *partial[NSMALL + 1];	/* slabs with free blocks */
	run_t   *free_bins[2][NPBINS];	/* FREE runs: [0] DIRTY, [1] CLEAN */
	uint64_t bin_mask[2][2];	/* non-empty bins */
	run_t   *dirty_head, *dirty_tail;	/* DIRTY runs, oldest first */
	chunk_t *chunks;
	/* stats, in pages or bytes, under lock */
	size_t   active_pages, dirty_pages, purging_pages;
	size_t   nchunks;
	uint64_t purged_bytes;
	uint64_t purge_taken[PURGE_REASONS];	/* pages taken for purging, by reason */
	uint64_t alloc_bytes;		/* blocks out of slabs/runs (incl. cached and xfer) */
	_Atomic uint64_t remote_frees;	/* blocks freed by threads of other nodes */
	_Atomic uint64_t cache_flushes;	/* thread-cache flushes handed to it */
	/* purge batches that carried its ranges (a batch carries every arena
	 * of a node that had some), those ranges, and the batches' latency */
	_Atomic uint64_t purge_batches, purge_ranges;
	_Atomic uint64_t purge_lat[EBB_STATS_LAT_BUCKETS];
	_Atomic unsigned nthreads;	/* caches using this arena */
	void *_Atomic remote_head;	/* blocks freed while the lock was taken (a stack) */
	uint64_t xfer_pass_ns;		/* the reclaim pass that last drained them */
	struct xfer xfer[NSMALL + 1];
};

extern arena_t *arenas[EBB_MAX_NODES * EBB_MAX_ARENAS_PER_NODE];
extern unsigned narenas, arenas_per_node, nnodes;
extern _Atomic size_t dirty_total_pages, active_total_pages;
/* The highest active_total_pages since the reclaim policy last reset it
 * (reclaim/thread.c: the hold window). */
extern _Atomic size_t active_peak_pages;

int      arena_init(arena_t *a, unsigned node, unsigned index);
arena_t *arena_pick(unsigned node, unsigned seed);
arena_t *arena_pick_for_thread(unsigned node, unsigned seed);	/* counts the thread in */
void     arena_thread_leave(arena_t *a);
/* Small: fill out[] with up to n blocks of cls; returns how many (0: OOM). */
unsigned arena_alloc_small(arena_t *a, unsigned cls, void **out, unsigned n);
/* Large: one run of the class's pages (aligned to align if > PAGE_SIZE). */
void    *arena_alloc_large(arena_t *a, unsigned cls, size_t align);
int      arena_grow_large(arena_t *a, void *p, unsigned new_cls);	/* in place: 1 or 0 */
/* Return n blocks, all of chunks owned by arena a (caller groups them). */
void     arena_dalloc_batch(arena_t *a, void **blocks, unsigned n);
/* Reclaim: take up to max of the oldest dirty runs (all if force; else those
 * older than decay_ns, or beyond the dirty cap), mark them PURGING. */
unsigned arena_purge_take(arena_t *a, uint64_t now_ns, uint64_t decay_ns,
			  size_t excess_pages, int force, struct iovec *out,
			  unsigned max);
void     arena_purge_done(arena_t *a, const struct iovec *v, unsigned n,
			  int purged);
size_t   arena_dirty_pages(arena_t *a);	/* under its lock */
int      arena_is_valid(arena_t *a);	/* invariant walker (EBB_DEBUG 3) */
/* Is p a live block start of class cls (slab bit set; page runs: the LARGE
 * run starts at p)? Takes the owning arena's lock (walkers only). */
int      arena_block_is_live(const void *p, unsigned cls);
void     arena_release_empty(arena_t *a);	/* unmap wholly free chunks */
/* Return the transfer caches' blocks to their slabs: all, or (unused_only)
 * those of classes nobody put or took since the last call. Caller holds
 * a->lock. Returns 1 if a run was released. */
int      arena_xfer_drain_locked(arena_t *a, int unused_only, uint64_t now);
/* Bytes waiting in a's transfer caches (takes their locks). */
uint64_t arena_xfer_bytes(arena_t *a);
/* Return n blocks of class cls (all of arena a; a thread cache's flush):
 * to the transfer cache while it has room, the rest to their slabs. */
void     arena_dalloc_cached(arena_t *a, unsigned cls, void **blocks, unsigned n);
/* Return the blocks other threads pushed while the lock was taken (caller
 * holds a->lock). Returns 1 if a run was released. */
int      arena_remote_drain_locked(arena_t *a, uint64_t *now_ns);
void     arena_atfork_prepare(void);
void     arena_atfork_parent(void);
void     arena_atfork_child(void);
/* Diagnose a block handed to free()/realloc(): aborts with a message if it
 * is not a live block start. */
void     arena_check_block(const void *p, const char *fn);

/* ---- thread caches (tcache.c) -------------------------------------------- */
enum tcache_state { TC_UNINIT = 0, TC_ACTIVE, TC_BUSY, TC_DEAD };

typedef struct tbin {	/* 16 bytes: the fast paths index bins with a shift */
	void   **top;		/* one past the newest cached block: the stack
				 * is top[-count..-1], newest on top */
	uint16_t lo_empty;	/* low 16 bits of top when the bin is empty */
	uint16_t lo_full;	/* ... and when it holds max blocks (<= 256):
				 * a stack spans < 64 KiB, so comparing low
				 * bits is exact, and count and max follow */
	uint8_t  low;		/* low-water mark since the last GC tick (saturates) */
	uint8_t  waste_ticks;	/* consecutive GC ticks with unused blocks */
	uint16_t batch;		/* refill batch */
} tbin_t;
_Static_assert(sizeof(tbin_t) == 16 && sizeof(struct cls_check) == 16,
	       "free indexes the bins and the block-start table with one offset");
#define TBIN_LO(p) ((uint16_t)(uintptr_t)(p))
EBB_INLINE unsigned tbin_count(const tbin_t *b)
{
	return (uint16_t)(TBIN_LO(b->top) - b->lo_empty) / sizeof(void *);
}
EBB_INLINE unsigned tbin_max(const tbin_t *b)
{
	return (uint16_t)(b->lo_full - b->lo_empty) / sizeof(void *);
}
/* (no arithmetic on a null top: a bin without a stack is empty and full) */
EBB_INLINE void **tbin_base(const tbin_t *b)
{
	unsigned n = tbin_count(b);
	return n ? b->top - n : b->top;
}
EBB_INLINE void tbin_place(tbin_t *b, void **base, unsigned count, unsigned max)
{
	b->top = count ? base + count : base;
	b->lo_empty = TBIN_LO(base);
	b->lo_full = (uint16_t)(TBIN_LO(base) + max * sizeof(void *));
}

typedef struct tcache tcache_t;
#define TCACHE_REMOTE_MAX 32	/* other nodes' blocks of a class sent home together */
struct tcache {
	tbin_t  *bins;		/* [NCLASS + 1], at the start of the slot region
				 * (tcache_zero_bins before set-up and after exit) */
	uint32_t node;
	uint32_t state;		/* enum tcache_state */
	arena_t *arena;
	size_t   bound_bytes;	/* sum of bins' max * size: <= tcache_max_bytes */
	uint64_t slow_events;
	uint64_t last_budget_scan;	/* slow_events at the last budget_reclaim */
	_Atomic uint64_t cached_pub;	/* cached bytes, published on slow paths for stats */
	uint32_t gc_bin;	/* next bin the incremental GC looks at */
	_Atomic uint64_t activity;	/* slow paths taken: the owner bumps it, the idle scan watches it */
	/* the idle scan's (registry lock): activity when it last changed, and when */
	uint64_t seen_activity, seen_ns;
	uint32_t gate;			/* holders' nesting count | GATE_STEAL (slow paths, exit, idle) */
	uint32_t node_tag;		/* node + 1 while ACTIVE, else NODE_TAG_NONE (vs chunk_map) */
	uintptr_t key;			/* == tcache_key, next to the bins */
	/* the fast paths' side of the idle-flush handshake (tcache.c) */
	uint32_t busy;			/* 1 while a fast path runs (the owner's plain stores) */
	uintptr_t small_lim;		/* SMALL_LIM; 0 before tcache_init and while a steal is on */
	uintptr_t map_limit;		/* MAP_LIMIT; the same (the reclaim thread's once registered) */
	_Atomic uint32_t steal_active;	/* the reclaim thread is in a steal round */
	_Atomic uint32_t idle_flushed;	/* flushed while idle; cleared by the owner */
	uint32_t scan_mark;		/* reclaim thread's scratch (under the registry lock) */
	_Atomic uint32_t bins_lost;	/* an idle flush purged the slot region, bins
					 * and all (zeros: empty and full); the owner's
					 * next slow path lays them out again */
	_Atomic uint32_t relayout;	/* the owner is moving its bins' stacks (fork's child skips it) */
	uint8_t  nremote[NSMALL + 1];	/* per small class: blocks of other nodes freed
					 * here, waiting to go home (stacks in the slot
					 * region, after the bins') */
	void   **slots;			/* the bins' stacks, packed in class order */
	tcache_t *reg_prev, *reg_next;	/* registry of live caches */
};
/* Every thread's static TLS holds its tcache_t: the words the fast paths
 * test (busy, the bounds, the node tag, the key) and a pointer to the bins,
 * which lie at the start of the thread's slot region (tcache.c). So the
 * TLS block is small enough for the room glibc keeps for libraries loaded
 * by dlopen() (it was 2176 bytes with the bins in it, and dlopen() failed),
 * the fast paths load the bins' address where they added the thread
 * pointer to the block's offset (one instruction less), and a parked
 * thread's bins are purged with its stacks (bench/results/tls-pointer.md). */
_Static_assert(sizeof(tcache_t) <= 320, "the thread cache's TLS part grew: it must fit glibc's spare static TLS (dlopen)");
extern __thread tcache_t ebb_tcache __attribute__((tls_model("initial-exec")));
extern uintptr_t tcache_key;		/* stamped in freed cached blocks */
extern const tbin_t tcache_zero_bins[NCLASS + 1];	/* empty and full: every call takes the slow path */
extern const int ebb_build_free_reads_block;	/* alloc/fastpath.h: 0 in the fastfree build */

/* The fastfree build (alloc/fastpath.h): a stack slot of a block from a
 * refill is tagged with bit 0; a block freed into a cache has the key in
 * its first word and not in its second (which marks a block in an arena). */
#define SLOT_FRESH ((uintptr_t)1)
EBB_INLINE void *slot_block(const void *slot)
{
	return (void *)((uintptr_t)slot & ~SLOT_FRESH);
}
EBB_INLINE int block_freed_here(const void *p, uintptr_t key)
{
	return ebb_likely(((const uintptr_t *)p)[0] == key) && ebb_likely(((const uintptr_t *)p)[1] != key);
}
/* ... and one that is not: a second free (or a write after free), found
 * by `by`. One line, then abort. */
EBB_COLD __attribute__((noreturn)) void tcache_fatal_second_free(const void *p, const char *by);

EBB_INLINE tcache_t *tcache_self(void) { return &ebb_tcache; }

/* The idle-flush handshake (tcache.c "idle caches"). A fast path stores
 * busy = 1 on entry and the value it found on exit (a call nested in a
 * signal handler leaves it 1); it sees a steal in compares it makes
 * anyway, small_lim and map_limit, which the reclaim thread sets to 0
 * (both are tested with <, so that 0 stops every size and index: malloc(0)
 * too).
 * Everything else that uses the cache (the slow paths, thread exit,
 * ebb_thread_idle) adds 1 to its gate and waits if the result is
 * negative (the reclaim thread set GATE_STEAL), and subtracts 1 when
 * done. All of these are plain (unlocked) instructions; the reclaim
 * thread's membarrier supplies the ordering. Under TSan they are atomic,
 * so TSan checks the protocol instead of reporting the deliberate plain
 * accesses. */
#define GATE_STEAL 0x80000000u
/* No chunk_map byte (0 = not ours, node + 1 = a chunk) equals it. The TLS
 * cache starts with it (an initialised .tdata image): a zero tag would
 * match the map's "not ours" and send foreign pointers down the fast path. */
#define NODE_TAG_NONE 0x100u
#define ebb_compiler_barrier() __asm__ __volatile__("" ::: "memory")
void tcache_wait_steal(tcache_t *tc);
/* clang names TSan with __has_feature, GCC with __SANITIZE_THREAD__ */
#if !defined(EBB_TSAN) && defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EBB_TSAN 1
#endif
#endif
#if !defined(EBB_TSAN) && defined(__SANITIZE_THREAD__)
#define EBB_TSAN 1
#endif
#if defined(EBB_TSAN) || !defined(__x86_64__)
EBB_INLINE int tcache_enter_fast(tcache_t *tc)
{
	return (int32_t)__atomic_add_fetch(&tc->gate, 1, __ATOMIC_SEQ_CST) < 0;
}
EBB_INLINE void tcache_exit(tcache_t *tc)
{
	__atomic_sub_fetch(&tc->gate, 1, __ATOMIC_SEQ_CST);
}
EBB_INLINE uint32_t tcache_fast_enter(tcache_t *tc)
{
	return __atomic_exchange_n(&tc->busy, 1, __ATOMIC_SEQ_CST);
}
EBB_INLINE void tcache_fast_exit(tcache_t *tc, uint32_t busy)
{
	__atomic_store_n(&tc->busy, busy, __ATOMIC_SEQ_CST);
}
EBB_INLINE int tcache_size_ok(const tcache_t *tc, size_t size)
{
	return size < __atomic_load_n(&tc->small_lim, __ATOMIC_SEQ_CST);
}
EBB_INLINE int tcache_map_index_ok(const tcache_t *tc, uintptr_t i)
{
	return i < __atomic_load_n(&tc->map_limit, __ATOMIC_SEQ_CST);
}
#else
/* The gate's entry, for tcache_enter only (the fast paths mark themselves
 * with busy instead). Returns nonzero when the reclaim thread has asked to
 * flush the cache: the caller must call tcache_wait_steal before touching
 * it. */
EBB_INLINE int tcache_enter_fast(tcache_t *tc)
{
	/* the operand is an input with a "memory" clobber: asm goto with
	 * outputs miscompiles at -O1 on GCC 12 (a dangling local label) */
	__asm__ goto("addl $1, %0\n\tjs %l[steal]" : : "m"(tc->gate) : "memory", "cc" : steal);
	return 0;
steal:
	return 1;
}
EBB_INLINE void tcache_exit(tcache_t *tc)
{
	__asm__ __volatile__("subl $1, %0" : "+m"(tc->gate) : : "memory", "cc");
}
/* Returns the value to give tcache_fast_exit. The store comes before the
 * fast path's reads of small_lim or map_limit in program order (the
 * "memory" clobber keeps the compiler from moving them above it). */
EBB_INLINE uint32_t tcache_fast_enter(tcache_t *tc)
{
	uint32_t busy = tc->busy;
	__asm__ __volatile__("movl $1, %0" : "=m"(tc->busy) : : "memory");
	return busy;
}
EBB_INLINE void tcache_fast_exit(tcache_t *tc, uint32_t busy)
{
	__asm__ __volatile__("movl %1, %0" : "=m"(tc->busy) : "r"(busy) : "memory");
}
/* The bounds, each one compare with a memory operand: as the compare is
 * an asm with a "memory" clobber, nothing the fast path reads of the
 * cache is read before the bound that says no steal is on (a plain C
 * load would let the compiler read the bins first; an atomic acquire
 * load costs a separate move). */
EBB_INLINE int tcache_size_ok(const tcache_t *tc, size_t size)
{
	__asm__ goto("cmpq %0, %1\n\tjae %l[no]" : : "m"(tc->small_lim), "r"(size) : "memory", "cc" : no);
	return 1;
no:
	return 0;
}
EBB_INLINE int tcache_map_index_ok(const tcache_t *tc, uintptr_t i)
{
	__asm__ goto("cmpq %0, %1\n\tjae %l[no]" : : "m"(tc->map_limit), "r"(i) : "memory", "cc" : no);
	return 1;
no:
	return 0;
}
#endif
/* free's first test: p is in a chunk of this thread's node (the map's byte
 * is the node_tag), and no steal is on */
EBB_INLINE int tcache_owns_fast(const tcache_t *tc, const void *p)
{
	uintptr_t i = (uintptr_t)p >> LG_CHUNK;
	return tcache_map_index_ok(tc, i) && chunk_map[i] == tc->node_tag;
}
EBB_INLINE void tcache_enter(tcache_t *tc)
{
	if (ebb_unlikely(tcache_enter_fast(tc)))
		tcache_wait_steal(tc);
}
void tcache_idle_scan(uint64_t now_ns);
int  tcache_idle_protocol_init(void);
int      tcache_init(tcache_t *tc);
void     tcache_flush_bin(tcache_t *tc, unsigned cls, unsigned keep);
void     tcache_flush_all(tcache_t *tc);
void     tcache_flush_remote(tcache_t *tc);	/* other nodes' blocks, home */
void     tcache_remote_push(tcache_t *tc, unsigned cls, void *p);
int      tcache_remote_contains(const tcache_t *tc, unsigned cls, const void *p);
void     tcache_gc_tick(tcache_t *tc);
void     tcache_bin_dry(tcache_t *tc, unsigned cls);	/* refill found the bin empty */
void     tcache_bin_overflow(tcache_t *tc, unsigned cls);	/* a free found it full */
size_t   tcache_cached_bytes(const tcache_t *tc);
/* Invariant walker (EBB_DEBUG 3). Only the owning thread, inside its gate
 * (tcache_enter/tcache_exit), may call it: the reclaim thread may be
 * flushing an idle cache otherwise. */
int      tcache_is_valid(const tcache_t *tc);
extern _Atomic uint64_t tcache_flush_count;
void     tcache_set_node(tcache_t *tc, unsigned node);
void     tcache_bins_relay(tcache_t *tc);	/* after bins_lost */
size_t   tcache_stats_bytes(uint64_t *nthreads);
void     tcache_atfork_prepare(void);
void     tcache_atfork_parent(void);
void     tcache_atfork_child(void);
/* Return blocks of class cls (any arena, any node) to their owning arenas. */
void     tcache_return_blocks(unsigned cls, void **blocks, unsigned n);

/* ---- slow paths (refill.c) ---------------------------------------------- */
/* Called from the fast paths (busy set); they take the gate, and give busy back. */
void    *refill_malloc_slow(size_t size, uint32_t busy);	/* busy: tcache_fast_enter's */
void     refill_free_slow(void *p, uint32_t busy);
void    *refill_aligned(size_t align, size_t size);
void    *refill_calloc_huge(size_t size);
void    *refill_realloc(void *p, size_t size);
size_t   refill_usable_size(const void *p);
/* EBB_DEBUG >= 1: free_sized's size fits the block, free_aligned_sized's
 * pointer has the alignment it names; else a one-line message and abort. */
void     refill_check_sized(const char *fn, const void *p, size_t align, size_t size);
int      ebb_init_slow(void);
extern _Atomic int ebb_inited;
void     reclaim_ensure_thread(void);
/* A free asked for the reclaim thread while returning blocks (it cannot
 * start it there: pthread_create mallocs). The slow paths call
 * reclaim_start_pending on entry, before they touch a bin. */
extern _Atomic int reclaim_start_wanted;
void     reclaim_start_pending(void);

/* ---- options (options.c + options.def) ---------------------------------- */
enum opt_id {
#define EBB_OPTION(name, type, def, min, max, live, values, doc) OPT_##name,
#include "options.def"
#undef EBB_OPTION
	OPT_COUNT
};
extern _Atomic int64_t opt_values[OPT_COUNT];
extern char opt_stats_file[256];
EBB_INLINE int64_t opt(enum opt_id id)
{
	return atomic_load_explicit(&opt_values[id], memory_order_relaxed);
}
void options_init(void);
void options_print(void);
/* enumerated option values */
enum { PURGE_DONTNEED = 0, PURGE_FREE = 1 };
enum { RECLAIM_THREAD = 0, RECLAIM_INLINE = 1, RECLAIM_OFF = 2 };

/* ---- stats (stats.c) ----------------------------------------------------- */
void stats_collect(struct ebb_stats *st);
struct ebb_stats *stats_snapshot(void);	/* mapped: free with stats_snapshot_free */
void stats_snapshot_free(struct ebb_stats *st);
void stats_at_exit_arm(void);		/* print at exit while stats=1 (once) */
void stats_file_refresh(void);		/* reclaim thread: keep EBB_STATS_FILE fresh */
void stats_file_atfork_child(void);

/* ---- messages ------------------------------------------------------------ */
/* printf-like subset: %s %d %u %zu %lu %llu %x %p %%. Never allocates. */
void ebb_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
EBB_COLD __attribute__((noreturn)) void ebb_fatal_ptr(const char *fn, const char *what, const void *p);
int  ebb_snprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- numa/ --------------------------------------------------------------- */
void     topo_init(void);
unsigned topo_nnodes(void);
unsigned topo_node_of_cpu(unsigned cpu);
unsigned topo_rank_of_cpu(unsigned cpu);	/* index among its node's CPUs */
unsigned topo_cpus_of_node(unsigned node);
int      topo_node_is_real(unsigned node);	/* 0 for fake nodes */
unsigned topo_kernel_node(unsigned node);
const char *topo_describe(void);
int      bind_range(void *addr, size_t len, unsigned node);	/* 0 or -errno */

#pragma GCC visibility pop
#endif /* EBB_INTERNAL_H */
