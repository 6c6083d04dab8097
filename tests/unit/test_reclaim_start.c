/* test_reclaim_start.c - regression test "the reclaim thread was started
 * from inside a thread cache's flush" (2048dab).
 *
 * The first free that releases a run asks for the reclaim thread. It used
 * to start it right there, inside the flush; preloaded, pthread_create
 * mallocs on the flushing thread, and with array bins that malloc could
 * find a stack half-moved and overflow it. Now the request is noted
 * (reclaim_start_wanted) and the next slow path starts the thread on
 * entry, before it touches a bin.
 *
 * Linked with --wrap=pthread_create: the wrapper notes whether it was
 * called while the test was flushing a bin, and mallocs through ebb_* as
 * pthread_create does in a preloaded process, so that a start from the
 * wrong place also disturbs the cache the walker then looks at. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>

#include "internal.h"

static int in_flush, created, created_in_flush;

int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	created++;
	created_in_flush += in_flush;
	void *v[8];
	for (int i = 0; i < 8; i++)
		v[i] = ebb_malloc((size_t)16 << (2 * i));	/* 16 B .. 256 KiB */
	for (int i = 0; i < 8; i++)
		ebb_free(v[i]);
	return __real_pthread_create(t, attr, fn, arg);
}

/* both walkers, inside the idle-flush gate (the reclaim thread may be
 * stealing this cache otherwise, once it runs) */
static int caches_valid(void)
{
	tcache_t *tc = tcache_self();
	int ok = 1;
	for (unsigned i = 0; i < narenas; i++)
		ok &= arena_is_valid(arenas[i]);
	tcache_enter(tc);
	ok &= tcache_is_valid(tc);
	tcache_exit(tc);
	return ok;
}

static void test_flush_defers_reclaim_start(void **state)
{
	(void)state;
	setenv("EBB_RECLAIM", "thread", 1);
	ebb_init_slow();
	ebb_free(ebb_malloc(64));	/* this thread's cache is set up */
	tcache_t *tc = tcache_self();
	assert_int_equal(tc->state, TC_ACTIVE);
	/* page-run blocks (no transfer cache): returning them releases runs */
	unsigned cls = sizeclass_of(64 << 10);
	assert_true(cls > NSMALL);
	tbin_t *b = &tc->bins[cls];
	for (int i = 0; i < 4; i++)
		tcache_bin_dry(tc, cls);
	unsigned n = tbin_max(b) < 4 ? tbin_max(b) : 4;
	assert_true(n >= 2);
	void *v[4];
	for (unsigned i = 0; i < n; i++)
		v[i] = ebb_malloc(64 << 10);
	for (unsigned i = 0; i < n; i++)
		ebb_free(v[i]);
	assert_int_equal(tbin_count(b), n);
	assert_int_equal(created, 0);	/* nothing was released yet */

	tcache_enter(tc);
	in_flush = 1;
	tcache_flush_bin(tc, cls, 0);	/* releases runs: the reclaim thread is wanted */
	in_flush = 0;
	tcache_exit(tc);
	assert_int_equal(created_in_flush, 0);
	assert_int_equal(created, 0);
	assert_int_equal(atomic_load(&reclaim_start_wanted), 1);
	assert_true(caches_valid());

	/* the next slow path (sizes above the small classes always take
	 * one) starts it, on entry */
	void *big = ebb_malloc(1 << 20);
	assert_non_null(big);
	assert_int_equal(created, 1);
	assert_int_equal(atomic_load(&reclaim_start_wanted), 0);
	ebb_free(big);
	assert_true(caches_valid());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_defers_reclaim_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
