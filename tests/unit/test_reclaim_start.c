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
 * wrong place also disturbs the cache the walker then looks at.
 *
 * Second, "no reclaim thread is started from inside the fork child's
 * handlers" (4761648): the child flushes the caches of the threads that
 * did not come with it, which releases runs; the thread must wait until
 * fork has returned, and the child's structures (transfer caches
 * included, f7662d5) must pass the walkers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

static int in_flush, created, created_in_flush;
static pid_t parent_pid;
static volatile int fork_returned = 1;	/* 0 from just before fork until it returns */
static int created_in_atfork;

int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	created++;
	created_in_flush += in_flush;
	created_in_atfork += getpid() != parent_pid && !fork_returned;
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

static int pipe_go[2], pipe_ready[2];

/* a thread whose cache holds page-run blocks (their return releases runs)
 * and small blocks, parked in read(2) while the main thread forks */
static void *holder(void *arg)
{
	(void)arg;
	void *big[4], *small[64];
	for (int i = 0; i < 4; i++)
		big[i] = ebb_malloc(64 << 10);
	for (int i = 0; i < 64; i++)
		small[i] = ebb_malloc(96);
	for (int i = 0; i < 4; i++)
		ebb_free(big[i]);
	for (int i = 0; i < 64; i++)
		ebb_free(small[i]);
	char c = 1;
	if (write(pipe_ready[1], &c, 1) != 1 || read(pipe_go[0], &c, 1) != 1)
		abort();	/* (not cmocka's asserts: this is another thread of a child) */
	return NULL;
}

/* The grandchild's side: fork returned; nothing was started before. */
static int after_fork_in_child(void)
{
	if (created_in_atfork)
		return 2;	/* started inside the child's handlers */
	if (!caches_valid())
		return 3;
#ifndef __SANITIZE_THREAD__	/* TSan dies when a multi-threaded fork's child starts threads */
	int before = created;
	void *w[4];
	for (int i = 0; i < 4; i++)
		w[i] = ebb_malloc(64 << 10);
	for (int i = 0; i < 4; i++)
		ebb_free(w[i]);
	ebb_thread_idle();		/* runs released: the thread is wanted */
	ebb_free(ebb_malloc(1 << 20));	/* a slow path: started lazily, now */
	if (created != before + 1)
		return 4;
#endif
	return caches_valid() ? 0 : 5;
}

/* In a child of the test (single-threaded, no reclaim thread): a holder
 * thread's cache is set up with reclaim off (so that no reclaim thread
 * exists, as in a process whose thread is not started yet), reclaim goes
 * to "thread", and the process forks while the holder is parked. */
static int fork_scenario(void)
{
	char mode[16];
	size_t len = sizeof(mode);
	if (ebb_ctl("reclaim", mode, &len, "off", 4) != 0)
		return 10;
	if (pipe(pipe_go) || pipe(pipe_ready))
		return 11;
	pthread_t th;
	if (__real_pthread_create(&th, NULL, holder, NULL) != 0)
		return 12;
	char c;
	if (read(pipe_ready[0], &c, 1) != 1)
		return 13;
	void *v[40];		/* some small blocks in the transfer caches too */
	for (int i = 0; i < 40; i++)
		v[i] = ebb_malloc(96);
	for (int i = 0; i < 40; i++)
		ebb_free(v[i]);
	ebb_thread_idle();
	if (ebb_ctl("reclaim", NULL, NULL, "thread", 7) != 0 || created != 0)
		return 14;
	parent_pid = getpid();
	fork_returned = 0;
	pid_t pid = fork();
	fork_returned = 1;
	if (pid == 0)
		_exit(after_fork_in_child());
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 15;
	ebb_ctl("reclaim", NULL, NULL, "off", 4);	/* the holder's exit starts nothing */
	c = 1;
	if (write(pipe_go[1], &c, 1) != 1)
		return 16;
	pthread_join(th, NULL);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 20;
}

static void test_fork_child_handlers_start_no_thread(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fork_scenario());
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int setup(void **state)
{
	(void)state;
	setenv("EBB_RECLAIM", "thread", 1);
	ebb_init_slow();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fork_child_handlers_start_no_thread),
		cmocka_unit_test(test_flush_defers_reclaim_start),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
