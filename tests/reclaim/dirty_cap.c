/*
 * dirty_cap.c - dirty memory beyond the cap is purged at once, oldest
 * first, without waiting for the decay (issue 4, point 4); below the cap
 * it waits for the decay.
 *
 * Run with EBB_DECAY_MS=600000 (nothing decays during the test) and the
 * default dirty_cap_pct (25 % of active memory, at least 16 MiB):
 *
 *  1. 64 MiB of 1 MiB blocks are allocated and written, and kept (active).
 *  2. 8 MiB more are allocated, written and freed: below the cap, so after
 *     a second they must still be dirty (purged_bytes unchanged).
 *  3. 192 MiB more are allocated, written and freed (dirty ~200 MiB, far
 *     over the cap of max(25 % of 64 MiB, 16 MiB) = 16 MiB): the hold
 *     (dirty_hold_ms, 1 s) keeps it while the peak is recent; within 10 s
 *     dirty must fall to <= the cap, purged_bytes must grow by >= 200 MiB -
 *     cap, and RSS must drop with it.
 *
 * In "expect-none" mode (run with EBB_RECLAIM=off) step 3 must purge
 * nothing: proves the checks can fail and that the reclaim thread did it.
 * The windows bound waits; nothing is timed.
 */
#include "rtest.h"

#define BLK	MiB
#define KEEP	64
#define SMALL	8
#define BIG	192
#define CAP	(16 * MiB)	/* max(25 % of KEEP MiB, 16 MiB) */

static void *grab(void)
{
	void *p = malloc(BLK);
	if (p)
		memset(p, 0x5a, BLK);
	return p;
}

static struct ebb_stats stats(void)
{
	struct ebb_stats st;
	rt_stats(&st);
	return st;
}

int main(int argc, char **argv)
{
	int expect_none = argc > 1 && strcmp(argv[1], "expect-none") == 0;
	static void *keep[KEEP], *small[SMALL], *big[BIG];
	for (int i = 0; i < KEEP; i++)
		CHECK((keep[i] = grab()) != NULL, "malloc");
	/* 2: below the cap */
	for (int i = 0; i < SMALL; i++)
		CHECK((small[i] = grab()) != NULL, "malloc");
	struct ebb_stats st0 = stats();
	for (int i = 0; i < SMALL; i++)
		free(small[i]);
	rt_sleep_ms(1000);
	struct ebb_stats st1 = stats();
	CHECK(st1.purged_bytes == st0.purged_bytes,
	      "%llu bytes purged while dirty memory (%llu) was below the cap and the decay far away",
	      (unsigned long long)(st1.purged_bytes - st0.purged_bytes), (unsigned long long)st1.dirty_bytes);
	CHECK(st1.dirty_bytes >= (SMALL - 1) * BLK, "only %llu bytes dirty after freeing %d MiB",
	      (unsigned long long)st1.dirty_bytes, SMALL);
	/* 3: far over it */
	for (int i = 0; i < BIG; i++)
		CHECK((big[i] = grab()) != NULL, "malloc");
	size_t rss_full = rt_rss_bytes();
	struct ebb_stats st2 = stats();
	for (int i = 0; i < BIG; i++)
		free(big[i]);
	double t0 = rt_now();
	struct ebb_stats st3 = stats();
	while (rt_now() - t0 < 10.0) {
		st3 = stats();
		if (st3.dirty_bytes <= CAP && st3.purging_bytes == 0)
			break;
		rt_sleep_ms(20);
	}
	uint64_t purged = st3.purged_bytes - st2.purged_bytes;
	size_t rss = rt_rss_bytes();
	rt_note("dirty_cap: active %llu MiB, dirty %llu MiB after freeing %d MiB, %llu MiB purged, RSS %zu -> %zu MiB",
		(unsigned long long)(st3.active_bytes / MiB), (unsigned long long)(st3.dirty_bytes / MiB), BIG,
		(unsigned long long)(purged / MiB), rss_full / MiB, rss / MiB);
	if (expect_none) {
		CHECK(purged == 0 && st3.dirty_bytes > CAP, "reclaim off, yet %llu bytes purged (dirty %llu)",
		      (unsigned long long)purged, (unsigned long long)st3.dirty_bytes);
	} else {
		CHECK(st3.dirty_bytes <= CAP, "dirty %llu bytes, over the cap of %zu, 10 s after the fall",
		      (unsigned long long)st3.dirty_bytes, CAP);
		CHECK(purged >= (BIG + SMALL) * BLK - CAP, "only %llu bytes purged of %d MiB freed",
		      (unsigned long long)purged, BIG + SMALL);
		CHECK(rss + (BIG * BLK - CAP) <= rss_full + 4 * MiB, "RSS %zu -> %zu MiB: it did not drop with the purge",
		      rss_full / MiB, rss / MiB);
	}
	for (int i = 0; i < KEEP; i++)
		free(keep[i]);
	return rt_result("dirty_cap");
}
