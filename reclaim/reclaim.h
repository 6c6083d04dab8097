/*
 * reclaim.h - giving freed memory back to the kernel.
 *
 * Two halves:
 *
 *  - the backends (backend.c, backend_uring.c, backend_pmadvise.c,
 *    backend_madvise.c): given a batch of page ranges and an advice
 *    (MADV_DONTNEED or MADV_FREE), hand them to the kernel in as few
 *    syscalls as the backend allows. backend.c probes them cheapest
 *    first (vector, madvise, uring: measured by bench/purge_backends.c,
 *    see backend.c) or takes the one EBB_RECLAIM_BACKEND names,
 *    and falls back at run time when one fails with ENOSYS/EINVAL/EPERM/
 *    EOPNOTSUPP (it disables itself and stays disabled). Backends never
 *    allocate with malloc and never take arena locks.
 *
 *  - the policy (thread.c): which dirty ranges to purge and when (decay,
 *    the dirty cap), the reclaim thread itself, malloc_trim and
 *    ebb_reclaim. The queue of dirty ranges is each arena's age-ordered
 *    dirty list (see alloc/arena.c): the reclaim thread takes a batch off
 *    it (the ranges become PURGING, so nothing can hand them out), purges
 *    it with no lock held, and completes it (the ranges become CLEAN).
 *    A dirty range that is wanted again before it is taken is simply
 *    reused: that is the cancellation.
 *
 * Threads: backends are called from the reclaim thread, or from the caller
 * of malloc_trim/ebb_reclaim, or from a freeing thread in EBB_RECLAIM=inline
 * mode; calls are serialised by backend.c's own lock.
 */
#ifndef EBB_RECLAIM_H
#define EBB_RECLAIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include "ebbmalloc.h"	/* EBB_STATS_LAT_BUCKETS, struct ebb_node_purge_stats */

struct ebb_stats;

/* Maximum ranges in one batch (IOV_MAX, the limit of process_madvise). */
#define RECLAIM_BATCH_MAX 1024

enum reclaim_backend_id {
	RECLAIM_BACKEND_AUTO = 0,
	RECLAIM_BACKEND_URING = 1,
	RECLAIM_BACKEND_VECTOR = 2,
	RECLAIM_BACKEND_MADVISE = 3,
	RECLAIM_BACKEND_NONE = 4,	/* everything failed: purging is off */
};

/* Advice values, independent of <sys/mman.h> so policy code needs no
 * kernel headers. */
enum reclaim_advice {
	RECLAIM_DONTNEED = 0,
	RECLAIM_FREE = 1,
};

struct reclaim_backend {
	const char *name;
	/* Probe and set up (may be called again after a fork, in the child).
	 * 0, or -errno when the backend cannot work here. */
	int (*init)(void);
	/* Purge n ranges with advice MADV_DONTNEED or MADV_FREE (backend.c
	 * maps enum reclaim_advice to these). Returns bytes purged, or
	 * -errno (then the batch counts as not purged, though some ranges
	 * may have been). Returns only when the kernel is done with every
	 * range. *syscalls is incremented by the number of syscalls made. */
	ssize_t (*purge)(const struct iovec *v, size_t n, int advice,
			 uint64_t *syscalls);
	/* Release what init set up. */
	void (*fini)(void);
	/* In a fork child: forget state inherited from the parent (an
	 * io_uring ring is never shared with the parent) so that the next
	 * init creates the child's own. */
	void (*atfork_child)(void);
};

extern const struct reclaim_backend reclaim_backend_uring;
extern const struct reclaim_backend reclaim_backend_vector;
extern const struct reclaim_backend reclaim_backend_madvise;

/* backend.c -------------------------------------------------------------- */
/* For a backend's init: purge a touched scratch page with its purge
 * function and check it reads zero. 0 or -errno. */
int  backend_probe(ssize_t (*purge)(const struct iovec *, size_t, int, uint64_t *));
/* Choose the backend (pref: enum reclaim_backend_id). Idempotent; called
 * lazily on the first purge. Returns the id in use. */
int  backend_select(int pref);
/* Purge through the current backend, falling back on failure. Returns
 * bytes purged, or -errno when no backend works (then the ranges are left
 * resident, which is always safe). */
ssize_t backend_purge(const struct iovec *v, size_t n, int advice);
/* The same, also counted in *acct (a node's figures), if not NULL. */
struct purge_acct {
	_Atomic uint64_t batches, syscalls;
	_Atomic uint64_t lat[EBB_STATS_LAT_BUCKETS];
	unsigned last_bucket;	/* the latency bucket of the last batch (its caller's) */
};
ssize_t backend_purge_acct(const struct iovec *v, size_t n, int advice, struct purge_acct *acct);
/* Name of the backend in use ("uring", "vector", "madvise", "none", or
 * "unprobed" before the first purge). */
const char *backend_name(void);
/* Add the backend counters (batches, syscalls, ranges, latency histogram,
 * fallbacks, name) into *st. */
void backend_stats_merge(struct ebb_stats *st);
/* Batches and syscalls of uring, vector, madvise (in that order). */
void backend_stats_by(uint64_t batches[3], uint64_t syscalls[3]);
/* fork handlers. */
void backend_atfork_prepare(void);
void backend_atfork_parent(void);
void backend_atfork_child(void);

/* thread.c --------------------------------------------------------------- */
/* Note that an arena has new dirty memory; wakes the reclaim thread when
 * the dirty cap is crossed, starts it lazily. Called without locks. */
void reclaim_notify(size_t dirty_bytes, size_t active_bytes);
/* Purge dirty memory older than the decay (all of it if force), up to
 * budget bytes (0 = no limit), on the calling thread. Returns bytes
 * purged. */
size_t reclaim_run(int force, size_t budget_bytes);
/* The nodes' purge batches, syscalls and batch latency and the arenas'
 * share of them, into st (consistent with each other). */
void reclaim_purge_stats(struct ebb_stats *st);
/* The dirty cap now, and what the hold adds to it (stats). */
void reclaim_cap_stats(uint64_t *cap_bytes, uint64_t *hold_bytes);
void reclaim_atfork_prepare(void);
void reclaim_atfork_parent(void);
void reclaim_atfork_child(void);
void reclaim_atfork_child_done(void);

#endif /* EBB_RECLAIM_H */
