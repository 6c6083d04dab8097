/*
 * mt_stress.c - multithreaded malloc stress with fixed seeds.
 *
 * Workload (every thread, its own seed = STRESS_SEED + thread index):
 *  - start-up sweeps: every alignment 2^4..2^20 through posix_memalign,
 *    aligned_alloc and memalign (several sizes each, alignment checked);
 *    calloc of every size class right after a free of the same size whose
 *    block was filled with a pattern (dirty reuse must still read zero);
 *  - then STRESS_OPS random operations on a table of live blocks: malloc
 *    (0 B to 6 MiB, log-uniform so every size class is hit), calloc,
 *    aligned allocations, free, realloc chains (grow and shrink several times,
 *    the preserved prefix checked at each step), check-only visits, and
 *    hand-offs of live blocks to another thread's queue (the receiver
 *    checks the pattern and frees or adopts the block: cross-thread frees).
 * Every allocation: malloc_usable_size >= requested, the whole usable size
 * is written with a pattern unique to that allocation, and the pattern is
 * checked before the block is freed or reallocated.
 *
 * Env: STRESS_THREADS (4), STRESS_OPS (per thread, 150000), STRESS_SEED (1).
 * Exit 0 when no check failed, 1 otherwise.
 */
#include <malloc.h>
#include <pthread.h>
#include "stress.h"

#define NSLOTS		2048
#define QCAP		4096
#define MAX_ALIGN_LOG	20

struct blk {
	unsigned char *p;
	size_t req;
	size_t usable;
	uint64_t tag;
	size_t align;	/* 0 when not an aligned allocation */
};

struct queue {
	pthread_mutex_t lock;
	size_t n;
	struct blk items[QCAP];
};

struct worker {
	pthread_t th;
	unsigned idx;
	uint64_t rng;
	uint64_t next_tag;
	struct blk slots[NSLOTS];
	unsigned long n_alloc, n_free, n_realloc, n_handoff, n_adopt;
};

static unsigned nthreads;
static long nops;
static struct worker *workers;
static struct queue *queues;
static pthread_barrier_t barrier;

static uint64_t new_tag(struct worker *w)
{
	return ((uint64_t)(w->idx + 1) << 48) | ++w->next_tag;
}

/* Record p (requested req) in b: checks usable size and alignment, fills the
 * whole usable size with a fresh pattern. */
static void blk_init(struct worker *w, struct blk *b, void *p, size_t req, size_t align, const char *what)
{
	b->p = p;
	b->req = req;
	b->align = align;
	b->usable = malloc_usable_size(p);
	b->tag = new_tag(w);
	if (b->usable < req)
		FAIL("t%u %s(%zu): malloc_usable_size %zu < requested", w->idx, what, req, b->usable);
	if (align && ((uintptr_t)p & (align - 1)))
		FAIL("t%u %s(align %zu, %zu) = %p is misaligned", w->idx, what, align, req, p);
	if (((uintptr_t)p & 15) && req >= 16)
		FAIL("t%u %s(%zu) = %p is not 16-byte aligned", w->idx, what, req, p);
	pat_fill(p, b->usable, b->tag);
	w->n_alloc++;
}

static void blk_check(struct worker *w, const struct blk *b, const char *when)
{
	size_t off = pat_check(b->p, b->usable, b->tag);

	if (off != (size_t)-1)
		FAIL("t%u %s: block %p (req %zu usable %zu align %zu tag %#" PRIx64 ") corrupt at offset %zu: %#x",
		     w->idx, when, (void *)b->p, b->req, b->usable, b->align, b->tag, off, b->p[off]);
	if (malloc_usable_size(b->p) != b->usable)
		FAIL("t%u %s: malloc_usable_size(%p) changed from %zu to %zu", w->idx, when,
		     (void *)b->p, b->usable, malloc_usable_size(b->p));
}

