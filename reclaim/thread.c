/*
 * thread.c - reclaim policy: decay, the dirty cap, the reclaim thread,
 * malloc_trim and ebb_reclaim.
 *
 * A pass walks the arenas; from each it takes a batch of its oldest dirty
 * runs (arena_purge_take: they become PURGING, no lock is held after it
 * returns), purges the batch through the backend (one submit or one
 * process_madvise per batch), and completes it (arena_purge_done: CLEAN).
 * A run is taken when it has been dirty for decay_ms, or at once while
 * dirty memory exceeds its cap (dirty_cap_pct of active memory, at least
 * 16 MiB, and at least what active memory fell by from its peak of the
 * last dirty_hold_ms: cap_pages), oldest first; each arena gives its share
 * of the excess, in proportion to the dirty memory it holds.
 *
 * The reclaim thread is started lazily, from the first free that leaves a
 * dirty run (never under a lock, never in a process that frees nothing).
 * It sleeps on a futex: while dirty memory exists it wakes every decay/4
 * (5 ms .. 1 s); with nothing dirty its interval doubles from 10 ms up to
 * 10 s, and a free that creates dirty memory while it is in that state, or
 * that crosses the cap, wakes it. malloc_trim asks it for a forced pass
 * and waits for the answer, so that with EBB_RECLAIM=thread the purge
 * syscalls are made by the reclaim thread only (invariant 2).
 *
 * EBB_RECLAIM=inline: the freeing thread runs a pass when the cap is
 * crossed or decay/4 has passed since the last pass. EBB_RECLAIM=off: only
 * malloc_trim and ebb_reclaim purge.
 *
 * Threads: passes are serialised by pass_lock. In a fork child the thread
 * does not exist: it is started again lazily, and the backend gets a ring
 * of the child's own (backend.c).
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "os.h"
#include "reclaim.h"

static pthread_mutex_t pass_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iovec pass_iov[RECLAIM_BATCH_MAX];

static _Atomic int thread_state;	/* 0 none, 1 starting, 2 running, 3 not now (fork child handler) */
static _Atomic uint32_t wake_word;	/* futex: bumped to wake the thread */
static _Atomic int idle_sleep;		/* thread is in its no-dirty backoff sleep */
static _Atomic uint32_t trim_req, trim_done;	/* futex: trim requests served */
static _Atomic uint64_t trim_result;
static _Atomic uint64_t last_inline_ns;
static _Atomic pid_t reclaim_tid;

/* The dirty cap never goes below this: at 4 MiB, a small heap that frees
 * and regrows buffers of a few MiB (bench/realloc.c: 64 buffers growing to
 * 64 KiB, one in 16 to 1 MiB) had its dirty runs purged as soon as it freed
 * them and refaulted them at once, 250 k page faults in 2 s against 11 k
 * at 16 MiB (mimalloc 7 k), and 0.6 x mimalloc's speed. Decay still
 * purges whatever stays dirty beyond decay_ms. */
#ifndef CAP_FLOOR_MIB
#define CAP_FLOOR_MIB 16
#endif
#define CAP_FLOOR_PAGES (((size_t)CAP_FLOOR_MIB << 20) / PAGE_SIZE)

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void futex_wait(_Atomic uint32_t *w, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000ull), (long)(timeout_ns % 1000000000ull) };
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, timeout_ns ? &ts : NULL, NULL, 0);
}

/* The hold: dirty memory up to what active memory fell by from its peak
 * of the last dirty_hold_ms (at most decay_ms) is not over the cap. A
 * workload whose active memory dips and regrows within that time reuses
 * the pages it freed instead of faulting in purged ones, and RSS stays
 * below max(peak active of the window, active + cap). The JVM workload
 * (bench/jvm: bursts of 4 MiB per worker freed 5-50 ms later) had 97 %
 * of its 2.2 GB purged in 12 s taken by the cap, and refaulted as much:
 * 476 000-499 000 faults and 1.5 s of system time, against 302 000-305 000
 * and 0.9-1.1 s with the hold (of 500 ms there: the decay bounds it).
 * The peak is kept in two windows of half the hold each:
 * active_peak_pages (raised by arena.c as runs become active) is the
 * current one's, and each pass of the reclaim thread rotates it into
 * peak_prev once half the hold has gone by. Over the cap, pass() purges
 * down to half of it: with a large hold that takes half of the held dip
 * too. Purging only down to cap - base/2 (base: the cap without the hold)
 * was tried: 210 000 faults in 12 s of the JVM workload against 300 000,
 * 0.74 s of system time against 1.0, but mean RSS 277 MiB against 258
 * (+7 %), which the JVM target's RSS bound has no room for. */
