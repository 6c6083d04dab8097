/*
 * parked.c - many threads churn, keep a little, then park (issue 6).
 *
 * `threads` threads (default 1000, as a JVM's pool of mostly idle threads)
 * start together. Each allocates and frees `churn_kib` KiB of mixed sizes
 * (16 B..32 KiB log-uniform, a window of up to 64 live blocks freed in
 * random order, napping 1 ms every 32 KiB so that all the threads' windows
 * are live at once), then keeps about `keep_kib` KiB of small blocks and
 * parks on a condition variable. When all are parked the program prints PHASE parked, waits
 * `wait_ms` ms and prints PHASE idle_end, where the runner reads RSS: what
 * the allocator still holds for threads that may never run again. About
 * 10 MiB of that is the threads' own stacks. ops = mallocs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include "bench.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t all_parked = PTHREAD_COND_INITIALIZER;
static int parked, release_all, go;
static long churn_bytes, keep_bytes;
static atomic_long total_mallocs, total_kept;

static void *thread_main(void *arg)
{
	uint64_t seed = 0x9a4c0000u + (uint64_t)(uintptr_t)arg;
	void *win[64] = { 0 };
	void *keep[64];
	long done = 0, mallocs = 0, kept = 0;
	int nkeep = 0;

	pthread_mutex_lock(&lock);	/* all start churning together */
	while (!go)
		pthread_cond_wait(&wake, &lock);
	pthread_mutex_unlock(&lock);
	while (done < churn_bytes) {
		unsigned i = (unsigned)(rng_next(&seed) & 63);
		size_t n = rng_logsize(&seed, 16, 32768);

		free(win[i]);
		win[i] = bench_xmalloc(n);
		bench_touch(win[i], n, (unsigned char)i);
		done += (long)n;
		/* Slices of ~32 KiB with a nap between: the threads interleave. */
		if ((done >> 15) != ((done - (long)n) >> 15))
			bench_sleep_ms(1);
		mallocs++;
	}
	for (int i = 0; i < 64; i++)
		free(win[i]);
	while (kept < keep_bytes && nkeep < 64) {
		size_t n = rng_logsize(&seed, 16, 1024);

		keep[nkeep] = bench_xmalloc(n);
		memset(keep[nkeep++], 1, n);
		kept += (long)n;
		mallocs++;
	}
	atomic_fetch_add(&total_mallocs, mallocs);
	atomic_fetch_add(&total_kept, kept);
	pthread_mutex_lock(&lock);
	parked++;
	pthread_cond_signal(&all_parked);
	while (!release_all)
		pthread_cond_wait(&wake, &lock);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < nkeep; i++)
		free(keep[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *const keys[] = { "threads", "churn_kib", "keep_kib",
					     "wait_ms", NULL };
	long n, wait_ms;
	pthread_t *th;
	double t0, c0, t1, c1;

	bench_check_args(argc, argv, keys);
	n = bench_arg(argc, argv, "threads", 1000);
	churn_bytes = bench_arg(argc, argv, "churn_kib", 300) * 1024;
	keep_bytes = bench_arg(argc, argv, "keep_kib", 11) * 1024;
	wait_ms = bench_arg(argc, argv, "wait_ms", 6000);
	th = bench_map(sizeof(*th) * (size_t)n);
	bench_phase("start", 0);
	t0 = bench_now();
	c0 = bench_cpu();
	for (long i = 0; i < n; i++) {
		if (pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)i) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	pthread_mutex_lock(&lock);
	go = 1;
	pthread_cond_broadcast(&wake);
	while (parked < n)
		pthread_cond_wait(&all_parked, &lock);
	pthread_mutex_unlock(&lock);
	t1 = bench_now();
	c1 = bench_cpu();
	bench_phase("parked", atomic_load(&total_kept));
	bench_sleep_ms(wait_ms);
	bench_phase_measure("idle_end", atomic_load(&total_kept));
	pthread_mutex_lock(&lock);
	release_all = 1;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
	for (long i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	bench_result((double)atomic_load(&total_mallocs), t1 - t0, c1 - c0,
		     "threads=%ld kept=%ld", n, atomic_load(&total_kept));
	return 0;
}
