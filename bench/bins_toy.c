/*
 * bins_toy.c - a measurement-only toy allocator, to compare thread-cache
 * bin layouts with nothing else around them. Never a real allocator: one
 * thread, no flushing (a full bin drops the block), memory never returned;
 * it runs bench_smallst, and nothing else is claimed of it.
 *
 * Built five ways (bench/bins_toy), each preloaded under bench_smallst:
 *   TOY_BIN=0  intrusive list: the bin is a head pointer, a cached block's
 *              first word links to the next (tcmalloc's and glibc's tcache
 *              shape);
 *   TOY_BIN=1  the same with a count and a bound, as a real cache needs;
 *   TOY_BIN=2  slot stack: the bin is an array of pointers and a top
 *              (ebbmalloc's shape, alloc/fastpath.h), bounded;
 *   TOY_BIN=3  the slot stack with one "hot" slot in front: free fills
 *              it when it is empty, malloc takes it first (no link in a
 *              block, and the hot slot's address is fixed);
 *   TOY_BIN=4  the slot stack with its top block held in the bin itself:
 *              malloc returns the block the last free stored there (one
 *              store-to-load forward on its return path, as a list's head)
 *              and refills that word from the array; a guard slot below
 *              the array holds NULL, so an empty bin needs no other test.
 * Everything else is shared: 16-byte classes up to 512 B found through a
 * table, 64 KiB pages of one class each with a byte map from page to class,
 * the bins in initial-exec TLS, refills that carve a fresh page.
 *
 * What it showed (bench/results/bins-toy.md): with the same work around
 * them, the slot stack runs smallst at 0.86 x tcmalloc where the counted
 * list runs at 1.00 and ebbmalloc at 0.88: the stack is ebbmalloc's gap.
 * The hot slot makes the stack slower still (0.70: which of the two a call
 * takes is a coin toss for the branch predictor). The top block held in
 * the bin recovers half of the gap (0.93 against the stack's 0.86 and the
 * counted list's 1.00, 11-29 23:36). ebbmalloc's bins held a copy of
 * their top slot at a157d1d (~3 % on smallst), dropped at 7241ffc: the
 * larger bins cost a page of TLS per thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#ifndef TOY_BIN
#define TOY_BIN 0
#endif
#define REGION	 ((size_t)1 << 34)
#define LG_TPAGE 16
#define NCLS	 33		/* class c holds blocks of 16 * c bytes; class 0 unused */
#define BIG_CLS	 255		/* a page run of its own (> 512 B) */
#define BIN_MAX	 65536u
#define toy_likely(x) __builtin_expect(!!(x), 1)

static char *base, *bump;
static uint8_t *page_cls;	/* per 64 KiB page */
static size_t *page_bytes;	/* a BIG_CLS run's length, at its first page (0 at the others) */
static uint8_t cls_of[NCLS];	/* (size + 15) >> 4 -> class */

#if TOY_BIN == 0
static __thread void *bin_head[NCLS] __attribute__((tls_model("initial-exec")));
#elif TOY_BIN == 1
struct lbin { void *head; uint32_t count, max; };
static __thread struct lbin bins[NCLS] __attribute__((tls_model("initial-exec")));
#elif TOY_BIN == 3
struct sbin { void *hot; void **top, **lo, **hi; };
static __thread struct sbin bins[NCLS] __attribute__((tls_model("initial-exec")));
#elif TOY_BIN == 4
/* n blocks: cur is the n-th, lo[0..n-2] the others, top = lo + n - 1
 * (lo - 1, the guard slot, when empty: cur is then NULL) */
struct sbin { void *cur; void **top, **lo, **hi; };
static __thread struct sbin bins[NCLS] __attribute__((tls_model("initial-exec")));
#else
struct sbin { void **top, **lo, **hi; };
static __thread struct sbin bins[NCLS] __attribute__((tls_model("initial-exec")));
#endif

static void *toy_map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int toy_init(void)
{
	char *r = toy_map(REGION + ((size_t)1 << LG_TPAGE));
	page_cls = toy_map(REGION >> LG_TPAGE);
	page_bytes = toy_map((REGION >> LG_TPAGE) * sizeof(size_t));
	if (!r || !page_cls || !page_bytes)
		return -1;
	base = bump = (char *)(((uintptr_t)r + ((size_t)1 << LG_TPAGE) - 1) &
			       ~(((uintptr_t)1 << LG_TPAGE) - 1));
	for (unsigned i = 0; i < NCLS; i++)
		cls_of[i] = (uint8_t)(i ? i : 1);
	return 0;
}

static char *toy_pages(size_t n)
{
	char *p = __atomic_fetch_add(&bump, n << LG_TPAGE, __ATOMIC_RELAXED);
	return p + (n << LG_TPAGE) <= base + REGION ? p : NULL;
}

static void bin_push_slow(unsigned c, void *p)
{
#if TOY_BIN == 0
	*(void **)p = bin_head[c];
	bin_head[c] = p;
#elif TOY_BIN == 1
	if (bins[c].count < bins[c].max) {
		*(void **)p = bins[c].head;
		bins[c].head = p;
		bins[c].count++;
	}
#elif TOY_BIN == 4
	if (bins[c].top != bins[c].hi) {
		*bins[c].top++ = bins[c].cur;
		bins[c].cur = p;
	}
#else
	if (bins[c].top != bins[c].hi)
		*bins[c].top++ = p;
#endif
}

