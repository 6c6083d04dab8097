/*
 * fault_oom.c - mmap and mremap failures injected into the OS layer
 * (alloc/fault.c) while the workload runs through the ebb_* API; linked with
 * libebbmalloc-ebb.a.
 *
 *  1. A live set of ~500 patterned blocks (16 B .. 8 MiB) is built.
 *  2. Every os_map fails ("mmap=1-"): 20000 operations; allocations may
 *     fail, but only with NULL/ENOMEM (posix_memalign: ENOMEM, *out left
 *     alone; realloc: old block intact). Huge requests must fail (they
 *     need a mapping). Every live block is checked, then every arena's
 *     invariant walker (arena_is_valid).
 *  3. mremap fails too: huge blocks grown by realloc keep their contents,
 *     whether realloc copies them elsewhere or fails.
 *  4. Recovery: with faults off, 64 huge blocks, 200 large ones and
 *     20000 small ones all succeed; everything is checked and freed.
 *  5. Random: 4 threads, mmap rand:0.3 and mremap rand:0.5 (seeded), with
 *     blocks handed between threads (remote frees); then recovery again.
 * Exit 0 when only clean failures happened, some did (fault_injected > 0
 * and NULLs seen), and every recovery allocation succeeded.
 */
#include "internal.h"
#include "fault.h"

#define W_MALLOC(n)		ebb_malloc(n)
#define W_CALLOC(k, n)		ebb_calloc(k, n)
#define W_REALLOC(p, n)		ebb_realloc(p, n)
#define W_POSIX_MEMALIGN(o, a, n) ebb_posix_memalign(o, a, n)
#define W_ALIGNED_ALLOC(a, n)	ebb_aligned_alloc(a, n)
#define W_MEMALIGN(a, n)	ebb_memalign(a, n)
#define W_FREE(p)		ebb_free(p)
#define W_USABLE(p)		ebb_malloc_usable_size(p)
#include "workload.h"

#define MAXB ((size_t)8 << 20)

static void check_arenas(const char *when)
{
	for (unsigned i = 0; i < narenas; i++)
		HARD_CHECK(arena_is_valid(arenas[i]), "arena %u fails its invariant walker %s", i, when);
}

static void must_alloc_burst(const char *when)
{
	static void *big[64], *mid[200], *small[20000];
	for (unsigned i = 0; i < 64; i++) {
		big[i] = ebb_malloc((size_t)3 << 20);
		HARD_CHECK(big[i], "%s: 3 MiB block %u failed (errno %d)", when, i, errno);
		pat_fill(big[i], (size_t)3 << 20, 1000000 + i);
	}
	for (unsigned i = 0; i < 200; i++) {
		mid[i] = ebb_malloc(256 << 10);
		HARD_CHECK(mid[i], "%s: 256 KiB block %u failed (errno %d)", when, i, errno);
		pat_fill(mid[i], 256 << 10, 2000000 + i);
	}
	for (unsigned i = 0; i < 20000; i++) {
		small[i] = ebb_malloc(16 + i % 1000);
		HARD_CHECK(small[i], "%s: small block %u failed (errno %d)", when, i, errno);
		pat_fill(small[i], 16 + i % 1000, 3000000 + i);
	}
	for (unsigned i = 0; i < 64; i++) {
		HARD_CHECK(pat_check(big[i], (size_t)3 << 20, 1000000 + i) == SIZE_MAX, "%s: big %u", when, i);
		ebb_free(big[i]);
	}
	for (unsigned i = 0; i < 200; i++) {
		HARD_CHECK(pat_check(mid[i], 256 << 10, 2000000 + i) == SIZE_MAX, "%s: mid %u", when, i);
		ebb_free(mid[i]);
	}
	for (unsigned i = 0; i < 20000; i++) {
		HARD_CHECK(pat_check(small[i], 16 + i % 1000, 3000000 + i) == SIZE_MAX, "%s: small %u",
			   when, i);
		ebb_free(small[i]);
	}
}

