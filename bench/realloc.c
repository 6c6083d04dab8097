/*
 * realloc.c - realloc growth.
 *
 * One thread grows `bufs` buffers at a time, the way string builders and
 * vectors do: each starts at 8 bytes and grows by realloc, half of them by
 * a factor 1.5 and half by small random steps, up to a cap of `max` bytes
 * for most and 16 x `max` for one buffer in sixteen; the byte at the new end
 * is written after each step. Small short-lived blocks are allocated in
 * between so that growth in place is not always possible. When a buffer
 * hits its cap it is freed and started again. Runs for `secs` seconds;
 * ops = realloc calls.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	static const char *const keys[] = { "bufs", "max", "secs", NULL };
	long nbufs, secs;
	size_t max;
	char **buf;
	size_t *len, *cap;
	uint64_t seed = 0x4ea11c0u;
	double t0, c0, t1, c1, deadline;
	long ops = 0, moved = 0;
	void *junk[64] = { 0 };

	bench_check_args(argc, argv, keys);
	nbufs = bench_arg(argc, argv, "bufs", 64);
	secs = bench_arg(argc, argv, "secs", 3);
	max = (size_t)bench_arg(argc, argv, "max", 64 * 1024);
	buf = bench_map(sizeof(*buf) * (size_t)nbufs);
	len = bench_map(sizeof(*len) * (size_t)nbufs);
	cap = bench_map(sizeof(*cap) * (size_t)nbufs);
	bench_phase("start", 0);
	t0 = bench_now();
	c0 = bench_cpu();
	deadline = t0 + (double)secs;
	do {
		for (int k = 0; k < 1024; k++, ops++) {
			long i = (long)(rng_next(&seed) % (uint64_t)nbufs);
			size_t n;
			char *p;

			if (buf[i] == NULL || len[i] >= cap[i]) {
				free(buf[i]);
				buf[i] = NULL;
				len[i] = 0;
				cap[i] = (rng_next(&seed) & 15) ? max : 16 * max;
			}
			n = (i & 1) ? len[i] + rng_range(&seed, 1, 64) : len[i] + len[i] / 2 + 8;
			if (n > cap[i])
				n = cap[i];
			p = realloc(buf[i], n);
			if (!p) {
				fprintf(stderr, "realloc(%zu) failed\n", n);
				return 1;
			}
			if (buf[i] && p != buf[i])
				moved++;
			p[n - 1] = (char)k;
			buf[i] = p;
			len[i] = n;
			free(junk[k & 63]);
			junk[k & 63] = bench_xmalloc(rng_logsize(&seed, 16, 256));
		}
	} while (bench_now() < deadline);
	t1 = bench_now();
	c1 = bench_cpu();
	for (long i = 0; i < nbufs; i++)
		free(buf[i]);
	for (int k = 0; k < 64; k++)
		free(junk[k]);
	bench_result((double)ops, t1 - t0, c1 - c0, "moved=%ld", moved);
	return 0;
}
