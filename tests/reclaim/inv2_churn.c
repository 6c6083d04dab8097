/*
 * inv2_churn.c - the workload of the invariant-2 test (inv2.sh): several
 * threads allocate and free tens of MiB repeatedly, so that dirty memory
 * crosses the cap, decays and is purged; the main thread calls
 * malloc_trim(0) between rounds. Run under LD_PRELOAD=libebbmalloc.so and
 * strace -f (see inv2.sh, which attributes every purge syscall to a thread).
 *
 * The worker threads run on stacks this program maps itself: glibc then
 * never madvises them at thread exit (it does so for the stacks it
 * allocates), so every madvise in the trace is the allocator's.
 *
 * Output, parsed by inv2.sh:
 *   app TID        one line per application thread (main + workers)
 *   reclaim TID    one line per thread named "ebb-reclaim" at the end
 *   backend NAME   ebb_stats().backend
 *   purged BYTES   ebb_stats().purged_bytes, syscalls N
 * Exit 0 unless the workload itself failed (pattern check, OOM).
 */
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>

#include "rtest.h"

#define NTHREADS	4
#define ROUNDS		6
#define ROUND_BYTES	(24 * MiB)
#define NSLOTS		8192
#define STACK_BYTES	(256 * KiB)

static pid_t app_tids[NTHREADS + 1];
static pthread_barrier_t round_bar;
static _Atomic int failed;

/* A worker that fails keeps meeting the barriers (main must not hang). */
static __attribute__((noreturn)) void worker_fail(int why)
{
	failed = why;
	for (;;) {
		pthread_barrier_wait(&round_bar);
		pthread_barrier_wait(&round_bar);
	}
}

static void *worker(void *arg)
{
	unsigned idx = (unsigned)(uintptr_t)arg;
	app_tids[idx + 1] = rt_gettid();
	uint64_t seed = 0x1234567ull + idx * 7919;
	void **slots = mmap(NULL, NSLOTS * sizeof(void *), PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t *sizes = mmap(NULL, NSLOTS * sizeof(size_t), PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED || sizes == MAP_FAILED)
		worker_fail(1);
	for (int r = 0; r < ROUNDS; r++) {
		size_t total = 0;
		unsigned n = 0;
		while (total < ROUND_BYTES && n < NSLOTS) {
			size_t sz = rt_size(&seed, 16, MiB);
			void *p = malloc(sz);
			if (!p)
				worker_fail(1);
			rt_touch(p, sz);
			rt_fill(p, sz < 64 ? sz : 64, (uint64_t)n);
			slots[n] = p;
			sizes[n] = sz;
			total += sz;
			n++;
		}
		for (unsigned i = 0; i < n; i++) {
			if (rt_check(slots[i], sizes[i] < 64 ? sizes[i] : 64, (uint64_t)i) != (size_t)-1)
				worker_fail(2);
			free(slots[i]);
		}
		/* let dirty memory age past the decay on some rounds */
		if (r % 2)
			rt_sleep_ms(300);
		pthread_barrier_wait(&round_bar);
		pthread_barrier_wait(&round_bar);
	}
	munmap(slots, NSLOTS * sizeof(void *));
	munmap(sizes, NSLOTS * sizeof(size_t));
	return NULL;
}

int main(void)
{
	pthread_t th[NTHREADS];
	void *stacks[NTHREADS];
	app_tids[0] = rt_gettid();
	pthread_barrier_init(&round_bar, NULL, NTHREADS + 1);
	for (unsigned i = 0; i < NTHREADS; i++) {
		pthread_attr_t a;
		stacks[i] = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (stacks[i] == MAP_FAILED) {
			printf("FAIL: cannot map a stack\n");
			return 1;
		}
		pthread_attr_init(&a);
		pthread_attr_setstack(&a, stacks[i], STACK_BYTES);
		if (pthread_create(&th[i], &a, worker, (void *)(uintptr_t)i) != 0) {
			printf("FAIL: pthread_create\n");
			return 1;
		}
		pthread_attr_destroy(&a);
	}
	int trims = 0, trim_released = 0;
	for (int r = 0; r < ROUNDS; r++) {
		pthread_barrier_wait(&round_bar);
		/* all workers freed their round: purge now, from an app thread */
		trim_released += malloc_trim(0);
		trims++;
		pthread_barrier_wait(&round_bar);
	}
	if (failed) {
		printf("FAIL: a worker failed (%s)\n", failed == 2 ? "pattern check" : "out of memory");
		fflush(stdout);
		_exit(1);
	}
	int bad = 0;
	for (unsigned i = 0; i < NTHREADS; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		if (ret) {
			printf("FAIL: worker %u failed (%ld)\n", i, (long)(uintptr_t)ret);
			bad = 1;
		}
	}
	/* let the last frees decay on the reclaim thread too */
	rt_sleep_ms(300);
	for (unsigned i = 0; i <= NTHREADS; i++)
		printf("app %d\n", (int)app_tids[i]);
	pid_t rt[8];
	int nr = rt_threads_named("ebb-reclaim", rt, 8);
	for (int i = 0; i < nr && i < 8; i++)
		printf("reclaim %d\n", (int)rt[i]);
	struct ebb_stats st;
	rt_stats(&st);
	printf("backend %s\n", st.backend);
	printf("purged %llu syscalls %llu batches %llu fallbacks %llu trims %d released %d\n",
	       (unsigned long long)st.purged_bytes, (unsigned long long)st.purge_syscalls,
	       (unsigned long long)st.purge_batches, (unsigned long long)st.backend_fallbacks,
	       trims, trim_released);
	fflush(stdout);
	return bad;
}
