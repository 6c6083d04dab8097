/*
 * preload_oom.c window|random|rlimit - the hardening workload through the
 * standard malloc API, run with the allocator under LD_PRELOAD while the
 * OS refuses memory. Passes under glibc too (where EBB_FAULT means nothing,
 * only rlimit mode can fail allocations; the others then fail for lack of
 * failures, which is what a missing injection should do).
 *
 *  window  EBB_FAULT=mmap=40-400: calls 40 to 400 of os_map fail. 4
 *          threads run the workload (allocations may fail, cleanly) with
 *          blocks handed between them, until failures have been seen and a
 *          huge allocation succeeds again (the window is over); then 3000
 *          operations per thread in which nothing may fail (recovery).
 *  random  EBB_FAULT with rand: rules (mmap, mremap, madvise...): 4 threads,
 *          12000 operations each, failures allowed (and required), no crash,
 *          no corruption.
 *  rlimit  under `ulimit -v` (RLIMIT_AS, 1.5 GiB in test-hardening): the
 *          workload (6000 operations per thread) plus 8 big blocks
 *          (32..160 MiB, patterned at both ends) per thread exhausts the
 *          address space; failures allowed (and required); then everything
 *          is freed and a 256 MiB block and 3000 operations per thread must
 *          succeed.
 * Every live block is pattern-checked before it is freed and at the end of
 * each phase.
 */
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#define W_MALLOC(n)		malloc(n)
#define W_CALLOC(k, n)		calloc(k, n)
#define W_REALLOC(p, n)		realloc(p, n)
#define W_POSIX_MEMALIGN(o, a, n) posix_memalign(o, a, n)
#define W_ALIGNED_ALLOC(a, n)	aligned_alloc(a, n)
#define W_MEMALIGN(a, n)	memalign(a, n)
#define W_FREE(p)		free(p)
#define W_USABLE(p)		malloc_usable_size(p)
#include "workload.h"

#define NTHR 4
#define MAXB ((size_t)8 << 20)

enum { M_WINDOW, M_RANDOM, M_RLIMIT };
static int mode;

struct thr {
	pthread_t t;
	struct wheap w;
	char name[16];
	struct wslot big[8];
	uint64_t big_fails;
};
static struct thr th[NTHR];
static struct w_handoff handoff = W_HANDOFF_INIT;
static _Atomic uint64_t total_fails;

/* big blocks: pattern at both ends only (touching every page of 32..160
 * MiB blocks would make the test a page-fault benchmark) */
static void big_fill(struct wslot *s)
{
	pat_fill_range(s->p, 0, PAT_FULL, s->tag);
	pat_fill_range(s->p, s->n - PAT_FULL, s->n, s->tag);
}

static int big_ok(const struct wslot *s)
{
	return pat_check_range(s->p, 0, PAT_FULL, s->tag) == SIZE_MAX &&
	       pat_check_range(s->p, s->n - PAT_FULL, s->n, s->tag) == SIZE_MAX;
}

static void big_step(struct thr *t)
{
	unsigned i = (unsigned)rng_below(&t->w.rng, 8);
	struct wslot *s = &t->big[i];
	if (s->p) {
		HARD_CHECK(big_ok(s), "big block corrupt");
		free(s->p);
		s->p = NULL;
		return;
	}
	size_t n = ((size_t)32 << 20) + rng_below(&t->w.rng, (size_t)128 << 20);
	errno = 0;
	void *p = malloc(n);
	if (!p) {
		HARD_CHECK(errno == ENOMEM, "malloc(%zu) NULL with errno %d", n, errno);
		t->big_fails++;
		return;
	}
	s->p = p;
	s->n = n;
	s->tag = atomic_fetch_add(&w_tag_next, 1);
	big_fill(s);
}