static _Atomic size_t peak_prev;
static uint64_t peak_epoch_ns;		/* under pass_lock */

static uint64_t hold_ns(void)
{
	uint64_t h = (uint64_t)opt(OPT_dirty_hold_ms), d = (uint64_t)opt(OPT_decay_ms);
	return (h < d ? h : d) * 1000000ull;
}

static void peak_rotate(uint64_t now)
{
	uint64_t h = hold_ns(), since = now - peak_epoch_ns;
	if (since < h / 2)
		return;
	peak_epoch_ns = now;
	size_t active = atomic_load_explicit(&active_total_pages, memory_order_relaxed);
	size_t cur = atomic_exchange_explicit(&active_peak_pages, active, memory_order_relaxed);
	/* a window that ended longer than the hold ago is forgotten */
	atomic_store_explicit(&peak_prev, since < h ? cur : active, memory_order_relaxed);
}

/* The cap; *held (if not NULL): what the hold adds to the share of
 * active memory (or the floor). */
static size_t cap_pages_held(size_t *held)
{
	size_t active = atomic_load_explicit(&active_total_pages, memory_order_relaxed);
	size_t base = active * (size_t)opt(OPT_dirty_cap_pct) / 100, cap;
	if (base < CAP_FLOOR_PAGES)
		base = CAP_FLOOR_PAGES;
	cap = base;
	if (hold_ns()) {
		size_t peak = atomic_load_explicit(&active_peak_pages, memory_order_relaxed);
		size_t prev = atomic_load_explicit(&peak_prev, memory_order_relaxed);
		if (prev > peak)
			peak = prev;
		if (peak > active && peak - active > cap)
			cap = peak - active;
	}
	if (held)
		*held = cap - base;
	return cap;
}

static size_t cap_pages(void)
{
	return cap_pages_held(NULL);
}

void reclaim_cap_stats(uint64_t *cap_bytes, uint64_t *hold_bytes)
{
	size_t held;
	*cap_bytes = (uint64_t)cap_pages_held(&held) * PAGE_SIZE;
	*hold_bytes = (uint64_t)held * PAGE_SIZE;
}

/* One pass over all arenas. Returns bytes purged. */
/* Purge what pass_iov[0..n) holds (taken from the arenas in segs) in one
 * backend call, and complete each arena's part. Returns bytes purged. */
struct seg {
	arena_t *a;
	unsigned start, n;
};

static size_t purge_segments(const struct seg *segs, unsigned nsegs, unsigned n, int advice,
			     struct purge_acct *acct)
{
	if (n == 0)
		return 0;
	ssize_t r = backend_purge_acct(pass_iov, n, advice, acct);
	size_t bytes = 0;
	for (unsigned k = 0; k < n; k++)
		bytes += pass_iov[k].iov_len;
	for (unsigned s = 0; s < nsegs; s++) {
		if (!segs[s].n)
			continue;
		arena_t *a = segs[s].a;
		atomic_fetch_add_explicit(&a->purge_batches, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&a->purge_ranges, segs[s].n, memory_order_relaxed);
		atomic_fetch_add_explicit(&a->purge_lat[acct->last_bucket], 1, memory_order_relaxed);
		arena_purge_done(a, pass_iov + segs[s].start, segs[s].n, r >= 0);
	}
	return r >= 0 ? bytes : 0;
}

/* Each node's purges, counted apart (ebb_stats' node_purge). */
static struct purge_acct node_acct[EBB_MAX_NODES];

/* The nodes' and the arenas' purge figures, read under the pass lock so
 * that they agree: an arena's batches are its node's batches that carried
 * its ranges. */
