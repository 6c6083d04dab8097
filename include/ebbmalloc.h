/*
 * ebbmalloc.h - the public API of ebbmalloc.
 *
 * Two ways to use ebbmalloc:
 *
 *  1. Replace the process's malloc (JVM hosts, any program):
 *       LD_PRELOAD=/usr/local/lib/libebbmalloc.so java ...
 *     or link with -lebbmalloc (shared or static, `pkg-config --libs
 *     ebbmalloc`): every malloc/free/... in the process (libc's own
 *     included) goes to ebbmalloc.
 *
 *  2. Use ebbmalloc beside libc's malloc (a daemon that wants ebbmalloc for
 *     its own hot data only): link build/libebbmalloc-ebb.a, which has
 *     everything but the malloc/free aliases, and call the ebb_* functions
 *     below; libc's malloc keeps serving everything else. Memory from one
 *     must never be freed by the other.
 *
 * Every ebb_* function behaves like its glibc namesake (errno, NULL returns,
 * alignment rules); the extra ones are documented here.
 */
#ifndef EBBMALLOC_H
#define EBBMALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EBBMALLOC_VERSION_MAJOR 0
#define EBBMALLOC_VERSION_MINOR 1

/* ---- the malloc family ------------------------------------------------ */
void  *ebb_malloc(size_t size);
void   ebb_free(void *ptr);
void  *ebb_calloc(size_t nmemb, size_t size);
void  *ebb_realloc(void *ptr, size_t size);
void  *ebb_reallocarray(void *ptr, size_t nmemb, size_t size);
int    ebb_posix_memalign(void **out, size_t alignment, size_t size);
void  *ebb_aligned_alloc(size_t alignment, size_t size);
void  *ebb_memalign(size_t alignment, size_t size);
void  *ebb_valloc(size_t size);
void  *ebb_pvalloc(size_t size);
size_t ebb_malloc_usable_size(void *ptr);
/* C23 sized frees: size (and alignment) must be what was requested. */
void   ebb_free_sized(void *ptr, size_t size);
void   ebb_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* ---- reclaim ----------------------------------------------------------- */
/* Purge all dirty (freed but resident) memory now, on the calling thread.
 * Returns 1 if any memory was given back to the kernel, 0 if not.
 * malloc_trim() is this function. */
int    ebb_malloc_trim(size_t pad);

/* Purge up to budget_bytes of dirty memory, oldest first, on the calling
 * thread (for a daemon's idle loop; 0 = no limit). Returns the bytes
 * purged. Works whatever EBB_RECLAIM is set to. */
size_t ebb_reclaim(size_t budget_bytes);

/* The calling thread is about to block for a long time: give back
 * everything it has cached so that memory can be reused and purged. */
void   ebb_thread_idle(void);

/* ---- options ----------------------------------------------------------- */
/* mallctl-style access to the option table (see README "Options").
 * name: an option name without the EBB_ prefix, lower case ("decay_ms").
 * oldp/oldlenp: if oldp != NULL, the current value is written there as a
 *   uint64_t (*oldlenp must be >= 8) or, for "purge", "reclaim",
 *   "reclaim_backend" and "arena_pick", as a NUL-terminated string.
 * newp/newlen: if newp != NULL, the option is set (uint64_t, or a string
 *   for the enumerated options) where a live change makes sense.
 * Returns 0, or -ENOENT (unknown name), -EINVAL (bad value or length),
 * -EPERM (the option cannot be changed while running). */
int    ebb_ctl(const char *name, void *oldp, size_t *oldlenp,
	       const void *newp, size_t newlen);

/* ---- statistics -------------------------------------------------------- */
#define EBB_STATS_VERSION	3	/* 2: per-arena figures, purges by backend and per node;
					 * 3: purges by reason, the dirty cap */
#define EBB_STATS_MAX_NODES	8
#define EBB_STATS_MAX_ARENAS	128	/* EBB_STATS_MAX_NODES x 16 arenas per node */
#define EBB_STATS_LAT_BUCKETS	16	/* purge batch latency, bucket i: < 2^i µs */
#define EBB_STATS_BACKENDS	3	/* by_backend[]: 0 uring, 1 vector, 2 madvise */

struct ebb_node_stats {
	uint64_t allocated_bytes;	/* bytes handed out (class-rounded), incl. cached */
	uint64_t active_bytes;		/* pages in slabs and large runs */
	uint64_t dirty_bytes;		/* free pages still resident, waiting for purge */
	uint64_t purging_bytes;		/* pages whose purge is in flight */
	uint64_t purged_bytes;		/* cumulative bytes given back */
	uint64_t mapped_bytes;		/* address space held in chunks */
	uint64_t chunks;
	uint64_t remote_frees;		/* frees of blocks owned by another node */
};

