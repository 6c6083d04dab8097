/*
 * xthread.c [SECONDS] - the cross-thread protocols at once, through the
 * ebb_* API (linked with libebbmalloc-ebb.a, so it also runs under TSan and
 * ASan: `make check-san`). Run with EBB_DECAY_MS=0 and EBB_TCACHE_IDLE_MS=5
 * (test-hardening does) so that the reclaim thread purges and idle-flushes
 * all the time.
 *
 * Threads, for SECONDS (default 3):
 *  - 2 producers allocate patterned blocks (16 B .. 256 KiB, sometimes
 *    huge) and hand most of them to the consumers: remote frees;
 *  - 2 consumers check and free what they get, and realloc some first;
 *  - 1 napper allocates a set of blocks, frees them into its cache, sleeps
 *    past the idle time (the reclaim thread steals its cache: the
 *    idle-flush handshake), then allocates again; sometimes it calls
 *    ebb_thread_idle() itself;
 *  - 1 reclaimer calls ebb_reclaim(), ebb_malloc_trim() and ebb_stats()
 *    while the others run.
 * Checks: every block keeps its pattern until it is freed, realloc keeps
 * contents, nothing fails (there is plenty of memory), and at the end every
 * arena passes its invariant walker and no block is lost (with every block
 * freed and every cache flushed, ebb_stats shows 0 bytes allocated, active
 * and cached).
 */
#include <time.h>
#include <unistd.h>
#include "internal.h"
#include "hard.h"

#define QCAP 1024
struct blk {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};
static struct {
	pthread_mutex_t lock;
	struct blk q[QCAP];
	unsigned head, count;
} queues[2] = { { .lock = PTHREAD_MUTEX_INITIALIZER }, { .lock = PTHREAD_MUTEX_INITIALIZER } };

static _Atomic int stop;
static _Atomic uint64_t tags = 1, handed, freed_remote, naps;

static size_t pick_size(uint64_t *r)
{
	uint64_t k = rng_below(r, 1000);
	if (k < 700)
		return 1 + rng_below(r, 1024);
	if (k < 990)
		return 1025 + rng_below(r, 255u << 10);
	return (3u << 20) + rng_below(r, 1u << 20);
}

static unsigned char *new_block(uint64_t *r, size_t *n, uint64_t *tag)
{
	*n = pick_size(r);
	unsigned char *p = ebb_malloc(*n);
	HARD_CHECK(p, "malloc(%zu) failed", *n);
	*tag = atomic_fetch_add(&tags, 1);
	pat_fill(p, *n, *tag);
	return p;
}

static void check_free(struct blk *b, const char *who)
{
	size_t bad = pat_check(b->p, b->n, b->tag);
	HARD_CHECK(bad == SIZE_MAX, "%s: block %p (%zu bytes) corrupt at %zu", who, (void *)b->p, b->n,
		   bad);
	ebb_free(b->p);
}

static void *producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t r = 1000 + id;
	struct blk local[64] = { { 0 } };
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct blk b;
		b.p = new_block(&r, &b.n, &b.tag);
		if (rng_below(&r, 4) == 0) {	/* local churn too */
			unsigned i = (unsigned)rng_below(&r, 64);
			if (local[i].p)
				check_free(&local[i], "producer");
			local[i] = b;
			continue;
		}
		unsigned qi = (unsigned)rng_below(&r, 2);
		pthread_mutex_lock(&queues[qi].lock);
		if (queues[qi].count < QCAP) {
			queues[qi].q[(queues[qi].head + queues[qi].count++) % QCAP] = b;
			b.p = NULL;
		}
		pthread_mutex_unlock(&queues[qi].lock);
		if (b.p)
			check_free(&b, "producer (queue full)");
		else
			atomic_fetch_add_explicit(&handed, 1, memory_order_relaxed);
	}
	for (unsigned i = 0; i < 64; i++)
		if (local[i].p)
			check_free(&local[i], "producer");
	return NULL;
}

static int take(unsigned qi, struct blk *b)
{
	int got = 0;
	pthread_mutex_lock(&queues[qi].lock);
	if (queues[qi].count) {
		*b = queues[qi].q[queues[qi].head];
		queues[qi].head = (queues[qi].head + 1) % QCAP;
		queues[qi].count--;
		got = 1;
	}
	pthread_mutex_unlock(&queues[qi].lock);
	return got;
}

static void *consumer(void *arg)
{
	unsigned qi = (unsigned)(uintptr_t)arg;
	uint64_t r = 2000 + qi;
	struct blk b;
	for (;;) {
		if (!take(qi, &b)) {
			if (atomic_load_explicit(&stop, memory_order_acquire) == 2)
				break;
			sched_yield();
			continue;
		}
		if (rng_below(&r, 8) == 0) {
			size_t n = pick_size(&r);
			unsigned char *q = ebb_realloc(b.p, n);
			HARD_CHECK(q, "realloc(%zu) failed", n);
			size_t keep = n < b.n ? n : b.n;
			HARD_CHECK(pat_check_clip(q, b.n, keep, b.tag) == SIZE_MAX,
				   "realloc of a foreign block lost contents");
			b.p = q;
			b.n = n;
			pat_fill(q, n, b.tag);
		}
		check_free(&b, "consumer");
		atomic_fetch_add_explicit(&freed_remote, 1, memory_order_relaxed);
	}
	return NULL;
}

