/*
 * frag.c - fragmentation: small holes, then medium objects, then nothing.
 *
 *   1. fill `small_mib` MiB with objects of 64 B..4 KiB (uniform), written
 *   2. free every other one                          (PHASE half_freed)
 *   3. fill `medium_mib` MiB with objects of 8..64 KiB (PHASE medium_filled)
 *   4. free everything                               (PHASE freed_all)
 *   5. idle `idle_ms` ms                             (PHASE idle_end: RSS read)
 *
 * The medium objects do not fit in the holes of step 2, so an allocator
 * must find new memory for them; after step 4 nothing is live, so whatever
 * RSS is left at step 5 is memory the allocator kept. The smallest possible
 * peak is small/2 + medium (printed as min_peak). ops = mallocs.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	static const char *const keys[] = { "small_mib", "medium_mib", "idle_ms", NULL };
	size_t small, medium, live = 0, maxn;
	long idle_ms, ns = 0, nm = 0;
	void **sp, **mp;
	uint64_t seed = 0xf4a6u;
	double t0, c0, t1, c1;

	bench_check_args(argc, argv, keys);
	small = (size_t)bench_arg(argc, argv, "small_mib", 1024) << 20;
	medium = (size_t)bench_arg(argc, argv, "medium_mib", 1024) << 20;
	idle_ms = bench_arg(argc, argv, "idle_ms", 2000);
	maxn = small / 64 + 1;
	sp = bench_map(sizeof(void *) * maxn);
	mp = bench_map(sizeof(void *) * (medium / 8192 + 1));
	bench_phase("start", 0);
	t0 = bench_now();
	c0 = bench_cpu();
	for (size_t filled = 0; filled < small; ns++) {
		size_t n = rng_range(&seed, 64, 4096);

		sp[ns] = bench_xmalloc(n);
		memset(sp[ns], (int)ns, n);
		filled += n;
		live += n;
	}
	bench_phase_measure("small_filled", (long long)live);
	seed = 0xf4a6u;	/* replay the sizes to account for what is freed */
	for (long i = 0; i < ns; i++) {
		size_t n = rng_range(&seed, 64, 4096);

		if (i & 1)
			continue;
		live -= n;
		free(sp[i]);
		sp[i] = NULL;
	}
	bench_phase_measure("half_freed", (long long)live);
	for (size_t filled = 0; filled < medium; nm++) {
		size_t n = rng_range(&seed, 8192, 65536);

		mp[nm] = bench_xmalloc(n);
		memset(mp[nm], (int)nm, n);
		filled += n;
		live += n;
	}
	bench_phase_measure("medium_filled", (long long)live);
	for (long i = 1; i < ns; i += 2)
		free(sp[i]);
	for (long i = 0; i < nm; i++)
		free(mp[i]);
	t1 = bench_now();
	c1 = bench_cpu();
	bench_phase("freed_all", 0);
	bench_sleep_ms(idle_ms);
	bench_phase_measure("idle_end", 0);
	bench_result((double)(ns + nm), t1 - t0, c1 - c0, "min_peak=%zu",
		     small / 2 + medium);
	return 0;
}