/* One arena; a node's figures are the sums of its arenas'. */
struct ebb_arena_stats {
	uint32_t node;
	uint32_t threads;		/* threads whose cache belongs to it */
	uint64_t allocated_bytes;
	uint64_t active_bytes;
	uint64_t dirty_bytes;
	uint64_t purging_bytes;
	uint64_t purged_bytes;
	uint64_t mapped_bytes;
	uint64_t chunks;
	uint64_t remote_frees;
	uint64_t xfer_bytes;		/* free blocks in its transfer caches */
	uint64_t cache_flushes;		/* thread-cache flushes handed to it */
	/* Purge batches that carried its ranges (one batch carries every arena
	 * of its node that had dirty memory: the node's batches are at most
	 * the sum of its arenas'), those ranges, and the batches' latency. */
	uint64_t purge_batches;
	uint64_t purge_ranges;
	uint64_t purge_batch_lat[EBB_STATS_LAT_BUCKETS];
};

/* Per node: the reclaim passes purge each node's arenas in batches of
 * their own, so a node's batches, syscalls and batch latency are its own.
 * The idle flush's purge of parked threads' (empty) cache stacks counts
 * in the totals only: the nodes' figures add up to at most the totals. */
struct ebb_node_purge_stats {
	uint64_t batches;
	uint64_t syscalls;
	uint64_t batch_lat[EBB_STATS_LAT_BUCKETS];
	uint64_t cache_flushes;		/* the sum of its arenas' */
};

/* Purges one backend made. A batch one backend failed and the next one
 * finished counts for both, so the batches of by_backend[] add up to at
 * least purge_batches; their syscalls add up to purge_syscalls. */
struct ebb_backend_stats {
	uint64_t batches;
	uint64_t syscalls;
};

struct ebb_stats {
	uint32_t version;		/* EBB_STATS_VERSION */
	uint32_t nnodes;
	uint64_t allocated_bytes;	/* sum over nodes + huge */
	uint64_t active_bytes;
	uint64_t dirty_bytes;
	uint64_t purging_bytes;
	uint64_t purged_bytes;
	uint64_t mapped_bytes;		/* chunks + huge mappings */
	uint64_t huge_bytes;		/* live huge (own mapping) allocations */
	uint64_t huge_count;
	uint64_t tcache_bytes;		/* bytes sitting in thread caches */
	uint64_t chunks;
	uint64_t threads;		/* threads with a live cache */
	uint64_t tcache_flushes;
	uint64_t remote_frees;
	uint64_t purge_batches;
	uint64_t purge_syscalls;
	uint64_t purge_ranges;
	uint64_t purge_batch_lat[EBB_STATS_LAT_BUCKETS];
	uint64_t backend_fallbacks;
	char     backend[16];		/* "uring", "vector", "madvise", "none" */
	struct ebb_node_stats node[EBB_STATS_MAX_NODES];
	/* since version 2 */
	struct ebb_backend_stats by_backend[EBB_STATS_BACKENDS];
	uint32_t narenas;
	uint32_t reserved;
	struct ebb_arena_stats arena[EBB_STATS_MAX_ARENAS];
	struct ebb_node_purge_stats node_purge[EBB_STATS_MAX_NODES];
	/* since version 3: why the arenas' pages were taken for purging
	 * (counted when taken, so the three add up to at least purged_bytes:
	 * what is in flight and what a failed purge left count here too) */
	uint64_t purged_decay_bytes;	/* freed longer than decay_ms ago */
	uint64_t purged_cap_bytes;	/* taken early: dirty memory was over the cap */
	uint64_t purged_forced_bytes;	/* malloc_trim, ebb_reclaim, memory pressure */
	/* the dirty cap now: the reclaim thread purges early above it */
	uint64_t dirty_cap_bytes;
	uint64_t dirty_hold_bytes;	/* what the hold adds to it (EBB_DIRTY_HOLD_MS):
					 * how far active memory fell from its recent peak
					 * beyond the share-of-active cap; 0 when that rules */
};

/* Fill *out with a consistent-enough snapshot (counters are read without
 * stopping the world), at most size bytes of it: pass the sizeof(struct
 * ebb_stats) you were built with, so that a program built against an
 * older header (a smaller struct) gets the fields it knows and nothing is
 * written past them; out->version says which version's fields were
 * filled. Returns 0, or -1 if size is below version 1's struct. */
int    ebb_stats_sized(struct ebb_stats *out, size_t size);
/* ebb_stats(&st): the same with sizeof(st). (A function of that name is
 * also exported, for programs built against version 1 of this header: it
 * fills version 1's fields only.) Looked up at run time with dlsym, use
 * "ebb_stats_sized". */
int    (ebb_stats)(struct ebb_stats *out);
#define ebb_stats(out) ebb_stats_sized((out), sizeof(*(out)))

/* Print the stats to fd: format 0 = text, 1 = JSON. Never allocates. */
void   ebb_stats_print(int fd, int format);

/*
 * Live stats file (EBB_STATS_FILE=path, "%p" becomes the pid). The reclaim
 * thread keeps this layout in a mmapped file, refreshed at most every
 * 100 ms; readers (tools/ebbstat) copy it without locks and retry while
 * seq is odd or changes under them (a seqlock).
 */
#define EBB_STATS_FILE_MAGIC	0x31544154534242ULL	/* "BBSTAT1" */
struct ebb_stats_file {
	uint64_t magic;
	uint64_t seq;			/* odd while being written */
	uint64_t pid;
	uint64_t updated_ns;		/* CLOCK_MONOTONIC */
	struct ebb_stats stats;
};

#ifdef __cplusplus
}
#endif
#endif /* EBBMALLOC_H */
