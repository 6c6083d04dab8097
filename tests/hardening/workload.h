/*
 * workload.h - the hardening workload: random malloc-family operations on a
 * table of slots, every live block carrying its pattern (hard.h).
 *
 * The includer defines the API under test first:
 *   W_MALLOC(n) W_CALLOC(k, n) W_REALLOC(p, n) W_POSIX_MEMALIGN(out, a, n)
 *   W_ALIGNED_ALLOC(a, n) W_MEMALIGN(a, n) W_FREE(p) W_USABLE(p) W_TRIM()
 * (ebb_* when linked with libebbmalloc-ebb.a, the libc names under
 * LD_PRELOAD).
 *
 * What each operation checks:
 *  - success: alignment, usable size >= request, calloc memory zero, and
 *    realloc kept the old contents (up to the smaller size);
 *  - failure (allowed only while w->fail_ok): NULL with errno ENOMEM
 *    (posix_memalign: returns ENOMEM and leaves *out alone; realloc: the
 *    old block is intact and still owned);
 *  - every free first checks the block's pattern.
 * w_check_all() checks every live block: a failure anywhere in the
 * allocator that corrupts, overlaps or purges a live block shows up there.
 *
 * Blocks can be handed to another thread (w_handoff_*): the receiver checks
 * and frees them, so frees are remote.
 */
#ifndef WORKLOAD_H
#define WORKLOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "hard.h"

struct wslot {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};

struct wheap {
	struct wslot *s;
	unsigned nslots;
	uint64_t rng;
	size_t max_bytes;	/* largest request */
	int fail_ok;		/* NULL/ENOMEM allowed */
	uint64_t ops, fails, live_bytes;
	const char *name;
};

static _Atomic uint64_t w_tag_next = 1;

/* slot tables come from mmap: under LD_PRELOAD malloc itself may be the
 * thing that fails */
