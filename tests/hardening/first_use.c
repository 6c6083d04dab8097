/*
 * first_use.c [THREADS] - the process's first allocations, from several
 * threads at once, through the ebb_* API (libebbmalloc-ebb.a has no
 * constructor: the first call initialises the library). THREADS threads
 * (default 4) wait at a barrier, then each makes its first ebb_malloc of
 * its own size class and goes on with patterned blocks of every small
 * class; whichever call comes first runs the global start-up while the
 * others' fast paths run. Under TSan (`make check-tsan`) a fast path that
 * reads the size-class table, or anything start-up writes, before its
 * thread has synchronised with the start-up is a reported race: a thread's
 * fast paths are closed (their bounds 0) until its cache is set up. Exit
 * 0 when every block kept its pattern and every call succeeded.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "ebbmalloc.h"
#include "hard.h"

#define MAXTH	16
static pthread_barrier_t go;
static _Atomic unsigned failures;

static void *worker(void *arg)
{
	unsigned idx = (unsigned)(uintptr_t)arg;
	void *blk[64];
	size_t sz[64];
	pthread_barrier_wait(&go);
	/* the first call: a size of its own, so the threads read different
	 * entries of the tables start-up writes */
	for (unsigned round = 0; round < 200; round++) {
		for (unsigned i = 0; i < 64; i++) {
			sz[i] = round == 0 && i == 0 ? 16 + idx * 48 : (size_t)((i * 37 + round * 11 + idx) % 2048);
			blk[i] = ebb_malloc(sz[i]);
			if (!blk[i]) {
				printf("FAIL: ebb_malloc(%zu) returned NULL\n", sz[i]);
				failures++;
				return NULL;
			}
			pat_fill(blk[i], sz[i], (uint64_t)idx << 32 | round << 8 | i);
		}
		for (unsigned i = 0; i < 64; i++) {
			size_t bad = pat_check(blk[i], sz[i], (uint64_t)idx << 32 | round << 8 | i);
			if (bad != SIZE_MAX) {
				printf("FAIL: thread %u block %p (%zu bytes) corrupt at %zu\n", idx, blk[i], sz[i], bad);
				failures++;
			}
			ebb_free(blk[i]);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
	pthread_t th[MAXTH];
	if (n < 2 || n > MAXTH) {
		fprintf(stderr, "usage: first_use [THREADS 2..%d]\n", MAXTH);
		return 2;
	}
	pthread_barrier_init(&go, NULL, n);
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
			printf("FAIL: pthread_create\n");
			return 1;
		}
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	printf("first_use: %u threads, %u failures\n", n, failures);
	return failures != 0;
}
