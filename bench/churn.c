/*
 * churn.c - a live set that rises and falls while threads come and go.
 *
 * `cycles` cycles. In each cycle a new set of workers starts (2, 4, 6 or 8
 * of them, rotating, so threads come and go and their number changes).
 * Together they first free the survivors the previous cycle left behind
 * (blocks of threads that have exited), then allocate blocks of mixed sizes
 * (log-uniform 16 B..64 KiB, one in 64 of 64..512 KiB) with some
 * replacement churn and short-lived small blocks in between, until the live set reaches `peak_mib`. Then each worker
 * frees all but `keep_pct` percent of its blocks, hands the rest to the
 * next cycle and exits. Phases printed (live bytes each time):
 *
 *   PHASE peak     live set at its top
 *   PHASE fall     right after the fall
 *   PHASE settled  `settle_ms` after the fall (the runner reads RSS here)
 *   PHASE idle_end everything freed, `settle_ms` later, at the very end
 *
 * ops = mallocs; the timed part includes the settle sleeps, so throughput
 * here is only a rough figure: read the RSS columns.
 */
#include <pthread.h>
#include <stdatomic.h>
#include "bench.h"

struct blk {
	void *p;
	size_t n;
};

struct worker {
	pthread_t th;
	unsigned idx, cycle;
	size_t target;		/* bytes this worker brings the live set to */
	struct blk *b;		/* bench_map'd, capacity cap */
	long nb, cap;
	struct blk *old;	/* survivors of the previous cycle to free */
	long nold;
	long keep_pct;
	long mallocs;
	size_t live;
};

static size_t churn_size(uint64_t *s)
{
	if ((rng_next(s) & 63) == 0)
		return rng_range(s, 64 * 1024, 512 * 1024);
	return rng_logsize(s, 16, 64 * 1024);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = ((uint64_t)w->cycle << 20) ^ w->idx ^ 0xc4u;
	void *tmp[32] = { 0 };
	unsigned t = 0;

	for (long i = 0; i < w->nold; i++)
		free(w->old[i].p);
	while (w->live < w->target && w->nb < w->cap) {
		size_t n = churn_size(&seed);
		void *p;

		/* Request-scoped garbage: short-lived small blocks. */
		for (int k = 0; k < 16; k++, t++) {
			free(tmp[t & 31]);
			tmp[t & 31] = bench_xmalloc(rng_logsize(&seed, 16, 4096));
			*(char *)tmp[t & 31] = (char)k;
		}
		p = bench_xmalloc(n);
		bench_touch(p, n, (unsigned char)n);
		w->mallocs += 17;
		/* One step in four replaces an older block instead of growing. */
		if (w->nb > 16 && (rng_next(&seed) & 3) == 0) {
			long i = (long)(rng_next(&seed) % (uint64_t)w->nb);

			w->live -= w->b[i].n;
			free(w->b[i].p);
			w->b[i].p = p;
			w->b[i].n = n;
		} else {
			w->b[w->nb].p = p;
			w->b[w->nb].n = n;
			w->nb++;
		}
		w->live += n;
	}
	for (int k = 0; k < 32; k++)
		free(tmp[k]);
	return NULL;
}

static void *worker_fall(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = ((uint64_t)w->cycle << 20) ^ w->idx ^ 0xfa11u;
	long kept = 0;

	for (long i = 0; i < w->nb; i++) {
		if ((long)(rng_next(&seed) % 100) < w->keep_pct) {
			w->b[kept++] = w->b[i];
		} else {
			w->live -= w->b[i].n;
			free(w->b[i].p);
		}
	}
	w->nb = kept;
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *const keys[] = { "cycles", "peak_mib", "keep_pct",
					     "settle_ms", NULL };
	long cycles, keep_pct, settle_ms;
	size_t peak;
	long cap;
	struct worker *cur = NULL, *prev = NULL;
	long nprev = 0;
	struct blk *carry;
	long ncarry = 0, mallocs = 0;
	double t0, c0, t1, c1;

	bench_check_args(argc, argv, keys);
	cycles = bench_arg(argc, argv, "cycles", 10);
	peak = (size_t)bench_arg(argc, argv, "peak_mib", 256) << 20;
	keep_pct = bench_arg(argc, argv, "keep_pct", 10);
	settle_ms = bench_arg(argc, argv, "settle_ms", 2000);
	cap = (long)(peak / 512) + 1024;	/* mean block is ~10 KiB: ample */
	carry = bench_map(sizeof(*carry) * (size_t)cap);
	bench_phase("start", 0);
	t0 = bench_now();
	c0 = bench_cpu();
	for (long c = 0; c < cycles; c++) {
		long nw = 2 + 2 * (c % 4);
		size_t live = 0;

		cur = bench_map(sizeof(*cur) * (size_t)nw);
		for (long i = 0; i < nw; i++) {
			struct worker *w = &cur[i];

			w->idx = (unsigned)i;
			w->cycle = (unsigned)c;
			w->target = peak / (size_t)nw;
			w->cap = cap / nw + 1024;
			w->b = bench_map(sizeof(*w->b) * (size_t)w->cap);
			w->keep_pct = keep_pct;
			/* Survivors of the last cycle are split among the new workers. */
			w->old = carry + ncarry * i / nw;
			w->nold = ncarry * (i + 1) / nw - ncarry * i / nw;
			pthread_create(&w->th, NULL, worker_main, w);
		}
		for (long i = 0; i < nw; i++) {
			pthread_join(cur[i].th, NULL);
			live += cur[i].live;
			mallocs += cur[i].mallocs;
		}
		bench_phase("peak", (long long)live);
		live = 0;
		for (long i = 0; i < nw; i++)
			pthread_create(&cur[i].th, NULL, worker_fall, &cur[i]);
		for (long i = 0; i < nw; i++)
			pthread_join(cur[i].th, NULL);
		/* The workers are gone: collect their survivors for the next cycle. */
		ncarry = 0;
		for (long i = 0; i < nw; i++) {
			for (long j = 0; j < cur[i].nb; j++)
				carry[ncarry++] = cur[i].b[j];
			live += cur[i].live;
		}
		bench_phase("fall", (long long)live);
		bench_sleep_ms(settle_ms);
		bench_phase_measure("settled", (long long)live);
		if (prev) {
			for (long i = 0; i < nprev; i++)
				munmap(prev[i].b, sizeof(*prev[i].b) * (size_t)prev[i].cap);
			munmap(prev, sizeof(*prev) * (size_t)nprev);
		}
		prev = cur;
		nprev = nw;
	}
	for (long i = 0; i < ncarry; i++)
		free(carry[i].p);
	bench_phase("freed_all", 0);
	t1 = bench_now();
	c1 = bench_cpu();
	bench_sleep_ms(settle_ms);
	bench_phase_measure("idle_end", 0);
	bench_result((double)mallocs, t1 - t0, c1 - c0, "cycles=%ld peak_live=%zu",
		     cycles, peak);
	return 0;
}
