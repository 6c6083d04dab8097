/*
 * bench.h - shared helpers for the C workloads in bench/.
 *
 * Every workload is one file, uses plain malloc/free (so any allocator can be
 * preloaded with LD_PRELOAD), takes its parameters as key=value arguments
 * (e.g. `bench_frag small_mib=64 idle_ms=500`), seeds its random numbers
 * deterministically, and talks to bench/run through stdout lines:
 *
 *   PHASE <name> live=<bytes>      a marker; the runner timestamps it and
 *                                  reads the RSS of the process at once
 *   RESULT ops=N secs=S cpu_secs=C key=value...   one line, at the end
 *
 * Book-keeping arrays that are not part of the workload come from mmap, so
 * they do not disturb the allocator under test.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system) of the whole process, all threads. */
static inline double bench_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static inline void bench_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* splitmix64: tiny, deterministic, good enough for workload shapes. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
	return lo + rng_next(s) % (hi - lo + 1);
}

/* Log-uniform in [lo, hi]: as many 16-32 B objects as 1-2 KiB ones. */
static inline size_t rng_logsize(uint64_t *s, size_t lo, size_t hi)
{
	unsigned lb = 63 - (unsigned)__builtin_clzll(lo);
	unsigned hb = 63 - (unsigned)__builtin_clzll(hi);
	unsigned b = (unsigned)rng_range(s, lb, hb);
	size_t base = (size_t)1 << b;
	size_t v = base + (size_t)(rng_next(s) % base);

	return v < lo ? lo : v > hi ? hi : v;
}

static inline long bench_arg(int argc, char **argv, const char *key, long dflt)
{
	size_t n = strlen(key);

	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
			return strtol(argv[i] + n + 1, NULL, 0);
	return dflt;
}

static inline void bench_check_args(int argc, char **argv, const char *const *keys)
{
	for (int i = 1; i < argc; i++) {
		int ok = 0;

		for (const char *const *k = keys; *k; k++) {
			size_t n = strlen(*k);

			if (strncmp(argv[i], *k, n) == 0 && argv[i][n] == '=')
				ok = 1;
		}
		if (!ok) {
			fprintf(stderr, "%s: unknown argument '%s'; valid keys:", argv[0], argv[i]);
			for (const char *const *k = keys; *k; k++)
				fprintf(stderr, " %s=", *k);
			fprintf(stderr, "\n");
			exit(2);
		}
	}
}

/* Memory for book-keeping, outside the allocator under test. */
static inline void *bench_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static inline void *bench_xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "malloc(%zu) failed\n", n);
		exit(1);
	}
	return p;
}

/* Touch one byte per 4 KiB page and the last byte, as a real user would. */
static inline void bench_touch(void *p, size_t n, unsigned char v)
{
	unsigned char *c = p;

	for (size_t i = 0; i < n; i += 4096)
		c[i] = v;
	c[n - 1] = v;
}

static inline void bench_phase(const char *name, long long live_bytes)
{
	printf("PHASE %s live=%lld\n", name, live_bytes);
	fflush(stdout);
}

/* A marker the runner reads RSS at: give it a moment before going on. */
static inline void bench_phase_measure(const char *name, long long live_bytes)
{
	bench_phase(name, live_bytes);
	bench_sleep_ms(100);
}

static inline void bench_result(double ops, double secs, double cpu_secs,
				const char *fmt, ...)
{
	va_list ap;

	printf("RESULT ops=%.0f secs=%.4f cpu_secs=%.4f", ops, secs, cpu_secs);
	if (fmt && *fmt) {
		putchar(' ');
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	fflush(stdout);
}

#endif /* BENCH_H */
