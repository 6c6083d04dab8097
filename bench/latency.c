/*
 * latency.c - tail latency of malloc and free while another thread churns
 * large blocks.
 *
 * The probe thread times every malloc and every free it makes (sizes
 * 16 B..16 KiB log-uniform, a window of 256 live blocks, oldest freed first)
 * with the TSC (x86-64, calibrated against CLOCK_MONOTONIC) or clock_gettime
 * elsewhere, into a log-linear histogram (3 % resolution). Meanwhile the
 * churn thread mallocs blocks of 256 KiB..8 MiB, touches every page, keeps
 * up to 16 of them and frees a random one: that is what makes allocators
 * purge, map and unmap, and a purge done in the probe's path shows in its
 * tail. Runs for `secs` seconds. ops = timed malloc+free pairs. Prints
 * p50/p99/p99.9/max of both in ns.
 */
#include <pthread.h>
#include <stdatomic.h>
#include "bench.h"
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define HBUCKETS 2048

struct hist {
	uint64_t n[HBUCKETS];
	uint64_t count, max;
};

static atomic_int stop;
static double ns_per_tick = 1.0;
static long churn_ops;

static inline uint64_t ticks(void)
{
#if defined(__x86_64__)
	_mm_lfence();
	return __rdtsc();
#else
	return bench_now_ns();
#endif
}

static void calibrate(void)
{
#if defined(__x86_64__)
	uint64_t n0 = bench_now_ns(), t0 = ticks(), n1, t1;

	bench_sleep_ms(200);
	n1 = bench_now_ns();
	t1 = ticks();
	ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
#endif
}

static unsigned hist_index(uint64_t v)
{
	unsigned e, idx;

	if (v < 64)
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);
	idx = 64 + (e - 6) * 32 + (unsigned)((v >> (e - 5)) - 32);
	return idx < HBUCKETS ? idx : HBUCKETS - 1;
}

static uint64_t hist_value(unsigned idx)
{
	unsigned e;

	if (idx < 64)
		return idx;
	e = (idx - 64) / 32 + 6;
	return (uint64_t)((idx - 64) % 32 + 32) << (e - 5);
}

static void hist_add(struct hist *h, uint64_t tk)
{
	uint64_t ns = (uint64_t)((double)tk * ns_per_tick);

	h->n[hist_index(ns)]++;
	h->count++;
	if (ns > h->max)
		h->max = ns;
}

static uint64_t hist_pct(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)((double)h->count * q), seen = 0;

	for (unsigned i = 0; i < HBUCKETS; i++) {
		seen += h->n[i];
		if (seen > want)
			return hist_value(i);
	}
	return h->max;
}

static void *churner(void *arg)
{
	uint64_t seed = 0xb16b10c5u;
	void *blk[16] = { 0 };
	long n = 0;

	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned i = (unsigned)(rng_next(&seed) & 15);
		size_t sz = rng_logsize(&seed, 256 * 1024, 8 * 1024 * 1024);

		free(blk[i]);
		blk[i] = bench_xmalloc(sz);
		bench_touch(blk[i], sz, (unsigned char)n);
		n++;
	}
	for (int i = 0; i < 16; i++)
		free(blk[i]);
	churn_ops = n;
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *const keys[] = { "secs", "churn", NULL };
	long secs, churn;
	struct hist *hm, *hf;
	void *win[256] = { 0 };
	uint64_t seed = 0x1a7e9c7u;
	pthread_t th;
	double t0, c0, t1, c1, deadline;
	long ops = 0;

	bench_check_args(argc, argv, keys);
	secs = bench_arg(argc, argv, "secs", 5);
	churn = bench_arg(argc, argv, "churn", 1);
	hm = bench_map(sizeof(*hm));
	hf = bench_map(sizeof(*hf));
	calibrate();
	/* Warm up: first-touch costs of the probe's window are not the point. */
	for (int i = 0; i < 100000; i++) {
		free(win[i & 255]);
		win[i & 255] = bench_xmalloc(rng_logsize(&seed, 16, 16384));
	}
	bench_phase("start", 0);
	t0 = bench_now();
	c0 = bench_cpu();
	if (churn)
		pthread_create(&th, NULL, churner, NULL);
	deadline = t0 + (double)secs;
	do {
		for (int k = 0; k < 1024; k++, ops++) {
			size_t sz = rng_logsize(&seed, 16, 16384);
			unsigned i = (unsigned)(ops & 255);
			uint64_t a, b, c, d;
			char *p;

			a = ticks();
			p = malloc(sz);
			b = ticks();
			if (!p)
				return 1;
			p[0] = (char)k;
			c = ticks();
			free(win[i]);
			d = ticks();
			win[i] = p;
			hist_add(hm, b - a);
			hist_add(hf, d - c);
		}
	} while (bench_now() < deadline);
	atomic_store(&stop, 1);
	if (churn)
		pthread_join(th, NULL);
	t1 = bench_now();
	c1 = bench_cpu();
	for (int i = 0; i < 256; i++)
		free(win[i]);
	bench_result((double)ops, t1 - t0, c1 - c0,
		     "malloc_p50_ns=%llu malloc_p99_ns=%llu malloc_p999_ns=%llu malloc_max_ns=%llu "
		     "free_p50_ns=%llu free_p99_ns=%llu free_p999_ns=%llu free_max_ns=%llu churn_ops=%ld",
		     (unsigned long long)hist_pct(hm, 0.50), (unsigned long long)hist_pct(hm, 0.99),
		     (unsigned long long)hist_pct(hm, 0.999), (unsigned long long)hm->max,
		     (unsigned long long)hist_pct(hf, 0.50), (unsigned long long)hist_pct(hf, 0.99),
		     (unsigned long long)hist_pct(hf, 0.999), (unsigned long long)hf->max, churn_ops);
	return 0;
}