static void phase_all_mmap_fail(struct wheap *w)
{
	HARD_CHECK(fault_configure("mmap=1-") == 0, "fault_configure");
	w->fail_ok = 1;
	uint64_t f0 = w->fails;
	for (int k = 0; k < 20000; k++)
		w_step(w);
	/* a huge request needs a mapping: it must fail cleanly */
	for (int k = 0; k < 8; k++) {
		errno = 0;
		void *p = ebb_malloc((size_t)(5 + k) << 20);
		HARD_CHECK(!p && errno == ENOMEM, "huge malloc with mmap failing: %p errno %d", p, errno);
		void *q = (void *)0x1;
		int r = ebb_posix_memalign(&q, (size_t)4 << 20, (size_t)6 << 20);
		HARD_CHECK(r == ENOMEM && q == (void *)0x1, "posix_memalign with mmap failing: %d %p", r, q);
		errno = 0;
		p = ebb_calloc(1, (size_t)9 << 20);
		HARD_CHECK(!p && errno == ENOMEM, "huge calloc with mmap failing: %p errno %d", p, errno);
	}
	HARD_CHECK(fault_injected(FAULT_MMAP) > 0, "no mmap failure was injected");
	HARD_CHECK(w->fails > f0, "no allocation failed while every mmap failed");
	printf("all-mmap-fail: %llu ops, %llu clean failures, %llu mmaps refused\n",
	       (unsigned long long)w->ops, (unsigned long long)(w->fails - f0),
	       (unsigned long long)fault_injected(FAULT_MMAP));
	w_check_all(w, "after every mmap failed");
	check_arenas("after every mmap failed");
}

static void phase_mremap(void)
{
	static unsigned char *blk[16];
	static size_t sz[16];
	uint64_t rng = 77;
	for (unsigned i = 0; i < 16; i++) {
		sz[i] = ((size_t)3 << 20) + rng_below(&rng, 1 << 20);
		blk[i] = ebb_malloc(sz[i]);
		HARD_CHECK(blk[i], "huge block %u before the mremap phase", i);
		pat_fill(blk[i], sz[i], 500 + i);
	}
	/* mremap fails, mmap works: realloc must still grow (by copying) */
	HARD_CHECK(fault_configure("mremap=1-") == 0, "fault_configure");
	for (unsigned i = 0; i < 8; i++) {
		size_t n = sz[i] * 2;
		unsigned char *q = ebb_realloc(blk[i], n);
		HARD_CHECK(q, "realloc %zu -> %zu with only mremap failing returned NULL (errno %d)",
			   sz[i], n, errno);
		HARD_CHECK(pat_check_clip(q, sz[i], sz[i], 500 + i) == SIZE_MAX,
			   "realloc with mremap failing lost contents");
		blk[i] = q;
		pat_fill(q, n, 600 + i);
		sz[i] = n;
	}
	HARD_CHECK(fault_injected(FAULT_MREMAP) > 0, "no mremap failure was injected");
	printf("mremap: %llu mremaps refused, huge realloc copied, contents kept\n",
	       (unsigned long long)fault_injected(FAULT_MREMAP));
	/* both fail: growing a huge block must fail cleanly and keep it */
	HARD_CHECK(fault_configure("mremap=1-,mmap=1-") == 0, "fault_configure");
	for (unsigned i = 8; i < 16; i++) {
		errno = 0;
		unsigned char *q = ebb_realloc(blk[i], sz[i] * 3);
		HARD_CHECK(!q && errno == ENOMEM, "realloc grow with mmap+mremap failing: %p errno %d",
			   (void *)q, errno);
		HARD_CHECK(pat_check(blk[i], sz[i], 500 + i) == SIZE_MAX,
			   "huge block %u corrupt after a failed realloc", i);
		/* shrinking needs no new mapping */
		q = ebb_realloc(blk[i], sz[i] - (1 << 20));
		HARD_CHECK(q, "huge shrink with mmap failing returned NULL");
		HARD_CHECK(pat_check_clip(q, sz[i], sz[i] - (1 << 20), 500 + i) == SIZE_MAX,
			   "huge shrink lost contents");
		blk[i] = q;
		sz[i] -= 1 << 20;
		pat_fill(q, sz[i], 500 + i);
	}
	HARD_CHECK(fault_configure(NULL) == 0, "fault_configure");
	for (unsigned i = 0; i < 16; i++) {
		uint64_t tag = i < 8 ? 600 + i : 500 + i;
		HARD_CHECK(pat_check(blk[i], sz[i], tag) == SIZE_MAX, "huge block %u corrupt", i);
		unsigned char *q = ebb_realloc(blk[i], sz[i] + ((size_t)8 << 20));
		HARD_CHECK(q, "huge grow after recovery failed");
		HARD_CHECK(pat_check_clip(q, sz[i], sz[i], tag) == SIZE_MAX, "huge grow lost contents");
		ebb_free(q);
	}
}

