/*
 * stress.h - helpers shared by the stress and bad-input test programs.
 *
 * Owns: the fixed-seed generator (xorshift64*), the byte pattern every test
 * writes into a live block and checks before freeing it, the "which
 * allocator serves this process" probe, and the failure reporting.
 *
 * The programs use only the standard malloc API, so each runs against
 * glibc as built, or against any replacement under LD_PRELOAD. When the
 * environment says STRESS_EXPECT_ALLOCATOR=ebbmalloc (tests/stress/preload.sh sets
 * it when it preloads libebbmalloc.so), a program that does not find
 * ebbmalloc in the process fails instead of silently testing glibc.
 *
 * Header-only: every function is static inline, so each test is one .c.
 */
#ifndef EBB_STRESS_H
#define EBB_STRESS_H

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- fixed-seed generator ------------------------------------------------ */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t rng_seed(uint64_t base, uint64_t stream)
{
	uint64_t s = base * 0x9E3779B97F4A7C15ULL + stream * 0xBF58476D1CE4E5B9ULL + 1;

	if (s == 0)
		s = 0x1234567;
	for (int i = 0; i < 4; i++)
		rng_next(&s);
	return s;
}

/* uniform in [0, n) (n > 0); the bias is irrelevant for testing. */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

/* log-uniform size in [lo, hi] so every size class gets traffic. */
static inline size_t rng_size_log(uint64_t *s, size_t lo, size_t hi)
{
	unsigned lo_bits = 0, hi_bits = 0;

	while (((size_t)1 << lo_bits) < lo + 1)
		lo_bits++;
	while (((size_t)1 << hi_bits) < hi)
		hi_bits++;
	unsigned bits = lo_bits + (unsigned)rng_below(s, hi_bits - lo_bits + 1);
	size_t top = (size_t)1 << bits;
	size_t v = top / 2 + (size_t)rng_below(s, top / 2 + 1);

	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return v;
}

/* ---- the pattern ----------------------------------------------------------
 * Byte i of a block with tag t is pat_byte(t, i). The tag is unique per
 * allocation, so a block that is handed out twice, purged while live
 * (reads back as zeros) or overwritten by a neighbour shows up.
 */
static inline unsigned char pat_byte(uint64_t tag, size_t i)
{
	uint64_t x = tag + (uint64_t)(i >> 3) * 0x9E3779B97F4A7C15ULL;

	x ^= x >> 29;
	return (unsigned char)((x >> ((i & 7) * 8)) ^ 0x5A);
}

static inline void pat_fill(void *p, size_t n, uint64_t tag)
{
	unsigned char *b = p;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x = tag + (uint64_t)(i >> 3) * 0x9E3779B97F4A7C15ULL;
		x ^= x >> 29;
		x ^= 0x5A5A5A5A5A5A5A5AULL;
		memcpy(b + i, &x, 8);
	}
	for (; i < n; i++)
		b[i] = pat_byte(tag, i);
}

/* Returns the offset of the first wrong byte, or (size_t)-1 if all good. */
static inline size_t pat_check(const void *p, size_t n, uint64_t tag)
{
	const unsigned char *b = p;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x = tag + (uint64_t)(i >> 3) * 0x9E3779B97F4A7C15ULL, y;
		x ^= x >> 29;
		x ^= 0x5A5A5A5A5A5A5A5AULL;
		memcpy(&y, b + i, 8);
		if (x != y)
			break;
	}
	for (; i < n; i++)
		if (b[i] != pat_byte(tag, i))
			return i;
	return (size_t)-1;
}

/* Offset of the first non-zero byte, or (size_t)-1. */
static inline size_t zero_check(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return i;
	return (size_t)-1;
}

/* ---- failure reporting -------------------------------------------------- */
static atomic_ulong stress_failures;

#define FAIL(...) do { \
	atomic_fetch_add_explicit(&stress_failures, 1, memory_order_relaxed); \
	fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); \
} while (0)

static inline unsigned long stress_failed(void)
{
	return atomic_load_explicit(&stress_failures, memory_order_relaxed);
}

/* ---- which allocator -------------------------------------------------- */
static inline const char *stress_allocator(void)
{
	if (dlsym(RTLD_DEFAULT, "ebb_malloc"))
		return "ebbmalloc";
	if (dlsym(RTLD_DEFAULT, "mallctl"))
		return "jemalloc";
	if (dlsym(RTLD_DEFAULT, "tc_malloc"))
		return "tcmalloc";
	if (dlsym(RTLD_DEFAULT, "mi_malloc"))
		return "mimalloc";
	return "glibc";
}

static inline int stress_is_ebbmalloc(void)
{
	return strcmp(stress_allocator(), "ebbmalloc") == 0;
}

/* ebbmalloc's fastfree build (libebbmalloc-fastfree.so): told by the file
 * the allocator was loaded from, not by anything the harness sets. */
static inline int stress_is_fastfree(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "ebb_malloc");

	return sym && dladdr(sym, &info) && info.dli_fname &&
	       strstr(info.dli_fname, "libebbmalloc-fastfree") != NULL;
}

static inline int stress_is_glibc(void)
{
	return strcmp(stress_allocator(), "glibc") == 0;
}

/* Prints the allocator; returns 0, or 1 if the environment expected
 * ebbmalloc and it is not there (a preload that silently failed). */
static inline int stress_banner(const char *prog)
{
	const char *want = getenv("STRESS_EXPECT_ALLOCATOR");
	const char *have = stress_allocator();

	printf("%s: allocator %s\n", prog, have);
	fflush(stdout);
	if (want && *want && strcmp(want, have) != 0) {
		fprintf(stderr, "FAIL %s: expected allocator %s, found %s (LD_PRELOAD=%s)\n",
			prog, want, have, getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
		return 1;
	}
	return 0;
}

static inline long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	char *end;
	long x;

	if (!v || !*v)
		return dflt;
	errno = 0;
	x = strtol(v, &end, 0);
	if (errno || *end || x < 0) {
		fprintf(stderr, "warning: bad %s=%s, using %ld\n", name, v, dflt);
		return dflt;
	}
	return x;
}

/* Monotonic seconds: used only to bound how long a test runs, never to
 * judge it. */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
