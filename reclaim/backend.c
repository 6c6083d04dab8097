/*
 * backend.c - choosing a reclaim backend, falling back when it fails, and
 * counting what the backends do.
 *
 * backend_select() probes the backends in backend_probe_order (cheapest
 * first, as measured by bench/purge_backends.c) or the one the caller
 * prefers followed by the others in that order; the first whose init()
 * succeeds is used. backend_purge() hands a batch to it; when it fails with
 * ENOSYS, EPERM, EOPNOTSUPP or EINVAL the same batch is retried on the next
 * backend in the order. A backend is disabled for good (and a fallback is
 * counted, and with EBB_VERBOSE=1 one line is written to stderr) when
 *  - its init fails, or
 *  - it fails with ENOSYS/EPERM/EOPNOTSUPP (the environment refuses it), or
 *  - it fails with EINVAL and a later backend succeeds on the same batch
 *    (so the batch was fine and the backend is what is broken).
 * If every backend fails the batch with EINVAL, the batch itself is bad:
 * nothing is disabled and -EINVAL goes back to the caller, who leaves the
 * ranges resident (always safe). When every backend is disabled the
 * current backend is "none" and purging is off.
 *
 * One mutex serialises purges (the backends keep one ring / one pidfd and
 * are not reentrant) and guards the choice. Counters are atomics written
 * under the lock and read without it by backend_stats_merge().
 *
 * fork: prepare takes the lock so no purge is in flight, parent releases
 * it, child re-initialises it and makes every backend forget what it
 * inherited (the parent's io_uring ring, the parent's pidfd); each
 * backend's init runs again, lazily, at the child's first purge. A child
 * made by a raw clone() that skips the atfork handlers is caught by a pid
 * check at each purge.
 *
 * Runs inside the allocator: no malloc, no stdio. Messages go through
 * ebb_message (alloc/message.c: a stack buffer and one write(2)).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ebbmalloc.h"
#include "internal.h"
#include "os.h"
#include "reclaim.h"

#define BACKEND_UNPROBED	(-1)
#define BACKEND_NIDS		4	/* ids 1..3 are real backends */
#define BACKEND_LAT_BUCKETS	EBB_STATS_LAT_BUCKETS

/*
 * Probe order, cheapest first, from bench/purge_backends.c (Linux 6.18,
 * 2 vCPUs, liburing 2.3; 1 GiB of touched small pages purged with
 * MADV_DONTNEED, CPU ms of the whole process per GiB, median of 5 runs;
 * batches of 256 ranges):
 *
 *   ranges 4 KiB..2 MiB (5056/GiB)   vector 56   madvise 64   uring 68
 *   ranges 4 KiB..64 KiB (28756/GiB) vector 50   madvise 129  uring 181
 *
 * (a rerun of the second: 63, 148, 220; with big ranges the page zapping
 * dominates and the three are within the noise of this shared machine.)
 * process_madvise costs one syscall per 1024 ranges. IORING_OP_MADVISE
 * saves syscalls as well (20 vs 5056 per GiB), but the kernel always punts
 * it to an io-wq worker (REQ_F_FORCE_ASYNC): about 5 us of hand-off per
 * range, more than a madvise syscall costs. Pinning the process to one CPU
 * (235 ms) or limiting io-wq to one worker did not help, so the cost is not
 * cross-CPU TLB shootdowns. So auto never picks uring while madvise works.
 * uring is there for EBB_RECLAIM_BACKEND=uring: fewest syscalls per batch
 * is not the same as cheapest.
 */
static const int backend_probe_order[3] = {
	RECLAIM_BACKEND_VECTOR,
	RECLAIM_BACKEND_MADVISE,
	RECLAIM_BACKEND_URING,
};