struct thr {
	pthread_t t;
	struct wheap w;
	unsigned id;
};
static struct w_handoff handoff = W_HANDOFF_INIT;
static _Atomic int stop_threads;

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	while (!atomic_load(&stop_threads) && t->w.ops < 10000) {
		w_step(&t->w);
		if (rng_below(&t->w.rng, 8) == 0)
			w_handoff_put(&handoff, &t->w, (unsigned)rng_below(&t->w.rng, t->w.nslots));
		if (rng_below(&t->w.rng, 4) == 0)
			w_handoff_take(&handoff, t->w.name);
		if (rng_below(&t->w.rng, 4000) == 0)
			ebb_malloc_trim(0);
	}
	w_check_all(&t->w, "end of the random phase");
	return NULL;
}

static void phase_random(void)
{
	static struct thr th[4];
	static char names[4][16];
	HARD_CHECK(fault_configure("mmap=rand:0.3,mremap=rand:0.5,seed=42") == 0, "fault_configure");
	for (unsigned i = 0; i < 4; i++) {
		snprintf(names[i], sizeof(names[i]), "thread %u", i);
		w_init(&th[i].w, 200, 100 + i, MAXB, names[i]);
		th[i].w.fail_ok = 1;
		th[i].id = i;
		HARD_CHECK(pthread_create(&th[i].t, NULL, thr_main, &th[i]) == 0, "pthread_create");
	}
	uint64_t fails = 0;
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i].t, NULL);
		fails += th[i].w.fails;
	}
	HARD_CHECK(fault_injected(FAULT_MMAP) > 0, "random phase injected no mmap failure");
	printf("random: %llu/%llu mmaps refused, %llu/%llu mremaps refused, %llu clean failures\n",
	       (unsigned long long)fault_injected(FAULT_MMAP), (unsigned long long)fault_calls(FAULT_MMAP),
	       (unsigned long long)fault_injected(FAULT_MREMAP),
	       (unsigned long long)fault_calls(FAULT_MREMAP), (unsigned long long)fails);
	HARD_CHECK(fault_configure(NULL) == 0, "fault_configure");
	w_handoff_drain(&handoff, "drain");
	check_arenas("after the random phase");
	for (unsigned i = 0; i < 4; i++) {
		th[i].w.fail_ok = 0;
		for (int k = 0; k < 2000; k++)	/* recovery: nothing may fail now */
			w_step(&th[i].w);
		w_free_all(&th[i].w);
	}
}

int main(void)
{
	struct wheap w;
	ebb_free(ebb_malloc(1));	/* initialise before arming */
	w_init(&w, 600, 1, MAXB, "main");
	for (int k = 0; k < 3000; k++)
		w_step(&w);
	w_check_all(&w, "initial live set");
	printf("live set: %llu bytes\n", (unsigned long long)w.live_bytes);

	phase_all_mmap_fail(&w);
	HARD_CHECK(fault_configure(NULL) == 0, "fault_configure");
	must_alloc_burst("recovery after every mmap failed");
	w.fail_ok = 0;
	for (int k = 0; k < 5000; k++)
		w_step(&w);
	w_check_all(&w, "after recovery");

	phase_mremap();
	phase_random();
	must_alloc_burst("recovery after random failures");
	w_check_all(&w, "end");
	w_free_all(&w);
	check_arenas("at the end");
	printf("fault_oom: ok\n");
	return 0;
}