static void blk_free(struct worker *w, struct blk *b, const char *when)
{
	blk_check(w, b, when);
	free(b->p);
	b->p = NULL;
	w->n_free++;
}

static size_t pick_size(uint64_t *r)
{
	unsigned x = (unsigned)rng_below(r, 1000);

	if (x < 10)
		return 0;
	if (x < 700)
		return rng_size_log(r, 1, 1024);
	if (x < 960)
		return rng_size_log(r, 1025, 64 << 10);
	if (x < 997)
		return rng_size_log(r, (64 << 10) + 1, 1 << 20);
	return rng_size_log(r, (1 << 20) + 1, 6 << 20);
}

static void *aligned_any(unsigned how, size_t align, size_t size, const char **what)
{
	void *p = NULL;
	int rc;

	switch (how % 3) {
	case 0:
		*what = "posix_memalign";
		p = (void *)0x1;
		rc = posix_memalign(&p, align, size);
		if (rc) {
			FAIL("posix_memalign(%zu, %zu) = %d", align, size, rc);
			return NULL;
		}
		return p;
	case 1:
		*what = "aligned_alloc";
		return aligned_alloc(align, size);
	default:
		*what = "memalign";
		return memalign(align, size);
	}
}

static void alloc_into(struct worker *w, struct blk *b)
{
	unsigned x = (unsigned)rng_below(&w->rng, 100);
	size_t size = pick_size(&w->rng);
	const char *what = "malloc";
	size_t align = 0;
	void *p;

	if (x < 65) {
		p = malloc(size);
	} else if (x < 80) {
		size_t n = 1 + rng_below(&w->rng, 8);
		what = "calloc";
		p = calloc(n, size / n + 1);
		size = n * (size / n + 1);
		if (p && zero_check(p, size) != (size_t)-1)
			FAIL("t%u calloc(%zu) = %p not zero at %zu", w->idx, size, p, zero_check(p, size));
	} else if (x < 95) {
		unsigned lg = 4 + (unsigned)rng_below(&w->rng, MAX_ALIGN_LOG - 3);
		if (rng_below(&w->rng, 4))	/* bias toward modest alignments */
			lg = 4 + (unsigned)rng_below(&w->rng, 9);
		align = (size_t)1 << lg;
		if (size > (2 << 20))
			size = size / 4;
		if (size == 0)	/* aligned size 0 is bad_input's (zero_sizes) */
			size = 1;
		p = aligned_any((unsigned)rng_below(&w->rng, 3), align, size, &what);
	} else {
		/* dirty then calloc: the same size freed with a pattern in it */
		size_t n = size ? size : 1;
		void *d = malloc(n);
		if (!d) {
			FAIL("t%u malloc(%zu) = NULL", w->idx, n);
			return;
		}
		pat_fill(d, malloc_usable_size(d), new_tag(w));
		free(d);
		what = "calloc-after-dirty-free";
		p = calloc(1, n);
		size = n;
		if (p && zero_check(p, n) != (size_t)-1)
			FAIL("t%u calloc(1, %zu) after a dirty free = %p (freed %p) not zero at %zu",
			     w->idx, n, p, d, zero_check(p, n));
	}
	if (!p) {
		FAIL("t%u %s(%zu) = NULL, errno %d", w->idx, what, size, errno);
		return;
	}
	blk_init(w, b, p, size, align, what);
}