static void *napper(void *arg)
{
	uint64_t r = 3000;
	struct blk keep[32];
	(void)arg;
	for (unsigned i = 0; i < 32; i++)
		keep[i].p = new_block(&r, &keep[i].n, &keep[i].tag);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct blk tmp[128];
		for (unsigned i = 0; i < 128; i++)
			tmp[i].p = new_block(&r, &tmp[i].n, &tmp[i].tag);
		for (unsigned i = 0; i < 128; i++)
			check_free(&tmp[i], "napper");	/* into the cache */
		if (rng_below(&r, 4) == 0)
			ebb_thread_idle();
		struct timespec ts = { 0, 20 * 1000 * 1000 };	/* > EBB_TCACHE_IDLE_MS */
		nanosleep(&ts, NULL);
		atomic_fetch_add_explicit(&naps, 1, memory_order_relaxed);
		for (unsigned i = 0; i < 32; i++) {
			size_t bad = pat_check(keep[i].p, keep[i].n, keep[i].tag);
			HARD_CHECK(bad == SIZE_MAX, "napper: kept block corrupt after a nap at %zu", bad);
		}
	}
	for (unsigned i = 0; i < 32; i++)
		check_free(&keep[i], "napper");
	return NULL;
}

static void *reclaimer(void *arg)
{
	struct ebb_stats st;
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		ebb_reclaim(1 << 20);
		HARD_CHECK(ebb_stats(&st) == 0, "ebb_stats");
		ebb_malloc_trim(0);
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0;
	pthread_t t[6];
	ebb_free(ebb_malloc(1));
	HARD_CHECK(pthread_create(&t[0], NULL, producer, (void *)0) == 0, "pthread_create");
	HARD_CHECK(pthread_create(&t[1], NULL, producer, (void *)1) == 0, "pthread_create");
	HARD_CHECK(pthread_create(&t[2], NULL, consumer, (void *)0) == 0, "pthread_create");
	HARD_CHECK(pthread_create(&t[3], NULL, consumer, (void *)1) == 0, "pthread_create");
	HARD_CHECK(pthread_create(&t[4], NULL, napper, NULL) == 0, "pthread_create");
	HARD_CHECK(pthread_create(&t[5], NULL, reclaimer, NULL) == 0, "pthread_create");
	struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	pthread_join(t[4], NULL);
	pthread_join(t[5], NULL);
	atomic_store(&stop, 2);		/* consumers drain the queues, then stop */
	pthread_join(t[2], NULL);
	pthread_join(t[3], NULL);
	for (unsigned i = 0; i < narenas; i++)
		HARD_CHECK(arena_is_valid(arenas[i]), "arena %u fails its invariant walker", i);
	/* every block went back: what is still active is in caches */
	ebb_thread_idle();
	struct ebb_stats st;
	HARD_CHECK(ebb_stats(&st) == 0, "ebb_stats");
	HARD_CHECK(st.huge_count == 0, "%llu huge blocks still live", (unsigned long long)st.huge_count);
	HARD_CHECK(handed > 0 && freed_remote == handed, "handed %llu blocks, %llu freed remotely",
		   (unsigned long long)handed, (unsigned long long)freed_remote);
	HARD_CHECK(naps > 0, "the napper never napped");
	/* freed blocks may wait in the arenas' transfer caches (not
	 * allocated, but their slabs still active) until a reclaim pass or
	 * a trim returns them to their slabs */
	HARD_CHECK(st.allocated_bytes == 0 && st.tcache_bytes == 0,
		   "blocks lost: every block was freed and every thread cache flushed, yet allocated %llu, "
		   "cached %llu bytes", (unsigned long long)st.allocated_bytes, (unsigned long long)st.tcache_bytes);
	HARD_CHECK(ebb_malloc_trim(0) >= 0, "trim");
	HARD_CHECK(ebb_stats(&st) == 0, "ebb_stats");
	HARD_CHECK(st.allocated_bytes == 0 && st.active_bytes == 0 && st.tcache_bytes == 0,
		   "blocks lost: every block was freed, every cache flushed and trimmed, yet allocated %llu, "
		   "active %llu, cached %llu bytes", (unsigned long long)st.allocated_bytes,
		   (unsigned long long)st.active_bytes, (unsigned long long)st.tcache_bytes);
	printf("xthread: %llu remote frees, %llu naps, %llu tcache flushes, threads %llu: ok\n",
	       (unsigned long long)freed_remote, (unsigned long long)naps,
	       (unsigned long long)st.tcache_flushes, (unsigned long long)st.threads);
	return 0;
}
