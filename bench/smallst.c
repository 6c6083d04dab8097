/*
 * smallst.c - single-thread random small malloc/free.
 *
 * One thread keeps a window of `live` blocks of `min`..`max` bytes
 * (log-uniform, so most are tiny). Each step either replaces a random block
 * of the window (free one, malloc one) or, one step in four, does an
 * immediate malloc/free pair of a random size: the two access patterns of
 * an interpreter or a parser. Runs for `secs` seconds; ops = mallocs (each
 * with its free).
 */
#include "bench.h"

int main(int argc, char **argv)
{
	static const char *const keys[] = { "live", "min", "max", "secs", NULL };
	long nlive, secs;
	size_t min, max;
	void **win;
	uint64_t seed = 0x51a11u;
	double t0, c0, t1, c1, deadline;
	long ops = 0;

	bench_check_args(argc, argv, keys);
	nlive = bench_arg(argc, argv, "live", 4096);
	secs = bench_arg(argc, argv, "secs", 3);
	min = (size_t)bench_arg(argc, argv, "min", 8);
	max = (size_t)bench_arg(argc, argv, "max", 512);
	win = bench_map(sizeof(void *) * (size_t)nlive);
	for (long i = 0; i < nlive; i++)
		win[i] = bench_xmalloc(rng_logsize(&seed, min, max));
	bench_phase("start", 0);
	t0 = bench_now();
	c0 = bench_cpu();
	deadline = t0 + (double)secs;
	do {
		for (int k = 0; k < 4096; k++, ops++) {
			uint64_t r = rng_next(&seed);
			size_t sz = rng_logsize(&seed, min, max);
			char *p = bench_xmalloc(sz);

			p[0] = (char)k;
			if ((r & 3) == 0) {
				free(p);
			} else {
				long i = (long)((r >> 2) % (uint64_t)nlive);

				free(win[i]);
				win[i] = p;
			}
		}
	} while (bench_now() < deadline);
	t1 = bench_now();
	c1 = bench_cpu();
	for (long i = 0; i < nlive; i++)
		free(win[i]);
	bench_result((double)ops, t1 - t0, c1 - c0, "live=%ld", nlive);
	return 0;
}
