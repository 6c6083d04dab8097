/*
 * hard.h - helpers shared by the hardening tests (tests/hardening/) and the
 * fuzz harness (tests/fuzz/): fill patterns that say which block they
 * belong to, a seeded PRNG, and failure reporting with liburing-style exit
 * codes (0 pass, 1 fail, 77 skip with the reason on the last line).
 *
 * A block of n bytes tagged t holds pat_byte(t, i) at offset i: fully up to
 * PAT_FULL bytes, beyond that in its first and last PAT_FULL bytes and 8
 * bytes at every 4 KiB (every page of a big block is checked, cheaply).
 * Tags are unique per allocation, so a block that overlaps another, or that
 * is handed out twice, or whose bytes the kernel zeroed (a purge of a live
 * page) fails the check.
 */
#ifndef HARD_H
#define HARD_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAT_FULL 1024u

/* The fuzz harness defines this to keep coverage and ASan instrumentation
 * out of the pattern loops (they are the test's, not the allocator's, and
 * were most of its time). */
#ifndef HARD_NOCOV
#define HARD_NOCOV
#endif

HARD_NOCOV static inline unsigned char pat_byte(uint64_t tag, size_t i)
{
	uint64_t x = tag * 0x9e3779b97f4a7c15ull + (uint64_t)(i >> 3) * 0xff51afd7ed558ccdull;
	return (unsigned char)((x >> 56) ^ (i & 7) ^ 0x5a);
}

HARD_NOCOV static inline void pat_fill_range(unsigned char *p, size_t from, size_t to, uint64_t tag)
{
	for (size_t i = from; i < to; i++)
		p[i] = pat_byte(tag, i);
}

/* returns the first bad offset, or SIZE_MAX */
HARD_NOCOV static inline size_t pat_check_range(const unsigned char *p, size_t from, size_t to, uint64_t tag)
{
	for (size_t i = from; i < to; i++)
		if (p[i] != pat_byte(tag, i))
			return i;
	return SIZE_MAX;
}

HARD_NOCOV static inline void pat_fill(void *vp, size_t n, uint64_t tag)
{
	unsigned char *p = vp;
	if (n <= 2 * PAT_FULL) {
		pat_fill_range(p, 0, n, tag);
		return;
	}
	pat_fill_range(p, 0, PAT_FULL, tag);
	pat_fill_range(p, n - PAT_FULL, n, tag);
	for (size_t off = 4096; off + 8 <= n - PAT_FULL; off += 4096)
		pat_fill_range(p, off, off + 8, tag);
}

/* Check the bytes pat_fill(p, n, tag) wrote that lie below limit (a block
 * that realloc shrank, or moved, keeps them): first bad offset or SIZE_MAX. */
HARD_NOCOV static inline size_t pat_check_clip(const void *vp, size_t n, size_t limit, uint64_t tag)
{
	const unsigned char *p = vp;
	size_t bad;
#define PAT_CLIP(a, b) ((a) < limit ? ((b) < limit ? (b) : limit) : (a))
	if (n <= 2 * PAT_FULL)
		return pat_check_range(p, 0, PAT_CLIP(0, n), tag);
	if ((bad = pat_check_range(p, 0, PAT_CLIP(0, PAT_FULL), tag)) != SIZE_MAX)
		return bad;
	if ((bad = pat_check_range(p, n - PAT_FULL, PAT_CLIP(n - PAT_FULL, n), tag)) != SIZE_MAX)
		return bad;
	for (size_t off = 4096; off + 8 <= n - PAT_FULL && off < limit; off += 4096)
		if ((bad = pat_check_range(p, off, PAT_CLIP(off, off + 8), tag)) != SIZE_MAX)
			return bad;
#undef PAT_CLIP
	return SIZE_MAX;
}

HARD_NOCOV static inline size_t pat_check(const void *vp, size_t n, uint64_t tag)
{
	return pat_check_clip(vp, n, n, tag);
}

/* Same sampling, but every sampled byte must be zero (calloc). */
HARD_NOCOV static inline int zero_check(const void *vp, size_t n)
{
	const unsigned char *p = vp;
	size_t lim = n <= 2 * PAT_FULL ? n : PAT_FULL;
	for (size_t i = 0; i < lim; i++)
		if (p[i])
			return 0;
	if (n <= 2 * PAT_FULL)
		return 1;
	for (size_t i = n - PAT_FULL; i < n; i++)
		if (p[i])
			return 0;
	for (size_t off = 4096; off + 8 <= n - PAT_FULL; off += 4096)
		for (size_t i = off; i < off + 8; i++)
			if (p[i])
				return 0;
	return 1;
}

/* xorshift64*: per-thread, seeded, reproducible */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return n ? rng_next(s) % n : 0;
}

/* A size: mostly small, often large, sometimes huge (up to max_bytes). */
static inline size_t rng_size(uint64_t *s, size_t max_bytes)
{
	uint64_t r = rng_below(s, 100);
	size_t n;
	if (r < 60)
		n = 1 + rng_below(s, 512);
	else if (r < 80)
		n = 1 + rng_below(s, 32768);
	else if (r < 93)
		n = 32769 + rng_below(s, (2u << 20) - 32768);
	else
		n = (2u << 20) + 1 + rng_below(s, 6u << 20);
	return n > max_bytes ? 1 + n % max_bytes : n;
}

__attribute__((format(printf, 1, 2), noreturn))
static inline void hard_fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	fflush(stderr);
	exit(1);
}

__attribute__((format(printf, 1, 2), noreturn))
static inline void hard_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(77);
}

#define HARD_CHECK(cond, ...) \
	do { if (!(cond)) hard_fail(__VA_ARGS__); } while (0)

#endif /* HARD_H */
