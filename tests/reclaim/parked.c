/*
 * parked.c - issue 6's parked-threads scenario, the test point of issue 6
 * (point 4): idle threads pin nothing.
 *
 * NTH = 1000 threads each churn ~300 KiB in mixed sizes (16 B .. 8 KiB,
 * log-uniform, with up to 64 blocks live at a time), keep ~11 KiB of it
 * live and park on a condition variable (no allocator call while parked).
 * The main thread reads ebb_stats() (found with dlsym in the preloaded
 * process):
 *  - at every sample, while threads start, churn and park:
 *    tcache_bytes <= threads x tcache_max_bytes (the documented bound;
 *    threads = caches alive, <= 1001);
 *  - once all are parked: within 2 x EBB_TCACHE_IDLE_MS (default 1000 ms)
 *    tcache_bytes must fall to <= 1 MiB per 100 parked threads;
 *  - informational: tcache_bytes when the last thread parked (shows there
 *    was something to flush), RSS then and 6 s later (issue 6's target:
 *    <= 40 MiB with default options; glibc 286 MiB, jemalloc 1.15 GiB,
 *    tcmalloc 1.2 GiB, mimalloc 2.0 GiB measured in the issue).
 * The waits are bounds; nothing is timed.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "rtest.h"

#define NTH		1000
#define CHURN_BYTES	(300 * KiB)
#define KEEP_BYTES	(11 * KiB)
#define LIVE_MAX	64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER, parked_cv = PTHREAD_COND_INITIALIZER;
static int nparked, release_all;
static _Atomic int n_bad;
static size_t live_total;

static void *worker(void *arg)
{
	uint64_t seed = 99 + (uintptr_t)arg;
	void *live[LIVE_MAX] = { 0 };
	size_t sz[LIVE_MAX] = { 0 };
	size_t churned = 0;
	while (churned < CHURN_BYTES) {
		unsigned i = (unsigned)(rt_rand(&seed) % LIVE_MAX);
		free(live[i]);
		sz[i] = rt_size(&seed, 16, 8 * KiB);
		live[i] = malloc(sz[i]);
		if (!live[i]) {
			n_bad++;
			break;
		}
		memset(live[i], 0x11, sz[i]);
		churned += sz[i];
	}
	/* keep ~11 KiB live, free the rest */
	size_t kept = 0;
	for (unsigned i = 0; i < LIVE_MAX; i++) {
		if (live[i] && kept + sz[i] <= KEEP_BYTES) {
			kept += sz[i];
			continue;
		}
		free(live[i]);
		live[i] = NULL;
	}
	pthread_mutex_lock(&lock);
	live_total += kept;
	nparked++;
	pthread_cond_signal(&parked_cv);
	while (!release_all)
		pthread_cond_wait(&park_cv, &lock);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < LIVE_MAX; i++) {
		if (live[i] && ((unsigned char *)live[i])[sz[i] - 1] != 0x11)
			n_bad++;
		free(live[i]);
	}
	return NULL;
}

static size_t max_bytes;
static unsigned long samples, bound_violations;

static void sample_bound(struct ebb_stats *st)
{
	rt_stats(st);
	samples++;
	if (st->tcache_bytes > st->threads * max_bytes || st->threads > NTH + 1) {
		if (bound_violations++ < 5)
			printf("FAIL: tcache_bytes %llu > %llu threads x %zu\n",
			       (unsigned long long)st->tcache_bytes, (unsigned long long)st->threads,
			       max_bytes);
	}
}

int main(void)
{
	static pthread_t th[NTH];
	struct ebb_stats st;
	setvbuf(stdout, NULL, _IOLBF, 0);
	max_bytes = (size_t)rt_opt("tcache_max_bytes", 1 * MiB);
	uint64_t idle_ms = rt_opt("tcache_idle_ms", 1000);
	printf("parked: %d threads, tcache_max_bytes %zu, tcache_idle_ms %llu\n", NTH, max_bytes,
	       (unsigned long long)idle_ms);
	size_t rss0 = rt_rss_bytes();
	for (unsigned i = 0; i < NTH; i++) {
		int e = pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
		if (e) {
			printf("cannot create thread %u: %s\n", i, strerror(e));
			if (e == EAGAIN && i < NTH / 2) {
				printf("the machine allows too few threads for this test\n");
				return 77;
			}
			return 1;
		}
		if (i % 25 == 0)
			sample_bound(&st);
	}
	pthread_mutex_lock(&lock);
	while (nparked < NTH) {
		pthread_mutex_unlock(&lock);
		sample_bound(&st);
		rt_sleep_ms(5);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	double t0 = rt_now();
	sample_bound(&st);
	size_t at_park = st.tcache_bytes, rss_park = rt_rss_bytes();
	size_t target = (size_t)NTH / 100 * MiB;
	double window = 2.0 * (double)idle_ms / 1000.0;
	int reached = 0;
	size_t low = at_park;
	while (rt_now() - t0 < window) {
		sample_bound(&st);
		if (st.tcache_bytes < low)
			low = st.tcache_bytes;
		if (st.tcache_bytes <= target) {
			reached = 1;
			break;
		}
		rt_sleep_ms(20);
	}
	size_t at_reach = st.tcache_bytes;
	while (rt_now() - t0 < 6.0) {
		sample_bound(&st);
		rt_sleep_ms(100);
	}
	size_t rss6 = rt_rss_bytes();
	printf("live kept %.1f MiB; tcache_bytes: %.1f MiB when all %d parked, %s %.2f MiB "
	       "(target <= %.1f MiB within %.1f s)%s; %.1f MiB 6 s after; threads %llu\n",
	       rt_mib(live_total), rt_mib(at_park), NTH, reached ? "then" : "lowest",
	       rt_mib(reached ? at_reach : low), rt_mib(target), window,
	       reached ? "" : " NOT reached", rt_mib(st.tcache_bytes),
	       (unsigned long long)st.threads);
	printf("RSS (informational; issue 6 target <= 40 MiB): start %.1f MiB, all parked %.1f MiB, "
	       "6 s after %.1f MiB; dirty %.1f MiB, active %.1f MiB; %lu stats samples\n",
	       rt_mib(rss0), rt_mib(rss_park), rt_mib(rss6), rt_mib(st.dirty_bytes),
	       rt_mib(st.active_bytes), samples);
	if (at_park <= target)
		printf("note: the caches held no more than the target when the threads parked\n");
	CHECK(bound_violations == 0, "%lu of %lu samples broke the cached-bytes bound", bound_violations,
	      samples);
	CHECK(reached, "tcache_bytes still >= %.2f MiB %.1f s after %d threads parked (target %.1f MiB)",
	      rt_mib(low), window, NTH, rt_mib(target));
	CHECK(st.tcache_bytes <= target, "tcache_bytes back up to %.1f MiB 6 s after parking",
	      rt_mib(st.tcache_bytes));
	pthread_mutex_lock(&lock);
	release_all = 1;
	pthread_cond_broadcast(&park_cv);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < NTH; i++)
		pthread_join(th[i], NULL);
	CHECK(n_bad == 0, "%d workers failed to allocate or lost a kept block", (int)n_bad);
	return rt_result("parked");
}