static void realloc_chain(struct worker *w, struct blk *b)
{
	unsigned steps = 1 + (unsigned)rng_below(&w->rng, 6);

	blk_check(w, b, "before realloc");
	for (unsigned s = 0; s < steps; s++) {
		size_t n = pick_size(&w->rng);
		size_t keep = n < b->req ? n : b->req;
		unsigned char *q;

		if (rng_below(&w->rng, 3) == 0)	/* small in-place-ish steps too */
			n = b->req + rng_below(&w->rng, 64);
		keep = n < b->req ? n : b->req;
		q = realloc(b->p, n);
		if (!q) {
			if (n == 0) {	/* glibc frees and returns NULL */
				b->p = NULL;
				w->n_free++;
				return;
			}
			FAIL("t%u realloc(%p, %zu) = NULL, errno %d", w->idx, (void *)b->p, n, errno);
			return;
		}
		size_t off = pat_check(q, keep, b->tag);
		if (off != (size_t)-1)
			FAIL("t%u realloc(%p [%zu] -> %zu) = %p lost byte %zu of the prefix",
			     w->idx, (void *)b->p, b->req, n, (void *)q, off);
		w->n_realloc++;
		w->n_alloc--;	/* blk_init counts it again */
		blk_init(w, b, q, n, 0, "realloc");
	}
}

static void handoff(struct worker *w, struct blk *b)
{
	unsigned to = (unsigned)rng_below(&w->rng, nthreads);
	struct queue *q = &queues[to];

	pthread_mutex_lock(&q->lock);
	if (q->n < QCAP) {
		q->items[q->n++] = *b;
		b->p = NULL;
	}
	pthread_mutex_unlock(&q->lock);
	if (b->p)
		blk_free(w, b, "free (queue full)");
	else
		w->n_handoff++;
}

static void drain(struct worker *w, int adopt)
{
	struct queue *q = &queues[w->idx];
	static _Thread_local struct blk got[QCAP];
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->n;
	memcpy(got, q->items, n * sizeof(got[0]));
	q->n = 0;
	pthread_mutex_unlock(&q->lock);
	for (size_t i = 0; i < n; i++) {
		struct blk *b = &got[i];
		if (adopt && (b->tag & 1)) {
			struct blk *s = &w->slots[rng_below(&w->rng, NSLOTS)];
			if (!s->p) {
				blk_check(w, b, "adopt");
				*s = *b;
				w->n_adopt++;
				continue;
			}
		}
		blk_free(w, b, "remote free");
	}
}

static void sweep_alignments(struct worker *w)
{
	struct blk held[(MAX_ALIGN_LOG - 3) * 3 * 4];
	size_t nh = 0;

	for (unsigned lg = 4; lg <= MAX_ALIGN_LOG; lg++) {
		size_t a = (size_t)1 << lg;
		size_t sizes[4] = { 1, a / 2 + 1, a, 2 * a + 24 };
		for (unsigned how = 0; how < 3; how++) {
			for (unsigned k = 0; k < 4; k++) {
				const char *what;
				void *p = aligned_any(how + w->idx, a, sizes[k], &what);
				if (!p) {
					FAIL("t%u %s(%zu, %zu) = NULL", w->idx, what, a, sizes[k]);
					continue;
				}
				blk_init(w, &held[nh++], p, sizes[k], a, what);
			}
		}
	}
	/* free in a scrambled order */
	for (size_t i = nh; i > 1; i--) {
		size_t j = rng_below(&w->rng, i);
		struct blk t = held[i - 1];
		held[i - 1] = held[j];
		held[j] = t;
	}
	for (size_t i = 0; i < nh; i++)
		blk_free(w, &held[i], "free after alignment sweep");
}