static const struct reclaim_backend *const backend_ops_default[BACKEND_NIDS] = {
	[RECLAIM_BACKEND_URING] = &reclaim_backend_uring,
	[RECLAIM_BACKEND_VECTOR] = &reclaim_backend_vector,
	[RECLAIM_BACKEND_MADVISE] = &reclaim_backend_madvise,
};
/* test hook: replaces a backend's ops (NULL restores the real one) */
static const struct reclaim_backend *backend_ops_test[BACKEND_NIDS];

static pthread_mutex_t backend_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int backend_cur = BACKEND_UNPROBED;
static unsigned char backend_disabled[BACKEND_NIDS];	/* for good */
static unsigned char backend_inited[BACKEND_NIDS];	/* init ran in this process */
static pid_t backend_pid;		/* process that initialised the backends */

static _Atomic uint64_t backend_batches;
static _Atomic uint64_t backend_syscalls;
static _Atomic uint64_t backend_ranges;
/* per backend (index: enum reclaim_backend_id), for ebb_stats_print */
static _Atomic uint64_t backend_syscalls_by[RECLAIM_BACKEND_NONE + 1];
static _Atomic uint64_t backend_batches_by[RECLAIM_BACKEND_NONE + 1];
static _Atomic uint64_t backend_bytes;
static _Atomic uint64_t backend_fallbacks;
static _Atomic uint64_t backend_lat[BACKEND_LAT_BUCKETS];

/* ---- small helpers, no allocation ------------------------------------- */

static const struct reclaim_backend *backend_ops(int id)
{
	return backend_ops_test[id] ? backend_ops_test[id] : backend_ops_default[id];
}

static const char *backend_id_name(int id)
{
	if (id == BACKEND_UNPROBED)
		return "unprobed";
	if (id >= RECLAIM_BACKEND_URING && id <= RECLAIM_BACKEND_MADVISE)
		return backend_ops(id)->name;
	return "none";
}

static const char *backend_errno_name(int err)
{
	switch (err) {
	case ENOSYS: return "ENOSYS";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EACCES: return "EACCES";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case EBUSY: return "EBUSY";
	case ESRCH: return "ESRCH";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case EIO: return "EIO";
	default: return NULL;
	}
}

/* The verbose option, however it was set (EBB_VERBOSE, EBB_CONF, ebb_ctl):
 * options are read at init, before any purge. */
static int backend_is_verbose(void)
{
	return opt(OPT_verbose) != 0;
}

/* "ebbmalloc: reclaim backend X failed (ENAME), falling back to Y" */
static void backend_warn_fallback(int from, int err, int to)
{
	const char *ename = backend_errno_name(err);

	if (!backend_is_verbose())
		return;
	if (ename)
		ebb_message("reclaim backend %s failed (%s), falling back to %s",
			    backend_id_name(from), ename, backend_id_name(to));
	else
		ebb_message("reclaim backend %s failed (errno %d), falling back to %s",
			    backend_id_name(from), err, backend_id_name(to));
}

static void backend_note_selected(int id)
{
	if (backend_is_verbose())
		ebb_message("reclaim backend: %s", backend_id_name(id));
}

static int backend_fallback_errno(ssize_t ret)
{
	return ret == -ENOSYS || ret == -EINVAL || ret == -EPERM ||
	       ret == -EOPNOTSUPP;
}

/* bucket i counts batches that took < 2^i us; the last one, the rest */
static unsigned backend_lat_bucket(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned i = 0;

	while (i < BACKEND_LAT_BUCKETS - 1 && us >= (1ULL << i))
		i++;
	return i;
}