static inline void w_init(struct wheap *w, unsigned nslots, uint64_t seed, size_t max_bytes,
			  const char *name)
{
	memset(w, 0, sizeof(*w));
	w->s = mmap(NULL, nslots * sizeof(struct wslot), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	HARD_CHECK(w->s != MAP_FAILED, "%s: mmap of the slot table", name);
	w->nslots = nslots;
	w->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	w->max_bytes = max_bytes;
	w->name = name;
}

static inline void w_check_slot(struct wheap *w, unsigned i, const char *when)
{
	struct wslot *s = &w->s[i];
	if (!s->p)
		return;
	size_t bad = pat_check(s->p, s->n, s->tag);
	HARD_CHECK(bad == SIZE_MAX, "%s: %s: block %p (%zu bytes, tag %llu) corrupt at offset %zu: "
		   "0x%02x, expected 0x%02x", w->name, when, (void *)s->p, s->n,
		   (unsigned long long)s->tag, bad, s->p[bad], pat_byte(s->tag, bad));
}

static inline void w_check_all(struct wheap *w, const char *when)
{
	for (unsigned i = 0; i < w->nslots; i++)
		w_check_slot(w, i, when);
}

static inline void w_set(struct wheap *w, unsigned i, void *p, size_t n)
{
	struct wslot *s = &w->s[i];
	s->p = p;
	s->n = n;
	s->tag = atomic_fetch_add_explicit(&w_tag_next, 1, memory_order_relaxed);
	pat_fill(p, n, s->tag);
	w->live_bytes += n;
}

static inline void w_free_slot(struct wheap *w, unsigned i)
{
	struct wslot *s = &w->s[i];
	if (!s->p)
		return;
	w_check_slot(w, i, "before free");
	W_FREE(s->p);
	w->live_bytes -= s->n;
	s->p = NULL;
}

static inline void w_free_all(struct wheap *w)
{
	for (unsigned i = 0; i < w->nslots; i++)
		w_free_slot(w, i);
}

static inline void w_null(struct wheap *w, const char *fn, size_t n, int err)
{
	HARD_CHECK(w->fail_ok, "%s: %s(%zu) failed (errno %d) with no failure injected",
		   w->name, fn, n, err);
	HARD_CHECK(err == ENOMEM, "%s: %s(%zu) returned NULL with errno %d, not ENOMEM",
		   w->name, fn, n, err);
	w->fails++;
}

static inline void w_got(struct wheap *w, const char *fn, void *p, size_t n, size_t align)
{
	HARD_CHECK(((uintptr_t)p & (align - 1)) == 0, "%s: %s(%zu) = %p not aligned to %zu",
		   w->name, fn, n, p, align);
	size_t u = W_USABLE(p);
	HARD_CHECK(u >= n, "%s: %s(%zu) = %p has usable size %zu", w->name, fn, n, p, u);
}

/* Allocate slot i (empty) with a random function. */
static inline void w_alloc(struct wheap *w, unsigned i)
{
	size_t n = rng_size(&w->rng, w->max_bytes);
	size_t align = 16;
	unsigned how = (unsigned)rng_below(&w->rng, 10);
	const char *fn;
	void *p;

	errno = 0;
	if (how < 5) {
		fn = "malloc";
		p = W_MALLOC(n);
	} else if (how < 7) {
		size_t k = 1 + rng_below(&w->rng, 8);
		n = (n + k - 1) / k;
		fn = "calloc";
		p = W_CALLOC(k, n);
		if (p) {
			HARD_CHECK(zero_check(p, k * n), "%s: calloc(%zu, %zu) = %p not zeroed",
				   w->name, k, n, p);
		}
		n *= k;
	} else if (how == 7) {
		void *out = (void *)0x1;	/* must stay untouched on failure */
		align = (size_t)1 << (3 + rng_below(&w->rng, 20));	/* 8 B .. 4 MiB */
		fn = "posix_memalign";
		int r = W_POSIX_MEMALIGN(&out, align, n);
		if (r) {
			HARD_CHECK(out == (void *)0x1, "%s: posix_memalign failed (%d) but wrote *out",
				   w->name, r);
			errno = r;
			p = NULL;
		} else {
			p = out;
		}
	} else if (how == 8) {
		align = (size_t)1 << (4 + rng_below(&w->rng, 18));
		n = (n + align - 1) & ~(align - 1);
		if (n > w->max_bytes && align <= w->max_bytes)
			n = align;
		fn = "aligned_alloc";
		p = W_ALIGNED_ALLOC(align, n);
	} else {
		align = (size_t)1 << (4 + rng_below(&w->rng, 14));
		fn = "memalign";
		p = W_MEMALIGN(align, n);
	}
	if (!p) {
		w_null(w, fn, n, errno);
		return;
	}
	w_got(w, fn, p, n, align);
	w_set(w, i, p, n);
}

static inline void w_realloc(struct wheap *w, unsigned i)
{
	struct wslot *s = &w->s[i];
	size_t n = rng_below(&w->rng, 4) ? rng_size(&w->rng, w->max_bytes)
					  : s->n + 1 + rng_below(&w->rng, s->n);	/* grow */
	if (n > w->max_bytes)
		n = w->max_bytes;
	w_check_slot(w, i, "before realloc");
	errno = 0;
	void *q = W_REALLOC(s->p, n);
	if (!q) {
		w_null(w, "realloc", n, errno);
		w_check_slot(w, i, "after a failed realloc (the old block must be intact)");
		return;
	}
	w_got(w, "realloc", q, n, 16);
	size_t keep = s->n < n ? s->n : n;
	size_t bad = pat_check_clip(q, s->n, keep, s->tag);
	HARD_CHECK(bad == SIZE_MAX, "%s: realloc(%p, %zu) = %p lost the old contents (of %zu) at %zu",
		   w->name, (void *)s->p, n, q, s->n, bad);
	w->live_bytes -= s->n;
	w_set(w, i, q, n);
}

/* One random operation. */
static inline void w_step(struct wheap *w)
{
	unsigned i = (unsigned)rng_below(&w->rng, w->nslots);
	w->ops++;
	if (!w->s[i].p) {
		w_alloc(w, i);
		return;
	}
	unsigned r = (unsigned)rng_below(&w->rng, 8);
	if (r < 4)
		w_free_slot(w, i);
	else if (r < 6)
		w_realloc(w, i);
	else
		w_check_slot(w, i, "spot check");
}

/* ---- hand-off between threads (remote frees) ------------------------------ */
#define W_HANDOFF_SLOTS 256
struct w_handoff {
	pthread_mutex_t lock;
	unsigned head, count;
	struct wslot q[W_HANDOFF_SLOTS];
};
#define W_HANDOFF_INIT { .lock = PTHREAD_MUTEX_INITIALIZER }

/* Move slot i of w to the hand-off queue (if there is room). */
static inline void w_handoff_put(struct w_handoff *h, struct wheap *w, unsigned i)
{
	struct wslot *s = &w->s[i];
	if (!s->p)
		return;
	pthread_mutex_lock(&h->lock);
	if (h->count < W_HANDOFF_SLOTS) {
		h->q[(h->head + h->count++) % W_HANDOFF_SLOTS] = *s;
		w->live_bytes -= s->n;
		s->p = NULL;
	}
	pthread_mutex_unlock(&h->lock);
}

/* Take one block, check it, free it here. Returns 1 if there was one. */
static inline int w_handoff_take(struct w_handoff *h, const char *name)
{
	struct wslot s;
	pthread_mutex_lock(&h->lock);
	if (!h->count) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	s = h->q[h->head];
	h->head = (h->head + 1) % W_HANDOFF_SLOTS;
	h->count--;
	pthread_mutex_unlock(&h->lock);
	size_t bad = pat_check(s.p, s.n, s.tag);
	HARD_CHECK(bad == SIZE_MAX, "%s: handed-off block %p (%zu bytes) corrupt at %zu",
		   name, (void *)s.p, s.n, bad);
	W_FREE(s.p);
	return 1;
}

static inline void w_handoff_drain(struct w_handoff *h, const char *name)
{
	while (w_handoff_take(h, name))
		;
}

#endif /* WORKLOAD_H */