void reclaim_purge_stats(struct ebb_stats *st)
{
	pthread_mutex_lock(&pass_lock);
	for (unsigned n = 0; n < nnodes && n < EBB_STATS_MAX_NODES; n++) {
		const struct purge_acct *c = &node_acct[n];
		struct ebb_node_purge_stats *out = &st->node_purge[n];
		out->batches = atomic_load_explicit(&c->batches, memory_order_relaxed);
		out->syscalls = atomic_load_explicit(&c->syscalls, memory_order_relaxed);
		for (unsigned k = 0; k < EBB_STATS_LAT_BUCKETS; k++)
			out->batch_lat[k] = atomic_load_explicit(&c->lat[k], memory_order_relaxed);
	}
	for (unsigned i = 0; i < narenas && i < EBB_STATS_MAX_ARENAS; i++) {
		arena_t *a = arenas[i];
		struct ebb_arena_stats *f = &st->arena[i];
		f->purge_batches = atomic_load_explicit(&a->purge_batches, memory_order_relaxed);
		f->purge_ranges = atomic_load_explicit(&a->purge_ranges, memory_order_relaxed);
		for (unsigned k = 0; k < EBB_STATS_LAT_BUCKETS; k++)
			f->purge_batch_lat[k] = atomic_load_explicit(&a->purge_lat[k], memory_order_relaxed);
	}
	pthread_mutex_unlock(&pass_lock);
}

/* One pass over all arenas, a node at a time: the ranges of a node's
 * arenas go into one batch (one process_madvise or io_uring submit for up
 * to RECLAIM_BATCH_MAX ranges), so syscalls per pass grow with the nodes
 * (their purges are counted apart), not with the arenas. Returns bytes
 * purged. */
static size_t pass(int force, size_t budget)
{
	if (atomic_load_explicit(&ebb_inited, memory_order_acquire) != 2)
		return 0;
	int advice = opt(OPT_purge) == PURGE_FREE ? RECLAIM_FREE : RECLAIM_DONTNEED;
	uint64_t decay_ns = (uint64_t)opt(OPT_decay_ms) * 1000000ull;
	size_t total = 0;
	struct seg segs[EBB_MAX_ARENAS_PER_NODE];
	pthread_mutex_lock(&pass_lock);
	backend_select((int)opt(OPT_reclaim_backend));
	uint64_t now = os_now_ns();
	peak_rotate(now);
	size_t dirty = atomic_load_explicit(&dirty_total_pages, memory_order_relaxed);
	size_t cap = cap_pages();
	/* over the cap: down to half of it (hysteresis), so that a stream of
	 * frees does not wake the thread for a sliver each time */
	size_t excess = dirty > cap ? dirty - cap / 2 : 0;
	/* Each arena gives its share of the excess, in proportion to its
	 * dirty pages. Taken from the arenas in turn, the excess came out of
	 * the first ones: after 12 s of the JVM workload arena 0 had purged
	 * 1.5 GB and held 4 MB dirty, arena 1 0.8 GB and 31 MB, so arena 0's
	 * threads refaulted purged runs while arena 1's dirty ones waited.
	 * (The workload still purges ~2 GB in 12 s: bursts of 4 MiB a worker,
	 * freed 5-50 ms later, outrun a cap of 25 % of its active memory.) */
	size_t share[EBB_MAX_NODES * EBB_MAX_ARENAS_PER_NODE] = { 0 };
	if (excess) {
		size_t sum = 0;
		for (unsigned i = 0; i < narenas; i++)
			sum += share[i] = arena_dirty_pages(arenas[i]);
		for (unsigned i = 0; i < narenas; i++)
			share[i] = sum ? (size_t)((double)excess * (double)share[i] / (double)sum) + 1 : 0;
	}
	int more = 1;
	while (more && !(budget && total >= budget)) {
		more = 0;
		for (unsigned node = 0; node < nnodes && !(budget && total >= budget); node++) {
			unsigned n = 0, nsegs = 0;
			for (unsigned k = 0; k < arenas_per_node && n < RECLAIM_BATCH_MAX; k++) {
				unsigned i = node * arenas_per_node + k;
				arena_t *a = arenas[i];
				unsigned room = RECLAIM_BATCH_MAX - n;
				unsigned got = arena_purge_take(a, now, decay_ns, share[i], force,
								pass_iov + n, room);
				if (got == 0)
					continue;
				size_t pages = 0;
				for (unsigned j = n; j < n + got; j++)
					pages += pass_iov[j].iov_len / PAGE_SIZE;
				share[i] = share[i] > pages ? share[i] - pages : 0;
				segs[nsegs++] = (struct seg){ a, n, got };
				n += got;
				if (got == room)
					more = 1;	/* this arena may have more: another round */
			}
			total += purge_segments(segs, nsegs, n, advice, &node_acct[node]);
		}
	}
	pthread_mutex_unlock(&pass_lock);
	/* cached huge mappings past the decay are unmapped here (munmap on
	 * this thread, not the application's) */
	total += huge_cache_trim(now, decay_ns, force);
	return total;
}

