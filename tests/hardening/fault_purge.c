/*
 * fault_purge.c BACKEND WHEN/ERRNO - purge failures injected into one
 * reclaim backend (alloc/fault.c); linked with libebbmalloc-ebb.a.
 *
 * BACKEND is vector, madvise or uring (the caller sets the same in
 * EBB_RECLAIM_BACKEND, see run_fault_purge.sh); WHEN/ERRNO is the fault
 * rule for that backend's call (process_madvise, madvise, io_uring submit),
 * e.g. "1-/EPERM" or "rand:0.5/EAGAIN".
 *
 * Workload: 1500 blocks of 4 KiB..96 KiB, every other one freed so that the
 * dirty runs sit between live blocks, then 12 rounds of churn (free, trim,
 * reallocate, calloc) with ebb_malloc_trim(0) purging on this thread and
 * the reclaim thread purging at once (EBB_DECAY_MS=0) beside it. Checks:
 *  - every live block keeps its pattern after every purge (no live byte is
 *    purged, whatever failed), calloc memory is zero, arena walkers pass;
 *  - failures were injected (fault_injected > 0);
 *  - an errno that means "this backend cannot work here" (EPERM, ENOSYS,
 *    EOPNOTSUPP, EINVAL) makes ebbmalloc fall back: the backend in use
 *    changes, backend_fallbacks grows, and the same purges succeed
 *    (purged_bytes grows while the fault is armed);
 *  - a transient errno (EAGAIN, EINTR, EBUSY) does not: the backend stays,
 *    and with every call failing ("1-") nothing is counted as purged;
 *  - when the fault is removed, purging works again (purged_bytes grows).
 * Exit 77 when BACKEND is not usable on this kernel at all.
 */
#include <sys/resource.h>
#include "internal.h"
#include "fault.h"
#include "hard.h"

#define NBLK 1500

static unsigned char *blk[NBLK];
static size_t blk_n[NBLK];
static uint64_t blk_tag[NBLK], tag_next = 1;
static uint64_t rng = 12345;

static void check_arenas(const char *when)
{
	for (unsigned i = 0; i < narenas; i++)
		HARD_CHECK(arena_is_valid(arenas[i]), "arena %u fails its invariant walker %s", i, when);
}

static void put(unsigned i)
{
	blk_n[i] = 4096 + rng_below(&rng, 92 << 10);
	if (rng_below(&rng, 4) == 0) {
		blk[i] = ebb_calloc(1, blk_n[i]);
		HARD_CHECK(blk[i], "calloc(%zu) failed", blk_n[i]);
		HARD_CHECK(zero_check(blk[i], blk_n[i]), "calloc(%zu) = %p not zeroed (a failed purge "
			   "left old bytes that calloc trusted)", blk_n[i], (void *)blk[i]);
	} else {
		blk[i] = ebb_malloc(blk_n[i]);
		HARD_CHECK(blk[i], "malloc(%zu) failed", blk_n[i]);
	}
	blk_tag[i] = tag_next++;
	pat_fill(blk[i], blk_n[i], blk_tag[i]);
}

static void drop(unsigned i)
{
	if (!blk[i])
		return;
	size_t bad = pat_check(blk[i], blk_n[i], blk_tag[i]);
	HARD_CHECK(bad == SIZE_MAX, "block %u (%p, %zu bytes) corrupt at %zu", i, (void *)blk[i],
		   blk_n[i], bad);
	ebb_free(blk[i]);
	blk[i] = NULL;
}

static void check_live(const char *when)
{
	for (unsigned i = 0; i < NBLK; i++)
		if (blk[i]) {
			size_t bad = pat_check(blk[i], blk_n[i], blk_tag[i]);
			HARD_CHECK(bad == SIZE_MAX, "%s: live block %u (%p, %zu bytes) corrupt at %zu",
				   when, i, (void *)blk[i], blk_n[i], bad);
		}
}

/* free a random half, purge, check, reallocate */
static void churn(int rounds, const char *when)
{
	for (int r = 0; r < rounds; r++) {
		for (unsigned i = (unsigned)r & 1; i < NBLK; i += 2)
			if (rng_below(&rng, 2))
				drop(i);
		ebb_malloc_trim(0);
		check_live(when);
		for (unsigned i = 0; i < NBLK; i++)
			if (!blk[i])
				put(i);
		check_live(when);
	}
	/* leave holes for the next purge */
	for (unsigned i = 0; i < NBLK; i += 2)
		drop(i);
	ebb_malloc_trim(0);
	check_live(when);
}

