/*
 * fault_mbind.c - a failing mbind is advisory (run with EBB_NUMA_FAKE=2);
 * linked with libebbmalloc-ebb.a.
 *
 * numa/bind.c consults the fault hook before it looks at the node, so with
 * two fake nodes every new chunk goes through the failing bind. One thread
 * per CPU (pinned where possible, so both nodes' arenas get chunks)
 * allocates ~96 MiB in 64 KiB..1 MiB blocks, every block patterned. Checks:
 * every allocation succeeds, failures were injected and counted
 * (bind_failures), every block keeps its pattern, arena walkers pass; then
 * with the fault removed the same again.
 * Exit 77 when the fake topology did not come up with 2 nodes.
 */
#include <unistd.h>
#include <sched.h>
#include "internal.h"
#include "fault.h"
#include "hard.h"

extern _Atomic uint64_t bind_failures;	/* numa/bind.c */

#define NB 160

struct thr {
	pthread_t t;
	unsigned cpu;
	uint64_t seed;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	static __thread unsigned char *b[NB];
	static __thread size_t n[NB];
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(t->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);	/* best effort */
	uint64_t rng = t->seed;
	for (int round = 0; round < 2; round++) {
		for (unsigned i = 0; i < NB; i++) {
			n[i] = (64u << 10) + rng_below(&rng, 960u << 10);
			b[i] = ebb_malloc(n[i]);
			HARD_CHECK(b[i], "malloc(%zu) failed with mbind failing (errno %d)", n[i], errno);
			pat_fill(b[i], n[i], t->seed * 1000 + i);
		}
		for (unsigned i = 0; i < NB; i++) {
			size_t bad = pat_check(b[i], n[i], t->seed * 1000 + i);
			HARD_CHECK(bad == SIZE_MAX, "block %p corrupt at %zu", (void *)b[i], bad);
			if (round == 0 && (i & 1))
				continue;	/* keep half: the next round needs new chunks */
			ebb_free(b[i]);
		}
	}
	return NULL;
}

static void run(uint64_t seed)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct thr th[4];
	unsigned nt = ncpu < 2 ? 2 : ncpu > 4 ? 4 : (unsigned)ncpu;
	for (unsigned i = 0; i < nt; i++) {
		th[i].cpu = i % (unsigned)(ncpu > 0 ? ncpu : 1);
		th[i].seed = seed + i;
		HARD_CHECK(pthread_create(&th[i].t, NULL, thr_main, &th[i]) == 0, "pthread_create");
	}
	for (unsigned i = 0; i < nt; i++)
		pthread_join(th[i].t, NULL);
	for (unsigned i = 0; i < narenas; i++)
		HARD_CHECK(arena_is_valid(arenas[i]), "arena %u fails its walker", i);
}

int main(void)
{
	ebb_free(ebb_malloc(1));
	if (nnodes != 2)
		hard_skip("EBB_NUMA_FAKE=2 gave %u node(s) (fewer than 2 online CPUs?)", nnodes);
	HARD_CHECK(fault_configure("mbind=1-/EIO") == 0, "fault_configure");
	uint64_t bf0 = atomic_load(&bind_failures);
	run(1);
	uint64_t inj = fault_injected(FAULT_MBIND);
	HARD_CHECK(inj > 0, "no mbind failure injected (%llu calls): no new chunk was made?",
		   (unsigned long long)fault_calls(FAULT_MBIND));
	HARD_CHECK(atomic_load(&bind_failures) - bf0 == inj,
		   "bind_failures grew by %llu, %llu failures were injected",
		   (unsigned long long)(atomic_load(&bind_failures) - bf0), (unsigned long long)inj);
	HARD_CHECK(fault_configure(NULL) == 0, "fault_configure");
	run(100);
	printf("fault_mbind: %llu binds failed, every allocation served: ok\n", (unsigned long long)inj);
	return 0;
}