/* Refill: carve a page for class c, keep its first block, cache the rest. */
__attribute__((noinline)) static void *toy_slow(size_t size)
{
	if (!base && toy_init())
		return NULL;
	if (size > 512) {
		size_t n = (size + ((size_t)1 << LG_TPAGE) - 1) >> LG_TPAGE;
		char *p = toy_pages(n);
		if (!p) {
			errno = ENOMEM;
			return NULL;
		}
		size_t pg = (size_t)(p - base) >> LG_TPAGE;
		memset(page_cls + pg, BIG_CLS, n);
		page_bytes[pg] = n << LG_TPAGE;
		return p;
	}
	unsigned c = cls_of[(size + 15) >> 4];
	size_t sz = 16 * (size_t)c, cnt = ((size_t)1 << LG_TPAGE) / sz;
	char *p = toy_pages(1);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	page_cls[(size_t)(p - base) >> LG_TPAGE] = (uint8_t)c;
#if TOY_BIN == 1
	bins[c].max = BIN_MAX;
#elif TOY_BIN == 4
	if (!bins[c].lo) {
		void **m = toy_map((BIN_MAX + 1) * sizeof(void *));
		if (!m)
			return p;
		bins[c].lo = m + 1;	/* m[0] is the guard: NULL */
		bins[c].top = m;
		bins[c].hi = m + BIN_MAX;
	}
#elif TOY_BIN >= 2
	if (!bins[c].lo) {
		bins[c].lo = bins[c].top = toy_map(BIN_MAX * sizeof(void *));
		if (!bins[c].lo)
			return p;
		bins[c].hi = bins[c].lo + BIN_MAX;
	}
#endif
	/* pushed from the end, so that blocks come out in address order */
	for (size_t i = cnt - 1; i >= 1; i--)
		bin_push_slow(c, p + i * sz);
	return p;
}

void *malloc(size_t size)
{
	if (toy_likely(size <= 512)) {
		unsigned c = cls_of[(size + 15) >> 4];
#if TOY_BIN == 0
		void **p = bin_head[c];
		if (toy_likely(p != NULL)) {
			bin_head[c] = *p;
			return p;
		}
#elif TOY_BIN == 1
		struct lbin *b = &bins[c];
		void **p = b->head;
		if (toy_likely(p != NULL)) {
			b->head = *p;
			b->count--;
			return p;
		}
#elif TOY_BIN == 4
		struct sbin *b = &bins[c];
		void **p = b->cur;
		if (toy_likely(p != NULL)) {
			void **t = b->top;
			b->cur = t[-1];
			b->top = t - 1;
			return p;
		}
#else
		struct sbin *b = &bins[c];
#if TOY_BIN == 3
		void *h = b->hot;
		if (toy_likely(h != NULL)) {
			b->hot = NULL;
			return h;
		}
#endif
		void **t = b->top;
		if (toy_likely(t != b->lo)) {
			b->top = t - 1;
			return t[-1];
		}
#endif
	}
	return toy_slow(size);
}

void free(void *ptr)
{
	size_t off = (size_t)((char *)ptr - base);
	if (!ptr || off >= REGION)
		return;
	unsigned c = page_cls[off >> LG_TPAGE];
	if (c == BIG_CLS)
		return;		/* never reused */
#if TOY_BIN == 0
	*(void **)ptr = bin_head[c];
	bin_head[c] = ptr;
#elif TOY_BIN == 1
	struct lbin *b = &bins[c];
	if (toy_likely(b->count < b->max)) {
		*(void **)ptr = b->head;
		b->head = ptr;
		b->count++;
	}
#elif TOY_BIN == 4
	struct sbin *b = &bins[c];
	void **t = b->top;
	if (toy_likely(t != b->hi)) {
		*t = b->cur;
		b->cur = ptr;
		b->top = t + 1;
	}
#else
	struct sbin *b = &bins[c];
#if TOY_BIN == 3
	if (toy_likely(b->hot == NULL)) {
		b->hot = ptr;
		return;
	}
#endif
	void **t = b->top;
	if (toy_likely(t != b->hi)) {
		*t = ptr;
		b->top = t + 1;
	}
#endif
}

size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	size_t off = (size_t)((char *)p - base), pg = off >> LG_TPAGE;
	if (page_cls[pg] != BIG_CLS)
		return 16 * (size_t)page_cls[pg];
	while (page_cls[pg] == BIG_CLS && !page_bytes[pg])
		pg--;		/* an aligned block inside its run */
	return page_bytes[pg] - (off - (pg << LG_TPAGE));
}

void *calloc(size_t n, size_t s)
{
	size_t t;
	if (__builtin_mul_overflow(n, s, &t)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = malloc(t);
	return p ? memset(p, 0, t) : NULL;
}

void *realloc(void *p, size_t s)
{
	if (!p)
		return malloc(s);
	size_t u = malloc_usable_size(p);
	if (s <= u)
		return p;
	void *q = malloc(s);
	if (q) {
		memcpy(q, p, u);
		free(p);
	}
	return q;
}

int posix_memalign(void **r, size_t a, size_t s)
{
	if (a < sizeof(void *) || (a & (a - 1)))
		return EINVAL;
	if (a <= 16) {
		*r = malloc(s);
		return *r ? 0 : ENOMEM;
	}
	char *p = toy_slow(s + a > 513 ? s + a : 513);	/* a run of its own */
	if (!p)
		return ENOMEM;
	*r = (void *)(((uintptr_t)p + a - 1) & ~(uintptr_t)(a - 1));
	return 0;
}

void *aligned_alloc(size_t a, size_t s)
{
	void *r;
	return posix_memalign(&r, a, s) ? NULL : r;
}

void *memalign(size_t a, size_t s)
{
	return aligned_alloc(a, s);
}