static void sweep_calloc_dirty(struct worker *w)
{
	for (size_t size = 1; size <= (8 << 20); size = size + size / 8 + 1) {
		unsigned char *d = malloc(size), *p;
		if (!d) {
			FAIL("t%u malloc(%zu) = NULL", w->idx, size);
			continue;
		}
		memset(d, 0xA5, malloc_usable_size(d));
		free(d);
		p = calloc(1, size);
		if (!p) {
			FAIL("t%u calloc(1, %zu) = NULL", w->idx, size);
			continue;
		}
		if (zero_check(p, size) != (size_t)-1)
			FAIL("t%u calloc(1, %zu) after a dirty free of the same size: %p not zero at %zu (%#x)",
			     w->idx, size, (void *)p, zero_check(p, size), p[zero_check(p, size)]);
		memset(p, 0x5A, size);
		free(p);
		/* and in element form, which must check nmemb * size */
		p = calloc(size, 1);
		if (!p || zero_check(p, size) != (size_t)-1)
			FAIL("t%u calloc(%zu, 1) = %p not zero", w->idx, size, (void *)p);
		free(p);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	sweep_alignments(w);
	sweep_calloc_dirty(w);
	pthread_barrier_wait(&barrier);

	for (long i = 0; i < nops; i++) {
		struct blk *b = &w->slots[rng_below(&w->rng, NSLOTS)];
		unsigned x = (unsigned)rng_below(&w->rng, 100);

		if ((i & 63) == 0)
			drain(w, 1);
		if (!b->p) {
			alloc_into(w, b);
			continue;
		}
		if (x < 40) {
			blk_free(w, b, "free");
		} else if (x < 55) {
			realloc_chain(w, b);
		} else if (x < 75) {
			handoff(w, b);
		} else if (x < 85) {
			blk_check(w, b, "visit");
		} else {
			blk_free(w, b, "free before reuse");
			alloc_into(w, b);
		}
		if (stress_failed() > 20) {
			fprintf(stderr, "too many failures, stopping t%u\n", w->idx);
			break;
		}
	}
	/* nobody sends after this barrier */
	pthread_barrier_wait(&barrier);
	drain(w, 0);
	for (unsigned s = 0; s < NSLOTS; s++)
		if (w->slots[s].p)
			blk_free(w, &w->slots[s], "final free");
	return NULL;
}

int main(void)
{
	unsigned long tot_alloc = 0, tot_free = 0, tot_realloc = 0, tot_handoff = 0, tot_adopt = 0;
	uint64_t seed = (uint64_t)env_long("STRESS_SEED", 1);

	if (stress_banner("mt_stress"))
		return 1;
	nthreads = (unsigned)env_long("STRESS_THREADS", 4);
	nops = env_long("STRESS_OPS", 150000);
	if (nthreads < 1)
		nthreads = 1;
	workers = calloc(nthreads, sizeof(*workers));
	queues = calloc(nthreads, sizeof(*queues));
	if (!workers || !queues) {
		FAIL("calloc of the worker table failed");
		return 1;
	}
	pthread_barrier_init(&barrier, NULL, nthreads);
	for (unsigned t = 0; t < nthreads; t++) {
		workers[t].idx = t;
		workers[t].rng = rng_seed(seed, t);
		pthread_mutex_init(&queues[t].lock, NULL);
	}
	for (unsigned t = 0; t < nthreads; t++)
		if (pthread_create(&workers[t].th, NULL, worker_main, &workers[t])) {
			fprintf(stderr, "FAIL pthread_create\n");
			return 1;
		}
	for (unsigned t = 0; t < nthreads; t++) {
		pthread_join(workers[t].th, NULL);
		tot_alloc += workers[t].n_alloc;
		tot_free += workers[t].n_free;
		tot_realloc += workers[t].n_realloc;
		tot_handoff += workers[t].n_handoff;
		tot_adopt += workers[t].n_adopt;
	}
	if (tot_alloc != tot_free)
		FAIL("bookkeeping: %lu allocations but %lu frees", tot_alloc, tot_free);
	if (tot_handoff == 0 || tot_realloc == 0)
		FAIL("workload did not exercise hand-offs (%lu) or reallocs (%lu)", tot_handoff, tot_realloc);
	printf("mt_stress: %u threads x %ld ops: %lu allocations, %lu reallocs, %lu cross-thread hand-offs (%lu adopted), %lu failures\n",
	       nthreads, nops, tot_alloc, tot_realloc, tot_handoff, tot_adopt, stress_failed());
	free(workers);
	free(queues);
	return stress_failed() ? 1 : 0;
}
