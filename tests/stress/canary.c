/*
 * canary.c - reclaim canary: churn every size class while memory is purged.
 *
 * Meant to run with EBB_DECAY_MS=0 (freed pages are purged as soon as the
 * reclaim thread sees them), once per EBB_RECLAIM_BACKEND=uring|vector|madvise.
 * If a purge ever touches a range that holds a live block, or a range is
 * handed out again while its purge is in flight, a block reads back as zeros
 * (or as another block's bytes) and its canary check fails.
 * Under glibc or another allocator the EBB_* variables mean nothing and the
 * test is a plain pattern stress.
 *
 * Workload per thread (seed = CANARY_SEED + index), until CANARY_SECONDS
 * have passed (a bound on the run, never a measurement):
 *  - cycles of rise and fall: fill up to 4096 slots with blocks of 1 B to
 *    256 KiB (log-uniform: every size class), one in 128 up to 4 MiB; churn
 *    (free + allocate, realloc, calloc); then free 90 % of the live blocks at
 *    once, so whole slabs and runs become empty and get purged while the
 *    survivors stay live in the same chunks, and allocate again at once;
 *  - every live block holds a pattern unique to it: checked before every
 *    free/realloc, and all live blocks are re-checked after each fall;
 *  - blocks move between threads through a shared exchange (remote frees);
 *  - thread 0 calls malloc_trim(0) after every fall (purge now, on the
 *    application thread, concurrently with the reclaim thread).
 * Exit 0 when no check failed, 1 otherwise.
 */
#include <malloc.h>
#include <pthread.h>
#include "ebbmalloc.h"	/* struct ebb_stats only: looked up with dlsym */
#include "stress.h"

#define NSLOTS	4096
#define XCAP	1024

struct blk {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};

static double deadline;
static unsigned nthreads;
static pthread_mutex_t xlock = PTHREAD_MUTEX_INITIALIZER;
static struct blk xpool[XCAP];
static size_t xn;
static atomic_ulong n_ops, n_checks, n_falls, n_trims_released;
static atomic_ullong bytes_checked;

struct worker {
	unsigned idx;
	uint64_t rng;
	uint64_t tag;
	struct blk s[NSLOTS];
};

static void check(struct blk *b, unsigned idx, const char *when)
{
	size_t off = pat_check(b->p, b->n, b->tag);

	atomic_fetch_add_explicit(&n_checks, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&bytes_checked, b->n, memory_order_relaxed);
	if (off != (size_t)-1) {
		size_t z = zero_check(b->p + off, b->n - off);
		FAIL("t%u %s: live block %p (%zu bytes, tag %#" PRIx64 ") corrupt at offset %zu (byte %#x)%s",
		     idx, when, (void *)b->p, b->n, b->tag, off, b->p[off],
		     z == (size_t)-1 ? ": all zero from there on (purged while live?)" : "");
	}
}

static void release(struct worker *w, struct blk *b, const char *when)
{
	check(b, w->idx, when);
	free(b->p);
	b->p = NULL;
}

static size_t pick(struct worker *w)
{
	if (rng_below(&w->rng, 128) == 0)
		return rng_size_log(&w->rng, (256 << 10) + 1, 4 << 20);
	return rng_size_log(&w->rng, 1, 256 << 10);
}

static void fill(struct worker *w, struct blk *b)
{
	unsigned x = (unsigned)rng_below(&w->rng, 10);
	size_t n = pick(w);
	unsigned char *p;

	if (x == 0) {
		p = calloc(1, n);
		if (p && zero_check(p, n) != (size_t)-1)
			FAIL("t%u calloc(1, %zu) = %p not zero at %zu", w->idx, n, (void *)p, zero_check(p, n));
	} else {
		p = malloc(n);
	}
	if (!p) {
		FAIL("t%u allocation of %zu bytes failed: errno %d", w->idx, n, errno);
		return;
	}
	b->p = p;
	b->n = n;
	b->tag = ((uint64_t)(w->idx + 1) << 48) | ++w->tag;
	pat_fill(p, n, b->tag);
}

static void exchange(struct worker *w, struct blk *b)
{
	struct blk got = { 0 };

	pthread_mutex_lock(&xlock);
	if (xn > 0 && rng_below(&w->rng, 2)) {
		size_t i = rng_below(&w->rng, xn);
		got = xpool[i];
		xpool[i] = xpool[--xn];
	}
	if (xn < XCAP) {
		xpool[xn++] = *b;
		b->p = NULL;
	}
	pthread_mutex_unlock(&xlock);
	if (b->p)
		release(w, b, "free");
	if (got.p) {
		check(&got, w->idx, "received");
		*b = got;	/* adopt: freed later by this thread */
	}
}

