/*
 * fork_stress.c - fork from a threaded process while other threads allocate.
 *
 * FORK_THREADS (2) threads churn malloc/free/realloc with patterns, across
 * size classes, without pause. The main thread forks FORK_ROUNDS (100)
 * times. Each child allocates at once (small, large, huge, calloc, aligned),
 * checks its blocks, frees the blocks the parent had live at the fork
 * (inherited copies, patterns checked), starts a thread that allocates too,
 * every 8th round forks a grandchild that does the same, and exits 0
 * (alternately with exit() and _exit(), so atexit and library destructors
 * run in half the children). A child stuck on an inherited lock is killed
 * by alarm() and reported. The parent checks every status and keeps
 * checking its own blocks afterwards.
 * Exit 0 when every child exited 0 and no pattern was wrong, 1 otherwise.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include "stress.h"

#define NLIVE 256

struct live {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};

static atomic_int stop;
static struct live main_live[NLIVE];

static void *churn(void *arg)
{
	unsigned idx = (unsigned)(uintptr_t)arg;
	uint64_t r = rng_seed(7, idx);
	struct live l[NLIVE] = { 0 };
	uint64_t tag = (uint64_t)(idx + 1) << 40;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct live *s = &l[rng_below(&r, NLIVE)];
		if (s->p) {
			if (pat_check(s->p, s->n, s->tag) != (size_t)-1)
				FAIL("parent thread %u: block %p corrupt", idx, (void *)s->p);
			if (rng_below(&r, 4) == 0) {
				size_t n = rng_size_log(&r, 1, 256 << 10);
				unsigned char *q = realloc(s->p, n);
				if (!q) {
					FAIL("realloc(%zu) = NULL", n);
					continue;
				}
				s->p = q;
				s->n = n;
				pat_fill(q, n, s->tag = ++tag);
				continue;
			}
			free(s->p);
			s->p = NULL;
			continue;
		}
		s->n = rng_below(&r, 64) ? rng_size_log(&r, 1, 64 << 10) : rng_size_log(&r, 64 << 10, 2 << 20);
		s->p = malloc(s->n);
		if (!s->p) {
			FAIL("malloc(%zu) = NULL", s->n);
			continue;
		}
		pat_fill(s->p, s->n, s->tag = ++tag);
	}
	for (unsigned i = 0; i < NLIVE; i++)
		free(l[i].p);
	return NULL;
}

static void *child_thread(void *arg)
{
	uint64_t r = rng_seed(11, (uintptr_t)arg);
	int bad = 0;

	for (int i = 0; i < 100; i++) {
		size_t n = rng_size_log(&r, 1, 256 << 10);
		unsigned char *p = malloc(n);
		if (!p)
			return (void *)1;
		pat_fill(p, n, i);
		bad |= pat_check(p, n, i) != (size_t)-1;
		free(p);
	}
	return (void *)(uintptr_t)bad;
}

/* Everything a child does; returns the exit status it wants. */
static int child_work(unsigned round, int depth)
{
	static const size_t sizes[] = { 1, 16, 100, 1000, 4096, 20000, 100000, 600000, 5 << 20 };
	void *keep[32];
	unsigned nk = 0;
	pthread_t th;
	void *thr_rc;

	alarm(20);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p = malloc(sizes[i]);
		unsigned char *c = calloc(1, sizes[i]);
		void *a = NULL;
		if (!p || !c || posix_memalign(&a, 4096, sizes[i]))
			return 2;
		if (zero_check(c, sizes[i]) != (size_t)-1)
			return 3;
		if ((uintptr_t)a & 4095)
			return 4;
		pat_fill(p, sizes[i], round + i);
		pat_fill(c, sizes[i], round + i + 100);
		keep[nk++] = p;
		keep[nk++] = c;
		free(a);
	}
	/* the parent's main-thread blocks are ours now: check and free them */
	for (unsigned i = 0; i < NLIVE; i++) {
		if (!main_live[i].p)
			continue;
		if (pat_check(main_live[i].p, main_live[i].n, main_live[i].tag) != (size_t)-1)
			return 5;
		free(main_live[i].p);
		main_live[i].p = NULL;
	}
	if (pthread_create(&th, NULL, child_thread, (void *)(uintptr_t)round))
		return 6;
	pthread_join(th, &thr_rc);
	if (thr_rc)
		return 7;
	for (unsigned i = 0; i < nk; i++) {
		unsigned k = i / 2;
		if (pat_check(keep[i], sizes[k], round + k + (i & 1) * 100) != (size_t)-1)
			return 8;
		free(keep[i]);
	}
	if (depth == 0 && round % 8 == 0) {
		pid_t g = fork();
		int st;
		if (g < 0)
			return 9;
		if (g == 0)
			_exit(child_work(round + 1000, 1));
		if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 10;
	}
	return 0;
}

int main(void)
{
	unsigned nthr = (unsigned)env_long("FORK_THREADS", 2);
	unsigned rounds = (unsigned)env_long("FORK_ROUNDS", 100);
	pthread_t th[64];
	uint64_t r = rng_seed(3, 0);
	unsigned ok = 0;

	if (stress_banner("fork_stress"))
		return 1;
	if (nthr > 64)
		nthr = 64;
	for (unsigned t = 0; t < nthr; t++)
		if (pthread_create(&th[t], NULL, churn, (void *)(uintptr_t)t)) {
			FAIL("pthread_create");
			return 1;
		}
	for (unsigned round = 0; round < rounds; round++) {
		int st;
		pid_t pid;

		/* change the main thread's live set between forks */
		for (unsigned k = 0; k < 16; k++) {
			struct live *s = &main_live[rng_below(&r, NLIVE)];
			if (s->p) {
				if (pat_check(s->p, s->n, s->tag) != (size_t)-1)
					FAIL("main: block %p corrupt", (void *)s->p);
				free(s->p);
			}
			s->n = rng_size_log(&r, 1, 512 << 10);
			s->p = malloc(s->n);
			if (!s->p) {
				FAIL("malloc(%zu) = NULL", s->n);
				continue;
			}
			pat_fill(s->p, s->n, s->tag = rng_next(&r));
		}
		fflush(stdout);
		pid = fork();
		if (pid < 0) {
			FAIL("fork: %s", strerror(errno));
			break;
		}
		if (pid == 0) {
			int rc = child_work(round, 0);
			if (round & 1)
				exit(rc);
			_exit(rc);
		}
		if (waitpid(pid, &st, 0) != pid) {
			FAIL("waitpid: %s", strerror(errno));
			break;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
		else if (WIFSIGNALED(st))
			FAIL("round %u: child killed by signal %d%s", round, WTERMSIG(st),
			     WTERMSIG(st) == SIGALRM ? " (stuck for 20 s: deadlock after fork?)" : "");
		else
			FAIL("round %u: child exited %d (see child_work for the step)", round, WEXITSTATUS(st));
		if (stress_failed() > 5)
			break;
	}
	atomic_store(&stop, 1);
	for (unsigned t = 0; t < nthr; t++)
		pthread_join(th[t], NULL);
	for (unsigned i = 0; i < NLIVE; i++) {
		if (main_live[i].p && pat_check(main_live[i].p, main_live[i].n, main_live[i].tag) != (size_t)-1)
			FAIL("main: block %p corrupt at the end", (void *)main_live[i].p);
		free(main_live[i].p);
	}
	printf("fork_stress: %u threads, %u of %u children (and grandchildren) exited 0, %lu failures\n",
	       nthr, ok, rounds, stress_failed());
	return (stress_failed() || ok != rounds) ? 1 : 0;
}