static int is_fallback_errno(const char *rule)
{
	return strstr(rule, "EPERM") || strstr(rule, "ENOSYS") || strstr(rule, "EOPNOTSUPP") ||
	       strstr(rule, "EINVAL");
}

int main(int argc, char **argv)
{
	struct ebb_stats st0, st1, st2;
	char spec[128];
	const char *op;

	if (argc != 3)
		hard_fail("usage: fault_purge vector|madvise|uring WHEN/ERRNO");
	if (!strcmp(argv[1], "vector"))
		op = "pmadvise";
	else if (!strcmp(argv[1], "madvise"))
		op = "madvise";
	else if (!strcmp(argv[1], "uring"))
		op = "uring";
	else
		hard_fail("unknown backend %s", argv[1]);
	enum fault_op fop = !strcmp(op, "pmadvise") ? FAULT_PMADVISE :
			    !strcmp(op, "madvise") ? FAULT_MADVISE : FAULT_URING;

	for (unsigned i = 0; i < NBLK; i++)
		put(i);
	churn(1, "warm-up");		/* selects the backend */
	HARD_CHECK(ebb_stats(&st0) == 0, "ebb_stats");
	if (strcmp(st0.backend, argv[1]))
		hard_skip("backend %s is not usable here (%s in use): nothing to inject into",
			  argv[1], st0.backend);

	snprintf(spec, sizeof(spec), "%s=%s", op, argv[2]);
	HARD_CHECK(fault_configure(spec) == 0, "fault_configure(%s)", spec);
	churn(12, spec);
	HARD_CHECK(ebb_stats(&st1) == 0, "ebb_stats");
	uint64_t inj = fault_injected(fop);
	HARD_CHECK(inj > 0, "%s: no failure injected in %llu calls", spec,
		   (unsigned long long)fault_calls(fop));
	check_arenas(spec);
	printf("%s with %s: %llu of %llu calls failed; backend %s -> %s, fallbacks %llu -> %llu, "
	       "purged %llu -> %llu MiB\n", argv[1], spec, (unsigned long long)inj,
	       (unsigned long long)fault_calls(fop), st0.backend, st1.backend,
	       (unsigned long long)st0.backend_fallbacks, (unsigned long long)st1.backend_fallbacks,
	       (unsigned long long)(st0.purged_bytes >> 20), (unsigned long long)(st1.purged_bytes >> 20));

	if (is_fallback_errno(argv[2])) {
		HARD_CHECK(strcmp(st1.backend, st0.backend) != 0,
			   "%s: backend %s still in use after it failed with a fallback errno", spec,
			   st0.backend);
		HARD_CHECK(st1.backend_fallbacks > st0.backend_fallbacks, "%s: no fallback counted", spec);
		HARD_CHECK(st1.purged_bytes > st0.purged_bytes,
			   "%s: the fallback backend purged nothing", spec);
	} else {
		HARD_CHECK(strcmp(st1.backend, st0.backend) == 0,
			   "%s: a transient failure switched the backend %s -> %s", spec, st0.backend,
			   st1.backend);
		if (!strncmp(argv[2], "1-/", 3))
			HARD_CHECK(st1.purged_bytes == st0.purged_bytes,
				   "%s: every purge failed but %llu bytes were counted as purged", spec,
				   (unsigned long long)(st1.purged_bytes - st0.purged_bytes));
	}

	/* the OS recovers: purging works again */
	HARD_CHECK(fault_configure(NULL) == 0, "fault_configure");
	churn(3, "after the faults stopped");
	HARD_CHECK(ebb_stats(&st2) == 0, "ebb_stats");
	HARD_CHECK(st2.purged_bytes > st1.purged_bytes,
		   "no purge succeeded after the faults stopped (backend %s)", st2.backend);
	check_arenas("at the end");
	for (unsigned i = 0; i < NBLK; i++)
		drop(i);
	printf("fault_purge %s %s: ok\n", argv[1], argv[2]);
	return 0;
}
