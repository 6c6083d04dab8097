/*
 * purge_fail_slab.c - regression test "a failed purge of slab pages trips
 * ebb_check in arena_purge_done" (linked with libebbmalloc-ebb.a; run with
 * EBB_DECAY_MS=0).
 *
 * Found with EBB_FAULT="pmadvise=3-/EPERM,madvise=rand:0.5/EAGAIN" under
 * tests/stress/mt_stress (and pmadvise=rand:0.5/EAGAIN under canary):
 *   ebbmalloc: internal error: r->kind == RUN_FREE && r->state == ST_PURGING
 *   (alloc/arena.c:699)
 * on the work-in-progress build that purges the free pages of partly used
 * slabs. The scenario it needs: slabs whose free pages form several ranges
 * in one purge batch, purges that fail (the pages stay "resident" and are
 * taken again), and blocks freed into those slabs while their pages are
 * PURGING (so a slab may become wholly free in the middle of a batch).
 *
 * Workload: 2 threads. The owner fills slabs of several classes (64 B ..
 * 8 KiB, multi-page slabs), then frees every block of every other page-sized
 * stripe so each slab has free pages in several places; a second thread
 * frees half the survivors of the first half (remote frees) while the owner
 * runs ebb_malloc_trim(0) in a loop and the reclaim thread purges at once; purge
 * calls fail at random (EAGAIN, no fallback). Rounds repeat with different
 * failure seeds, then once more with purges succeeding. Every live block is
 * pattern-checked after each round, every arena's walker must pass, and at
 * the end everything is freed and nothing is left allocated.
 */
#include <unistd.h>
#include "internal.h"
#include "fault.h"
#include "hard.h"

#define NB 24000

static unsigned char *blk[NB];
static size_t blk_n[NB];
static uint64_t blk_tag[NB];
static _Atomic unsigned remote_lo, remote_hi;
static _Atomic int remote_go, remote_done;

static const size_t classes[] = { 64, 160, 512, 1536, 3072, 8192 };

static void check_one(unsigned i, const char *when)
{
	if (!blk[i])
		return;
	size_t bad = pat_check(blk[i], blk_n[i], blk_tag[i]);
	HARD_CHECK(bad == SIZE_MAX, "%s: block %u (%p, %zu bytes) corrupt at %zu", when, i,
		   (void *)blk[i], blk_n[i], bad);
}

static void drop(unsigned i)
{
	check_one(i, "before free");
	ebb_free(blk[i]);
	blk[i] = NULL;
}

static void *remote_main(void *arg)
{
	(void)arg;
	for (;;) {
		while (!atomic_load(&remote_go))
			usleep(100);
		if (atomic_load(&remote_go) < 0)
			return NULL;
		for (unsigned i = atomic_load(&remote_lo); i < atomic_load(&remote_hi); i++)
			if (blk[i] && (i & 1))
				drop(i);
		atomic_store(&remote_go, 0);
		atomic_store(&remote_done, 1);
	}
}

static void round_(unsigned seed, int faults)
{
	char spec[160];
	uint64_t tag = (uint64_t)seed << 32;
	unsigned i = 0;
	for (unsigned c = 0; c < sizeof(classes) / sizeof(classes[0]); c++)
		for (unsigned k = 0; k < NB / 6; k++, i++) {
			blk_n[i] = classes[c];
			blk[i] = ebb_malloc(blk_n[i]);
			HARD_CHECK(blk[i], "malloc(%zu) failed", blk_n[i]);
			blk_tag[i] = ++tag;
			pat_fill(blk[i], blk_n[i], blk_tag[i]);
		}
	/* free stripes: every block whose address falls in an even 4 KiB
	 * stripe of every other 16 KiB, so slabs get several free ranges */
	for (i = 0; i < NB; i++)
		if ((((uintptr_t)blk[i] >> 12) & 3) == 1 || (((uintptr_t)blk[i] >> 12) & 3) == 2)
			drop(i);
	if (faults) {
		snprintf(spec, sizeof(spec),
			 "pmadvise=rand:0.5/EAGAIN,madvise=rand:0.5/EAGAIN,uring=rand:0.5/EAGAIN,seed=%u",
			 seed);
		HARD_CHECK(fault_configure(spec) == 0, "fault_configure");
	}
	/* the remote thread empties slabs while they are being purged */
	atomic_store(&remote_lo, 0);
	atomic_store(&remote_hi, NB / 2);
	atomic_store(&remote_done, 0);
	atomic_store(&remote_go, 1);
	for (int k = 0; k < 50 && !atomic_load(&remote_done); k++)
		ebb_malloc_trim(0);
	while (!atomic_load(&remote_done))
		ebb_malloc_trim(0);
	for (int k = 0; k < 5; k++)
		ebb_malloc_trim(0);
	for (i = 0; i < NB; i++)
		check_one(i, faults ? spec : "purges succeeding");
	for (unsigned a = 0; a < narenas; a++)
		HARD_CHECK(arena_is_valid(arenas[a]), "arena %u fails its walker after round %u", a, seed);
	HARD_CHECK(fault_configure(NULL) == 0, "fault_configure");
	for (i = 0; i < NB; i++)
		if (blk[i])
			drop(i);
}

int main(void)
{
	pthread_t t;
	ebb_free(ebb_malloc(1));
	HARD_CHECK(pthread_create(&t, NULL, remote_main, NULL) == 0, "pthread_create");
	for (unsigned seed = 1; seed <= 6; seed++)
		round_(seed, 1);
	round_(7, 0);
	atomic_store(&remote_go, -1);
	pthread_join(t, NULL);
	ebb_thread_idle();
	struct ebb_stats st;
	HARD_CHECK(ebb_stats(&st) == 0, "ebb_stats");
	HARD_CHECK(st.allocated_bytes == 0, "%llu bytes still allocated after freeing everything",
		   (unsigned long long)st.allocated_bytes);
	printf("purge_fail_slab: 7 rounds, %llu MiB purged, no corruption: ok\n",
	       (unsigned long long)(st.purged_bytes >> 20));
	return 0;
}