static void *phase1(void *arg)
{
	struct thr *t = arg;
	t->w.fail_ok = 1;
	for (uint64_t k = 0; k < (mode == M_WINDOW ? 400000 : mode == M_RANDOM ? 12000 : 6000); k++) {
		w_step(&t->w);
		if (rng_below(&t->w.rng, 8) == 0)
			w_handoff_put(&handoff, &t->w, (unsigned)rng_below(&t->w.rng, t->w.nslots));
		if (rng_below(&t->w.rng, 4) == 0)
			w_handoff_take(&handoff, t->name);
		if (mode == M_RLIMIT && rng_below(&t->w.rng, 16) == 0)
			big_step(t);
		if (rng_below(&t->w.rng, 3000) == 0)
			malloc_trim(0);
		if (mode == M_WINDOW && atomic_load(&total_fails) + t->w.fails > 0 && k % 64 == 0) {
			/* over once a huge block can be mapped again: one
			 * over twice the workload's largest, which no block
			 * in the huge cache can serve (trimmed or grown) */
			void *p = malloc(4 * MAXB);
			if (p) {
				free(p);
				break;
			}
		}
	}
	atomic_fetch_add(&total_fails, t->w.fails + t->big_fails);
	w_check_all(&t->w, "end of the failing phase");
	return NULL;
}

static void *phase2(void *arg)
{
	struct thr *t = arg;
	t->w.fail_ok = 0;
	for (int k = 0; k < 3000; k++)
		w_step(&t->w);
	w_free_all(&t->w);
	return NULL;
}

static void run(void *(*fn)(void *))
{
	for (unsigned i = 0; i < NTHR; i++)
		HARD_CHECK(pthread_create(&th[i].t, NULL, fn, &th[i]) == 0, "pthread_create");
	for (unsigned i = 0; i < NTHR; i++)
		pthread_join(th[i].t, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		hard_fail("usage: preload_oom window|random|rlimit");
	mode = !strcmp(argv[1], "window") ? M_WINDOW : !strcmp(argv[1], "random") ? M_RANDOM
		: !strcmp(argv[1], "rlimit") ? M_RLIMIT : -1;
	HARD_CHECK(mode >= 0, "unknown mode %s", argv[1]);
	if (mode == M_RLIMIT) {
		struct rlimit rl;
		HARD_CHECK(getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY,
			   "rlimit mode needs a finite RLIMIT_AS (run under ulimit -v)");
	}
	for (unsigned i = 0; i < NTHR; i++) {
		snprintf(th[i].name, sizeof(th[i].name), "thread %u", i);
		w_init(&th[i].w, 300, 7 + i, MAXB, th[i].name);
	}
	run(phase1);
	w_handoff_drain(&handoff, "drain");
	for (unsigned i = 0; i < NTHR; i++)
		for (unsigned j = 0; j < 8; j++)
			if (th[i].big[j].p) {
				struct wslot *s = &th[i].big[j];
				HARD_CHECK(big_ok(s), "big block corrupt");
				free(s->p);
				s->p = NULL;
			}
	uint64_t fails = atomic_load(&total_fails);
	HARD_CHECK(fails > 0, "%s: no allocation failed: nothing was tested (EBB_FAULT not "
		   "honoured, or the limit too high)", argv[1]);
	if (mode == M_RANDOM) {
		for (unsigned i = 0; i < NTHR; i++)
			w_free_all(&th[i].w);
		printf("preload_oom random: %llu clean failures, no corruption: ok\n",
		       (unsigned long long)fails);
		return 0;
	}
	if (mode == M_RLIMIT) {
		for (unsigned i = 0; i < NTHR; i++)
			w_free_all(&th[i].w);
		malloc_trim(0);
		void *p = malloc((size_t)256 << 20);
		HARD_CHECK(p, "256 MiB after freeing everything under the limit failed (errno %d)", errno);
		pat_fill(p, (size_t)256 << 20, 99);
		HARD_CHECK(pat_check(p, (size_t)256 << 20, 99) == SIZE_MAX, "256 MiB block corrupt");
		free(p);
	}
	run(phase2);
	printf("preload_oom %s: %llu clean failures, then recovery: ok\n", argv[1],
	       (unsigned long long)fails);
	return 0;
}