static void backend_count(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* ---- choosing ------------------------------------------------------------ */

/* The process forked without our atfork handlers (raw clone): forget
 * what the parent set up, as backend_atfork_child does. */
static void backend_forget_inherited_locked(void)
{
	for (int id = RECLAIM_BACKEND_URING; id <= RECLAIM_BACKEND_MADVISE; id++) {
		if (backend_inited[id])
			backend_ops(id)->atfork_child();
		backend_inited[id] = 0;
	}
	backend_pid = getpid();
}

/* Make backend id ready in this process. 0 or -errno. */
static int backend_ready_locked(int id)
{
	int ret;

	if (backend_inited[id])
		return 0;
	ret = backend_ops(id)->init();
	if (ret == 0)
		backend_inited[id] = 1;
	return ret > 0 ? -EIO : ret;
}

static void backend_disable_locked(int id)
{
	backend_disabled[id] = 1;
	backend_count(&backend_fallbacks, 1);
}

/*
 * First usable backend in the probe order, skipping disabled ones and
 * those in skip_mask (bit id), initialising as it goes. A backend whose
 * init fails is disabled, with a message naming the one that takes over.
 * Returns its id or RECLAIM_BACKEND_NONE.
 */
static int backend_first_usable_locked(unsigned skip_mask)
{
	for (int k = 0; k < 3; k++) {
		int id = backend_probe_order[k], ret, next;

		if (backend_disabled[id] || (skip_mask & (1U << id)))
			continue;
		ret = backend_ready_locked(id);
		if (ret == 0)
			return id;
		backend_disable_locked(id);
		next = backend_first_usable_locked(skip_mask);
		backend_warn_fallback(id, -ret, next);
		return next;
	}
	return RECLAIM_BACKEND_NONE;
}

static int backend_select_locked(int pref)
{
	int id = RECLAIM_BACKEND_NONE;

	backend_pid = getpid();
	if (pref >= RECLAIM_BACKEND_URING && pref <= RECLAIM_BACKEND_MADVISE &&
	    !backend_disabled[pref]) {
		int ret = backend_ready_locked(pref);

		if (ret == 0) {
			id = pref;
		} else {
			backend_disable_locked(pref);
			id = backend_first_usable_locked(0);
			backend_warn_fallback(pref, -ret, id);
		}
	} else {
		id = backend_first_usable_locked(0);
	}
	atomic_store_explicit(&backend_cur, id, memory_order_relaxed);
	backend_note_selected(id);
	return id;
}

int backend_select(int pref)
{
	int id, saved_errno;

	id = atomic_load_explicit(&backend_cur, memory_order_relaxed);
	if (id != BACKEND_UNPROBED)
		return id;
	saved_errno = errno;	/* init's syscalls must not leak errno */
	pthread_mutex_lock(&backend_lock);
	id = atomic_load_explicit(&backend_cur, memory_order_relaxed);
	if (id == BACKEND_UNPROBED)
		id = backend_select_locked(pref);
	pthread_mutex_unlock(&backend_lock);
	errno = saved_errno;
	return id;
}

const char *backend_name(void)
{
	return backend_id_name(atomic_load_explicit(&backend_cur,
						    memory_order_relaxed));
}

/* ---- purging ------------------------------------------------------------- */

static ssize_t backend_purge_locked(const struct iovec *v, size_t n, int madv,
				    uint64_t *syscalls)
{
	int first = atomic_load_explicit(&backend_cur, memory_order_relaxed);
	int id = first;
	unsigned tentative = 0;	/* bit id: failed this batch with EINVAL */
	ssize_t ret = -ENOSYS;

	while (id != RECLAIM_BACKEND_NONE) {
		ret = backend_ready_locked(id);
		if (ret == 0) {
			uint64_t before = *syscalls;
			ret = backend_ops(id)->purge(v, n, madv, syscalls);
			backend_count(&backend_syscalls_by[id], *syscalls - before);
			backend_count(&backend_batches_by[id], 1);
		}
		if (ret >= 0 || !backend_fallback_errno(ret))
			break;
		if (ret == -EINVAL && backend_inited[id]) {
			/* the backend or the batch? the next one decides */
			tentative |= 1U << id;
			id = backend_first_usable_locked(tentative);
			continue;
		}
		/* the environment refuses it (or its init failed) */
		{
			int failed = id;

			backend_disable_locked(failed);
			id = backend_first_usable_locked(tentative);
			backend_warn_fallback(failed, (int)-ret, id);
		}
	}
	if (ret >= 0) {
		/* the batch was fine: the EINVAL ones are broken */
		for (int k = 0; k < 3; k++) {
			int t = backend_probe_order[k];

			if (tentative & (1U << t)) {
				backend_disable_locked(t);
				backend_warn_fallback(t, EINVAL, id);
			}
		}
	} else if (tentative) {
		/* every backend refused this batch with EINVAL: the batch is
		 * bad, not the backends; keep the first one that tried */
		for (int k = 0; k < 3; k++) {
			int t = backend_probe_order[k];

			if (tentative & (1U << t)) {
				id = t;
				break;
			}
		}
		if (first != RECLAIM_BACKEND_NONE && !backend_disabled[first])
			id = first;
		if (ret == -ENOSYS)
			ret = -EINVAL;
	}
	atomic_store_explicit(&backend_cur, id, memory_order_relaxed);
	return ret;
}

ssize_t backend_purge(const struct iovec *v, size_t n, int advice)
{
	return backend_purge_acct(v, n, advice, NULL);
}

ssize_t backend_purge_acct(const struct iovec *v, size_t n, int advice, struct purge_acct *acct)
{
	int saved_errno = errno, madv;
	uint64_t syscalls = 0, t0;
	ssize_t ret;

	switch (advice) {
	case RECLAIM_DONTNEED:
		madv = MADV_DONTNEED;
		break;
	case RECLAIM_FREE:
		madv = MADV_FREE;
		break;
	default:
		return -EINVAL;
	}
	if (n == 0)
		return 0;

	pthread_mutex_lock(&backend_lock);
	if (atomic_load_explicit(&backend_cur, memory_order_relaxed) ==
	    BACKEND_UNPROBED)
		backend_select_locked(RECLAIM_BACKEND_AUTO);
	else if (backend_pid != getpid())
		backend_forget_inherited_locked();
	t0 = os_now_ns();
	ret = backend_purge_locked(v, n, madv, &syscalls);
	unsigned bucket = backend_lat_bucket(os_now_ns() - t0);
	backend_count(&backend_lat[bucket], 1);
	if (acct) {
		acct->last_bucket = bucket;
		backend_count(&acct->lat[bucket], 1);
		backend_count(&acct->batches, 1);
		backend_count(&acct->syscalls, syscalls);
	}
	backend_count(&backend_batches, 1);
	backend_count(&backend_syscalls, syscalls);
	backend_count(&backend_ranges, n);
	if (ret > 0)
		backend_count(&backend_bytes, (uint64_t)ret);
	pthread_mutex_unlock(&backend_lock);
	errno = saved_errno;
	return ret;
}

/* ---- probe ---------------------------------------------------------------- */
/* A backend works here if purging a touched page of our own with
 * MADV_DONTNEED succeeds and zeroes it. 0, or -errno (-EIO if it claimed
 * success but the page kept its byte). */
int backend_probe(ssize_t (*purge)(const struct iovec *, size_t, int, uint64_t *))
{
	long page_bytes = sysconf(_SC_PAGESIZE);
	uint64_t syscalls = 0;
	struct iovec iov;
	volatile char *page = mmap(NULL, (size_t)page_bytes, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return -errno;
	page[0] = 1;
	iov.iov_base = (void *)page;
	iov.iov_len = (size_t)page_bytes;
	ssize_t ret = purge(&iov, 1, MADV_DONTNEED, &syscalls);
	if (ret >= 0 && (ret != page_bytes || page[0] != 0))
		ret = -EIO;
	munmap((void *)page, (size_t)page_bytes);
	return ret < 0 ? (int)ret : 0;
}

/* ---- stats --------------------------------------------------------------- */

void backend_stats_merge(struct ebb_stats *st)
{
	const char *name = backend_name();
	size_t k;

	st->purge_batches += atomic_load_explicit(&backend_batches, memory_order_relaxed);
	st->purge_syscalls += atomic_load_explicit(&backend_syscalls, memory_order_relaxed);
	st->purge_ranges += atomic_load_explicit(&backend_ranges, memory_order_relaxed);
	st->backend_fallbacks += atomic_load_explicit(&backend_fallbacks, memory_order_relaxed);
	for (k = 0; k < BACKEND_LAT_BUCKETS; k++)
		st->purge_batch_lat[k] +=
			atomic_load_explicit(&backend_lat[k], memory_order_relaxed);
	for (k = 0; name[k] && k + 1 < sizeof(st->backend); k++)
		st->backend[k] = name[k];
	st->backend[k] = '\0';
}

/* Batches and syscalls per backend (a batch a backend failed and another
 * one finished counts for both). */
void backend_stats_by(uint64_t batches[3], uint64_t syscalls[3])
{
	for (int id = RECLAIM_BACKEND_URING; id <= RECLAIM_BACKEND_MADVISE; id++) {
		batches[id - 1] = atomic_load_explicit(&backend_batches_by[id], memory_order_relaxed);
		syscalls[id - 1] = atomic_load_explicit(&backend_syscalls_by[id], memory_order_relaxed);
	}
}

/* Bytes the backends reported purged (struct ebb_stats counts purged
 * bytes per node on the arena side; this one is for tests and bench). */
uint64_t backend_purged_bytes(void);
uint64_t backend_purged_bytes(void)
{
	return atomic_load_explicit(&backend_bytes, memory_order_relaxed);
}

/* ---- fork ---------------------------------------------------------------- */

void backend_atfork_prepare(void)
{
	pthread_mutex_lock(&backend_lock);
}

void backend_atfork_parent(void)
{
	pthread_mutex_unlock(&backend_lock);
}

void backend_atfork_child(void)
{
	int saved_errno = errno;	/* fork() returns right after this */

	pthread_mutex_unlock(&backend_lock);	/* held by this thread since prepare */
	/* the choice and the disabled set stay (same kernel, same rules);
	 * the state each backend set up belongs to the parent */
	backend_forget_inherited_locked();
	errno = saved_errno;
}

/* ---- test hooks (declared here, not in reclaim.h: tests only) ---------- */

void backend_test_set_ops(int id, const struct reclaim_backend *ops);
void backend_test_reset(void);

/* Replace backend id's ops (NULL: the real ones). Call between
 * backend_test_reset() and the first purge. */
void backend_test_set_ops(int id, const struct reclaim_backend *ops)
{
	if (id >= RECLAIM_BACKEND_URING && id <= RECLAIM_BACKEND_MADVISE)
		backend_ops_test[id] = ops;
}

/* Back to "unprobed": fini every backend, forget the choice, the disabled
 * set and the counters. */
void backend_test_reset(void)
{
	pthread_mutex_lock(&backend_lock);
	for (int id = RECLAIM_BACKEND_URING; id <= RECLAIM_BACKEND_MADVISE; id++) {
		if (backend_inited[id])
			backend_ops(id)->fini();
		backend_inited[id] = 0;
		backend_disabled[id] = 0;
	}
	atomic_store_explicit(&backend_cur, BACKEND_UNPROBED, memory_order_relaxed);
	atomic_store_explicit(&backend_batches, 0, memory_order_relaxed);
	atomic_store_explicit(&backend_syscalls, 0, memory_order_relaxed);
	atomic_store_explicit(&backend_ranges, 0, memory_order_relaxed);
	for (int k = 0; k <= RECLAIM_BACKEND_NONE; k++) {
		atomic_store_explicit(&backend_syscalls_by[k], 0, memory_order_relaxed);
		atomic_store_explicit(&backend_batches_by[k], 0, memory_order_relaxed);
	}
	atomic_store_explicit(&backend_bytes, 0, memory_order_relaxed);
	atomic_store_explicit(&backend_fallbacks, 0, memory_order_relaxed);
	for (int k = 0; k < BACKEND_LAT_BUCKETS; k++)
		atomic_store_explicit(&backend_lat[k], 0, memory_order_relaxed);
	pthread_mutex_unlock(&backend_lock);
}
