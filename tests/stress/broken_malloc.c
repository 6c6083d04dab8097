/*
 * broken_malloc.c - a deliberately broken malloc for the self-test of the
 * stress programs (tests/stress/selftest.sh): proof that they can fail.
 *
 * A preload shim over glibc's own __libc_* functions (no dlsym, so no
 * recursion). It exports ebb_malloc so the programs judge it as ebbmalloc
 * (bad_input then demands ebbmalloc's messages, which glibc's free does not
 * print), and ebb_stats (all zero). EBB_BROKEN selects one bug, injected now and then:
 *   none            pass-through (the control: everything must pass)
 *   calloc_dirty    every 64th calloc of >= 256 bytes is not zeroed
 *   realloc_prefix  every 32nd growing realloc damages the first byte
 *   reuse_live      every 997th malloc(<= 256) returns the previous such
 *                   block again, still live
 *   purge_live      every 300th free zeroes 64 bytes of the most recent
 *                   live block of >= 64 KiB (a purge of live memory)
 *   errno_huge      malloc of more than PTRDIFF_MAX returns NULL, errno 0
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ebbmalloc.h"	/* struct ebb_stats: the shim answers ebb_stats() too */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *ebb_malloc(size_t n);
void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void free(void *p);

enum { NONE, CALLOC_DIRTY, REALLOC_PREFIX, REUSE_LIVE, PURGE_LIVE, ERRNO_HUGE };

static int mode = -1;
static atomic_ulong n_calls;
static _Atomic(void *) last_small;
static _Atomic(void *) last_large;

static int broken_mode(void)
{
	if (mode < 0) {
		const char *m = getenv("EBB_BROKEN");	/* getenv does not allocate */
		static const char *names[] = { "none", "calloc_dirty", "realloc_prefix",
					       "reuse_live", "purge_live", "errno_huge" };
		mode = NONE;
		for (int i = 0; m && i < 6; i++)
			if (strcmp(m, names[i]) == 0)
				mode = i;
	}
	return mode;
}

static unsigned long tick(void)
{
	return atomic_fetch_add_explicit(&n_calls, 1, memory_order_relaxed) + 1;
}

void *ebb_malloc(size_t n)
{
	return malloc(n);
}

/* Nothing is ever purged here: the canary's purge check (EBB_DECAY_MS=0)
 * would fail, so selftest.sh runs the canary without it. */
int ebb_stats_sized(struct ebb_stats *out, size_t size)
{
	(void)size;
	memset(out, 0, sizeof(*out));
	out->version = EBB_STATS_VERSION;
	strcpy(out->backend, "broken");
	return 0;
}

void *malloc(size_t n)
{
	void *p;

	if (broken_mode() == ERRNO_HUGE && n > (size_t)PTRDIFF_MAX) {
		errno = 0;
		return NULL;
	}
	if (mode == REUSE_LIVE && n <= 256 && tick() % 997 == 0) {
		p = atomic_load(&last_small);
		if (p)
			return p;
	}
	p = __libc_malloc(n);
	if (mode == REUSE_LIVE && n <= 256)
		atomic_store(&last_small, p);
	if (mode == PURGE_LIVE && n >= (64 << 10))
		atomic_store(&last_large, p);
	return p;
}

void *calloc(size_t a, size_t b)
{
	void *p = __libc_calloc(a, b);

	if (broken_mode() == CALLOC_DIRTY && p && a * b >= 256 && tick() % 64 == 0)
		memset(p, 0xAB, 64);
	return p;
}

void *realloc(void *old, size_t n)
{
	unsigned char *p = __libc_realloc(old, n);

	if (broken_mode() == REALLOC_PREFIX && p && old && n > 16 && tick() % 32 == 0)
		p[0] ^= 0x40;
	return p;
}

void free(void *p)
{
	if (broken_mode() == PURGE_LIVE && p) {
		void *l = atomic_load(&last_large);
		if (l == p)
			atomic_compare_exchange_strong(&last_large, &l, NULL);
		else if (l && tick() % 300 == 0)
			memset((char *)l + 128, 0, 64);
	}
	if (mode == REUSE_LIVE && p == atomic_load(&last_small))
		atomic_store(&last_small, NULL);
	__libc_free(p);
}
