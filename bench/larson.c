/*
 * larson.c - a larson-like server simulation.
 *
 * `threads` workers each own an array of `slots` live blocks (sizes
 * `min`..`max` bytes, uniform, as in Larson and Krishnan's benchmark).
 * A worker repeatedly picks a random slot, frees its block and puts a new
 * one there, writing into it. After `rounds` replacements the worker
 * starts a successor thread, hands it the array and exits: the successor
 * frees blocks allocated by a thread that is gone (cross-thread frees from
 * a dead thread's cache), which is what a server's short-lived connection
 * threads do. Runs for `secs` seconds; ops = replacements (one free plus
 * one malloc). Seeds derive from (worker, generation).
 */
#include <pthread.h>
#include <stdatomic.h>
#include "bench.h"

struct worker {
	void **slot;
	long nslots, rounds;
	size_t min, max;
	unsigned idx, gen;
	long ops;
};

static atomic_int stop;
static atomic_long total_ops;
static atomic_int live_threads;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = ((uint64_t)w->idx << 32) ^ w->gen ^ 0x1a750000u;
	long n = 0;

	while (n < w->rounds) {
		for (int k = 0; k < 64; k++, n++) {
			long i = (long)(rng_next(&seed) % (uint64_t)w->nslots);
			size_t sz = rng_range(&seed, w->min, w->max);
			char *p;

			free(w->slot[i]);
			p = bench_xmalloc(sz);
			p[0] = (char)n;
			p[sz - 1] = (char)i;
			w->slot[i] = p;
		}
		if (atomic_load_explicit(&stop, memory_order_relaxed))
			break;
	}
	atomic_fetch_add_explicit(&total_ops, n, memory_order_relaxed);
	if (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		pthread_t t;

		w->gen++;
		if (pthread_create(&t, NULL, worker_main, w) == 0) {
			pthread_detach(t);
			return NULL;
		}
		perror("pthread_create");
	}
	atomic_fetch_sub_explicit(&live_threads, 1, memory_order_release);
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *const keys[] = { "threads", "slots", "min", "max",
					     "rounds", "secs", NULL };
	long nthreads, secs;
	struct worker *w;
	double t0, c0, t1, c1;
	long gens = 0;

	bench_check_args(argc, argv, keys);
	nthreads = bench_arg(argc, argv, "threads", 4);
	secs = bench_arg(argc, argv, "secs", 3);
	w = bench_map(sizeof(*w) * (size_t)nthreads);
	for (long t = 0; t < nthreads; t++) {
		uint64_t seed = 0x5eed0000u + (uint64_t)t;

		w[t].nslots = bench_arg(argc, argv, "slots", 1000);
		w[t].rounds = bench_arg(argc, argv, "rounds", 20000);
		w[t].min = (size_t)bench_arg(argc, argv, "min", 8);
		w[t].max = (size_t)bench_arg(argc, argv, "max", 1000);
		w[t].idx = (unsigned)t;
		w[t].slot = bench_map(sizeof(void *) * (size_t)w[t].nslots);
		for (long i = 0; i < w[t].nslots; i++)
			w[t].slot[i] = bench_xmalloc(rng_range(&seed, w[t].min, w[t].max));
	}
	bench_phase("start", 0);
	t0 = bench_now();
	c0 = bench_cpu();
	atomic_store(&live_threads, (int)nthreads);
	for (long t = 0; t < nthreads; t++) {
		pthread_t th;

		if (pthread_create(&th, NULL, worker_main, &w[t]) != 0) {
			perror("pthread_create");
			return 1;
		}
		pthread_detach(th);
	}
	bench_sleep_ms(secs * 1000);
	atomic_store(&stop, 1);
	while (atomic_load_explicit(&live_threads, memory_order_acquire) > 0)
		bench_sleep_ms(1);
	t1 = bench_now();
	c1 = bench_cpu();
	for (long t = 0; t < nthreads; t++) {
		gens += w[t].gen;
		for (long i = 0; i < w[t].nslots; i++)
			free(w[t].slot[i]);
	}
	bench_result((double)atomic_load(&total_ops), t1 - t0, c1 - c0,
		     "threads=%ld generations=%ld", nthreads, gens);
	return 0;
}