static void churn(struct worker *w, unsigned ops)
{
	for (unsigned i = 0; i < ops; i++) {
		struct blk *b = &w->s[rng_below(&w->rng, NSLOTS)];
		unsigned x = (unsigned)rng_below(&w->rng, 100);

		if (!b->p) {
			fill(w, b);
		} else if (x < 50) {
			release(w, b, "free");
			fill(w, b);
		} else if (x < 65) {
			size_t n = pick(w), keep;
			unsigned char *q;
			check(b, w->idx, "before realloc");
			keep = n < b->n ? n : b->n;
			q = realloc(b->p, n);
			if (!q) {
				FAIL("t%u realloc(%zu) = NULL", w->idx, n);
				continue;
			}
			if (pat_check(q, keep, b->tag) != (size_t)-1)
				FAIL("t%u realloc %p -> %p (%zu -> %zu) lost its prefix at %zu", w->idx,
				     (void *)b->p, (void *)q, b->n, n, pat_check(q, keep, b->tag));
			b->p = q;
			b->n = n;
			b->tag = ((uint64_t)(w->idx + 1) << 48) | ++w->tag;
			pat_fill(q, n, b->tag);
		} else if (x < 75) {
			exchange(w, b);
		} else {
			check(b, w->idx, "visit");
		}
	}
	atomic_fetch_add_explicit(&n_ops, ops, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	while (now_s() < deadline && stress_failed() < 10) {
		/* rise */
		for (unsigned i = 0; i < NSLOTS; i++)
			if (!w->s[i].p && rng_below(&w->rng, 4))
				fill(w, &w->s[i]);
		churn(w, 20000);
		/* fall: 90 % at once */
		for (unsigned i = 0; i < NSLOTS; i++)
			if (w->s[i].p && rng_below(&w->rng, 10))
				release(w, &w->s[i], "free in fall");
		atomic_fetch_add_explicit(&n_falls, 1, memory_order_relaxed);
		if (w->idx == 0 && malloc_trim(0))
			atomic_fetch_add_explicit(&n_trims_released, 1, memory_order_relaxed);
		/* reallocate into the purging memory at once, then re-check survivors */
		churn(w, 5000);
		for (unsigned i = 0; i < NSLOTS; i++)
			if (w->s[i].p)
				check(&w->s[i], w->idx, "sweep after fall");
	}
	for (unsigned i = 0; i < NSLOTS; i++)
		if (w->s[i].p)
			release(w, &w->s[i], "final free");
	return NULL;
}

/* Under ebbmalloc: the purge work really happened during the run (else the
 * canary proved nothing), and which backend did it. Returns 0 or 1 (fail). */
static int check_purges(void)
{
	int (*stats)(struct ebb_stats *, size_t) =
		(int (*)(struct ebb_stats *, size_t))dlsym(RTLD_DEFAULT, "ebb_stats_sized");
	const char *decay = getenv("EBB_DECAY_MS");
	struct ebb_stats st;

	if (!stats) {
		FAIL("ebbmalloc without ebb_stats");
		return 1;
	}
	memset(&st, 0, sizeof(st));
	stats(&st, sizeof(st));
	printf("canary: ebbmalloc purged %llu MiB in %llu batches, %llu syscalls, %llu ranges; backend %.16s, %llu fallbacks\n",
	       (unsigned long long)(st.purged_bytes >> 20), (unsigned long long)st.purge_batches,
	       (unsigned long long)st.purge_syscalls, (unsigned long long)st.purge_ranges, st.backend,
	       (unsigned long long)st.backend_fallbacks);
	if (decay && strcmp(decay, "0") == 0 && (st.purged_bytes == 0 || st.purge_batches == 0)) {
		FAIL("EBB_DECAY_MS=0 but nothing was purged: the canary tested no reclaim");
		return 1;
	}
	return 0;
}

static void print_backend(void)
{
	int (*ctl)(const char *, void *, size_t *, const void *, size_t) =
		(int (*)(const char *, void *, size_t *, const void *, size_t))dlsym(RTLD_DEFAULT, "ebb_ctl");
	char buf[64] = "";
	size_t len = sizeof(buf);

	if (ctl && ctl("reclaim_backend", buf, &len, NULL, 0) == 0)
		printf("canary: ebb_ctl(\"reclaim_backend\") = %.*s\n", (int)sizeof(buf), buf);
}

int main(void)
{
	long secs = env_long("CANARY_SECONDS", 15);
	uint64_t seed = (uint64_t)env_long("CANARY_SEED", 1);
	struct worker *w;
	pthread_t *th;

	if (stress_banner("canary"))
		return 1;
	nthreads = (unsigned)env_long("CANARY_THREADS", 4);
	if (nthreads < 1)
		nthreads = 1;
	printf("canary: %u threads, %ld s, EBB_DECAY_MS=%s EBB_RECLAIM_BACKEND=%s\n", nthreads, secs,
	       getenv("EBB_DECAY_MS") ? getenv("EBB_DECAY_MS") : "(unset)",
	       getenv("EBB_RECLAIM_BACKEND") ? getenv("EBB_RECLAIM_BACKEND") : "(unset)");
	if (stress_is_ebbmalloc())
		print_backend();
	w = calloc(nthreads, sizeof(*w));
	th = calloc(nthreads, sizeof(*th));
	if (!w || !th)
		return 1;
	deadline = now_s() + (double)secs;
	for (unsigned t = 0; t < nthreads; t++) {
		w[t].idx = t;
		w[t].rng = rng_seed(seed, t);
		if (pthread_create(&th[t], NULL, worker_main, &w[t])) {
			FAIL("pthread_create");
			return 1;
		}
	}
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	for (size_t i = 0; i < xn; i++) {
		check(&xpool[i], 99, "exchange at the end");
		free(xpool[i].p);
	}
	if (stress_is_ebbmalloc()) {
		print_backend();	/* a backend that failed at run time has fallen back */
		check_purges();
	}
	printf("canary: %lu ops, %lu falls, %lu canary checks over %llu MiB, malloc_trim released memory %lu times, %lu corruptions\n",
	       atomic_load(&n_ops), atomic_load(&n_falls), atomic_load(&n_checks),
	       atomic_load(&bytes_checked) >> 20, atomic_load(&n_trims_released), stress_failed());
	if (atomic_load(&n_falls) < nthreads)
		FAIL("not even one rise-and-fall cycle per thread ran");
	free(w);
	free(th);
	return stress_failed() ? 1 : 0;
}