size_t reclaim_run(int force, size_t budget_bytes)
{
	return pass(force, budget_bytes);
}

/* ---- the reclaim thread ------------------------------------------------------- */
static void *reclaim_main(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	atomic_store_explicit(&reclaim_tid, (pid_t)os_gettid(), memory_order_relaxed);
	tcache_idle_protocol_init();
	uint64_t idle_ms = 10;
	for (;;) {
		uint32_t seen = atomic_load_explicit(&wake_word, memory_order_acquire);
		uint32_t req = atomic_load_explicit(&trim_req, memory_order_acquire);
		if (req != atomic_load_explicit(&trim_done, memory_order_relaxed)) {
			size_t got = pass(1, 0);
			atomic_store_explicit(&trim_result, got, memory_order_relaxed);
			atomic_store_explicit(&trim_done, req, memory_order_release);
			futex_wake(&trim_done);
		} else if (opt(OPT_reclaim) == RECLAIM_THREAD) {
			/* reclaim=inline or off set through ebb_ctl: this thread
			 * stops purging (it still serves malloc_trim, idle
			 * caches and the stats file) */
			pass(0, 0);
		}
		stats_file_refresh();
		uint64_t sleep_ns;
		if (atomic_load_explicit(&dirty_total_pages, memory_order_relaxed) > 0) {
			/* every decay/4: a range waits at most 1.25 x decay
			 * (decay/2 halved the syscalls but let frag's peak grow
			 * from 1.27 to 1.38 x the minimum: bench/results/frag.md) */
			uint64_t q = (uint64_t)opt(OPT_decay_ms) / 4;
			sleep_ns = (q < 5 ? 5 : q > 1000 ? 1000 : q) * 1000000ull;
			idle_ms = 10;
		} else {
			sleep_ns = idle_ms * 1000000ull;
			idle_ms = idle_ms * 2 > 10000 ? 10000 : idle_ms * 2;
			atomic_store_explicit(&idle_sleep, 1, memory_order_release);
		}
		if (opt_stats_file[0] && sleep_ns > 100000000ull)
			sleep_ns = 100000000ull;
		/* the idle scan sees a cache's activity stop at its first look
		 * after, and flushes idle_ms after that: looking every
		 * idle_ms / 4 flushes within 1.5 x idle_ms */
		uint64_t idle_flush = (uint64_t)opt(OPT_tcache_idle_ms) * 1000000ull / 4;
		if (idle_flush && sleep_ns > idle_flush)
			sleep_ns = idle_flush;
		if (atomic_load_explicit(&trim_req, memory_order_acquire) ==
		    atomic_load_explicit(&trim_done, memory_order_relaxed))
			futex_wait(&wake_word, seen, sleep_ns);
		atomic_store_explicit(&idle_sleep, 0, memory_order_relaxed);
		tcache_idle_scan(os_now_ns());
	}
	return NULL;
}

static void reclaim_start(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong_explicit(&thread_state, &expect, 1,
						     memory_order_acq_rel, memory_order_relaxed))
		return;
	pthread_attr_t attr;
	pthread_t th;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* pthread_create allocates (TLS, DTV): we hold no lock here, and
	 * thread_state is 1, so those mallocs cannot start a second thread. */
	int r = pthread_create(&th, &attr, reclaim_main, NULL);
	pthread_attr_destroy(&attr);
	if (r) {
		if (opt(OPT_verbose))
			ebb_message("cannot start the reclaim thread (errno %d); purging inline", r);
		atomic_store_explicit(&opt_values[OPT_reclaim], RECLAIM_INLINE, memory_order_relaxed);
		atomic_store_explicit(&thread_state, 0, memory_order_release);
		return;
	}
	pthread_setname_np(th, "ebb-reclaim");
	atomic_store_explicit(&thread_state, 2, memory_order_release);
}

_Atomic int reclaim_start_wanted;

void reclaim_start_pending(void)
{
	if (atomic_exchange_explicit(&reclaim_start_wanted, 0, memory_order_relaxed))
		reclaim_ensure_thread();
}

void reclaim_ensure_thread(void)
{
	if (opt(OPT_reclaim) == RECLAIM_THREAD &&
	    atomic_load_explicit(&thread_state, memory_order_relaxed) == 0)
		reclaim_start();
}

static void wake(void)
{
	atomic_fetch_add_explicit(&wake_word, 1, memory_order_release);
	futex_wake(&wake_word);
}

void reclaim_notify(size_t dirty_bytes, size_t active_bytes)
{
	(void)active_bytes;
	int mode = (int)opt(OPT_reclaim);
	if (mode == RECLAIM_OFF)
		return;
	size_t dirty = atomic_load_explicit(&dirty_total_pages, memory_order_relaxed);
	int over = dirty > cap_pages();
	if (mode == RECLAIM_INLINE) {
		uint64_t now = os_now_ns();
		uint64_t last = atomic_load_explicit(&last_inline_ns, memory_order_relaxed);
		uint64_t q = (uint64_t)opt(OPT_decay_ms) * 250000ull;
		if (over || now - last >= q) {
			atomic_store_explicit(&last_inline_ns, now, memory_order_relaxed);
			pass(0, 0);
		}
		return;
	}
	(void)dirty_bytes;
	int st = atomic_load_explicit(&thread_state, memory_order_acquire);
	if (st == 0) {
		/* Not from here: we are inside a thread cache's flush, and
		 * pthread_create mallocs on this thread, which would find the
		 * flushing bin half-way. The next slow path starts it, before
		 * it touches any bin (reclaim_start_pending). */
		atomic_store_explicit(&reclaim_start_wanted, 1, memory_order_relaxed);
		return;
	}
	if (st == 2 && (over || atomic_load_explicit(&idle_sleep, memory_order_acquire)))
		wake();
}

/* ---- public control ------------------------------------------------------------- */
EBB_EXPORT int ebb_malloc_trim(size_t pad)
{
	(void)pad;
	ebb_init_slow();
	ebb_thread_idle();
	size_t got;
	reclaim_ensure_thread();
	if (opt(OPT_reclaim) == RECLAIM_THREAD &&
	    atomic_load_explicit(&thread_state, memory_order_acquire) == 2 &&
	    (pid_t)os_gettid() != atomic_load_explicit(&reclaim_tid, memory_order_relaxed)) {
		/* let the reclaim thread do it, and wait for its answer */
		uint32_t ticket = atomic_fetch_add_explicit(&trim_req, 1, memory_order_acq_rel) + 1;
		wake();
		for (;;) {
			uint32_t done = atomic_load_explicit(&trim_done, memory_order_acquire);
			if ((int32_t)(done - ticket) >= 0)
				break;
			futex_wait(&trim_done, done, 100000000ull);
		}
		got = atomic_load_explicit(&trim_result, memory_order_relaxed);
	} else {
		got = pass(1, 0);
	}
	return got > 0;
}

EBB_EXPORT size_t ebb_reclaim(size_t budget_bytes)
{
	ebb_init_slow();
	return pass(1, budget_bytes);
}

EBB_EXPORT void ebb_thread_idle(void)
{
	tcache_t *tc = tcache_self();
	tcache_enter(tc);
	if (tc->state == TC_ACTIVE)
		tcache_flush_all(tc);
	tcache_exit(tc);
}

/* ---- fork ------------------------------------------------------------------------- */
void reclaim_atfork_prepare(void)
{
	pthread_mutex_lock(&pass_lock);
}

void reclaim_atfork_parent(void)
{
	pthread_mutex_unlock(&pass_lock);
}

void reclaim_atfork_child(void)
{
	pthread_mutex_unlock(&pass_lock);	/* held by this thread since prepare */
	atomic_store_explicit(&thread_state, 3, memory_order_relaxed);
	atomic_store_explicit(&idle_sleep, 0, memory_order_relaxed);
	atomic_store_explicit(&trim_req, 0, memory_order_relaxed);
	atomic_store_explicit(&trim_done, 0, memory_order_relaxed);
	atomic_store_explicit(&reclaim_tid, 0, memory_order_relaxed);
	stats_file_atfork_child();
}

/* End of the child's fork handlers: the thread may start again (lazily,
 * on the child's first dirty memory or second thread). */
void reclaim_atfork_child_done(void)
{
	atomic_store_explicit(&thread_state, 0, memory_order_release);
}
