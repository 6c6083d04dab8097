/*
 * fuzz_ebb.c - libFuzzer harness: the fuzz input is a program of
 * malloc-family operations run through the ebb_* API of the DEBUG=3
 * library (built with ASan + UBSan and coverage, tests/fuzz/fuzz.mk).
 *
 * Input: byte 0 chooses the mode (bit 0: several threads, two or, with
 * bit 3, four; bit 1: the OS
 * fails - byte 1 seeds random mmap (probability (byte 0 >> 2) / 64),
 * mremap and madvise failures through alloc/fault.c, and allocations may
 * then fail, but only with NULL/ENOMEM and the old block intact), then each
 * operation is an opcode byte followed by its argument bytes (missing bytes
 * read as 0):
 *   op % 12  0 malloc  1 calloc  2 realloc  3 posix_memalign
 *            4 aligned_alloc  5 memalign  6 free  7 usable_size
 *            8 trim / reclaim / thread_idle  9 hand off (other thread frees)
 *           10 realloc to 0 bytes (frees)  11 free_sized
 *   slot   one byte: which of NSLOT slots of the thread
 *   size   two bytes: the top 2 bits pick the range (small, medium,
 *          large; huge only when both bytes are 0xff..), the rest the size
 *   align  one byte: log2 of the alignment (posix_memalign may get a bad
 *          one: EINVAL is checked)
 * With several threads the program is cut in as many parts, which run at
 * the same time, the first on the calling thread; handed-off blocks are
 * freed by whichever thread takes them: remote frees.
 *
 * Oracle: every block is patterned (hard.h; a 0-byte block through its
 * usable bytes) and checked on free, realloc and at the end; usable size
 * >= request; alignment; calloc zero; realloc keeps contents; every 64
 * operations and at the end of an input every arena's walker
 * (arena_is_valid) and the thread's cache walker
 * (tcache_is_valid, inside the idle-flush gate: called outside it, it
 * races with the reclaim thread stealing the cache - the harness's first
 * "finding", crash-555d2b10, reproduced at once with EBB_TCACHE_IDLE_MS=1)
 * must pass; plus ASan/UBSan and the library's own
 * DEBUG=3 assertions. A failure aborts (libFuzzer saves the input).
 * Everything is freed at the end of each input.
 */
#include "internal.h"
#include "fault.h"
#define HARD_NOCOV __attribute__((no_sanitize("coverage", "address")))
#include "hard.h"

#define NSLOT	64
#define HAND	64
#define MAX_THREADS 4
#ifndef FUZZ_WALK_EVERY
#define FUZZ_WALK_EVERY 64	/* ops between walks of every arena */
#endif

struct fslot {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};

struct fthread {
	const uint8_t *data;
	size_t size, pos;
	unsigned parity, nthreads;
	struct fslot s[NSLOT];
	unsigned ops;
};

static struct {
	pthread_mutex_t lock;
	struct fslot q[HAND];
	unsigned n;
} hand = { .lock = PTHREAD_MUTEX_INITIALIZER };
static _Atomic uint64_t ftag = 1;
static int fail_ok;	/* faults armed for this input */

#define FCHECK(c, ...) do { if (!(c)) { fprintf(stderr, "fuzz_ebb: " __VA_ARGS__); \
	fprintf(stderr, "\n"); abort(); } } while (0)

static uint8_t next(struct fthread *t)
{
	return t->pos < t->size ? t->data[t->pos++] : 0;
}

static size_t read_size(struct fthread *t)
{
	unsigned hi = next(t), lo = next(t);
	unsigned v = (hi << 8 | lo) & 0x3fff;
	switch (hi >> 6) {
	case 0: return v & 0x3ff;			/* 0 .. 1 KiB */
	case 1: return (size_t)v * 2 + 1;		/* .. 32 KiB */
	case 2: return (size_t)v * 128 + 4096;		/* .. 2 MiB */
	default:
		if (v == 0x3fff)			/* rare: huge */
			return ((size_t)3 << 20) + next(t) * 4096u;
		return (size_t)v * 4;			/* .. 64 KiB */
	}
}

static void set(struct fslot *s, void *p, size_t n)
{
	s->p = p;
	s->n = n;
	s->tag = atomic_fetch_add_explicit(&ftag, 1, memory_order_relaxed);
	pat_fill(p, n, s->tag);
}

static void check(const struct fslot *s, const char *when)
{
	size_t bad = pat_check(s->p, s->n, s->tag);
	FCHECK(bad == SIZE_MAX, "%s: block %p (%zu bytes) corrupt at %zu", when, (void *)s->p, s->n,
	       bad);
	FCHECK(ebb_malloc_usable_size(s->p) >= s->n, "%s: usable size %zu < %zu", when,
	       ebb_malloc_usable_size(s->p), s->n);
}

static void release(struct fslot *s)
{
	if (!s->p)
		return;
	check(s, "free");
	ebb_free(s->p);
	s->p = NULL;
}

/* 1 if p is a block (recorded in s), 0 if an allowed failure */
static int got(struct fslot *s, void *p, size_t n, size_t align, const char *fn)
{
	if (!p && fail_ok) {
		FCHECK(errno == ENOMEM, "%s(%zu) NULL with errno %d", fn, n, errno);
		return 0;
	}
	FCHECK(p != NULL, "%s(%zu) failed (errno %d)", fn, n, errno);
	FCHECK(((uintptr_t)p & (align - 1)) == 0, "%s(%zu) = %p not aligned to %zu", fn, n, p, align);
	/* a 0-byte block is patterned through its usable bytes: a pattern of
	 * nothing let the one failure of malloc(0) (ba88ef8) pass every check
	 * until usable_size found the block's slab gone */
	set(s, p, n ? n : ebb_malloc_usable_size(p));
	return 1;
}

static void walk(void)
{
	for (unsigned i = 0; i < narenas; i++)
		FCHECK(arena_is_valid(arenas[i]), "arena %u fails its invariant walker", i);
	/* inside the idle-flush gate, as the library's own DEBUG=3 walk: the
	 * reclaim thread may otherwise be stealing this cache right now */
	tcache_t *tc = tcache_self();
	tcache_enter(tc);
	int ok = tcache_is_valid(tc);
	tcache_exit(tc);
	FCHECK(ok, "the thread cache fails its walker");
}

static void take_handoff(void)
{
	struct fslot s = { 0 };
	pthread_mutex_lock(&hand.lock);
	if (hand.n)
		s = hand.q[--hand.n];
	pthread_mutex_unlock(&hand.lock);
	release(&s);
}

static void step(struct fthread *t)
{
	uint8_t op = next(t) % 12;
	struct fslot *s = &t->s[next(t) % NSLOT];
	size_t n, align;
	void *p;

	switch (op) {
	case 0:
		release(s);
		n = read_size(t);
		errno = 0;
		got(s, ebb_malloc(n), n, 16, "malloc");
		break;
	case 1: {
		release(s);
		size_t k = 1 + next(t) % 16;
		n = read_size(t) / k;
		errno = 0;
		p = ebb_calloc(k, n);
		FCHECK(!p || zero_check(p, k * n), "calloc(%zu, %zu) = %p not zeroed", k, n, p);
		got(s, p, k * n, 16, "calloc");
		break;
	}
	case 2:
		n = read_size(t);
		if (!s->p) {
			errno = 0;
			got(s, ebb_realloc(NULL, n), n, 16, "realloc(NULL)");
			break;
		}
		check(s, "realloc");
		if (n == 0)
			n = 1;	/* realloc(p, 0) is op 10 */
		errno = 0;
		p = ebb_realloc(s->p, n);
		if (!p && fail_ok) {
			FCHECK(errno == ENOMEM, "realloc(%zu) NULL with errno %d", n, errno);
			check(s, "after a failed realloc");
			break;
		}
		FCHECK(p, "realloc(%zu) failed", n);
		FCHECK(pat_check_clip(p, s->n, s->n < n ? s->n : n, s->tag) == SIZE_MAX,
		       "realloc %zu -> %zu lost contents", s->n, n);
		set(s, p, n);
		break;
	case 3: {
		release(s);
		unsigned lg = next(t) % 24;
		align = (size_t)1 << lg;
		if (next(t) & 1)
			align += 8;	/* not a power of two: EINVAL */
		n = read_size(t);
		p = (void *)0x1;
		int r = ebb_posix_memalign(&p, align, n);
		if (align & (align - 1) || align % sizeof(void *)) {
			FCHECK(r == EINVAL && p == (void *)0x1, "posix_memalign(%zu) = %d", align, r);
			break;
		}
		if (r == ENOMEM && fail_ok) {
			FCHECK(p == (void *)0x1, "failed posix_memalign wrote *out");
			break;
		}
		FCHECK(r == 0, "posix_memalign(%zu, %zu) = %d", align, n, r);
		got(s, p, n, align, "posix_memalign");
		break;
	}
	case 4:
		release(s);
		align = (size_t)1 << (next(t) % 22);
		n = read_size(t);
		errno = 0;
		got(s, ebb_aligned_alloc(align, n), n, align, "aligned_alloc");
		break;
	case 5:
		release(s);
		align = (size_t)1 << (next(t) % 22);
		n = read_size(t);
		errno = 0;
		got(s, ebb_memalign(align, n), n, align, "memalign");
		break;
	case 6:
		release(s);
		break;
	case 7:
		if (s->p)
			check(s, "usable_size");
		else
			FCHECK(ebb_malloc_usable_size(NULL) == 0, "usable_size(NULL)");
		break;
	case 8:
		switch (next(t) % 3) {
		case 0: ebb_malloc_trim(next(t)); break;
		case 1: ebb_reclaim((size_t)next(t) << 12); break;
		default: ebb_thread_idle(); break;
		}
		break;
	case 9:
		if (!s->p)
			break;
		check(s, "hand-off");
		if (t->nthreads > 1) {
			pthread_mutex_lock(&hand.lock);
			if (hand.n < HAND) {
				hand.q[hand.n++] = *s;
				s->p = NULL;
			}
			pthread_mutex_unlock(&hand.lock);
		}
		release(s);	/* no room / one thread: free here */
		break;
	case 10:
		if (s->p) {
			check(s, "realloc(p, 0)");
			FCHECK(ebb_realloc(s->p, 0) == NULL, "realloc(p, 0) != NULL");
			s->p = NULL;
		}
		break;
	case 11:
		if (s->p) {
			check(s, "free_sized");
			ebb_free_sized(s->p, s->n);
			s->p = NULL;
		}
		break;
	}
	if (t->nthreads > 1 && (t->ops & 3) == 0)
		take_handoff();
	if (++t->ops % FUZZ_WALK_EVERY == 0)
		walk();
}

static void *run(void *arg)
{
	struct fthread *t = arg;
	while (t->pos < t->size)
		step(t);
	for (unsigned i = 0; i < NSLOT; i++)
		release(&t->s[i]);
	walk();
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fthread th[MAX_THREADS];
	if (size < 1)
		return 0;
	unsigned nthreads = data[0] & 1 ? (data[0] & 8 ? 4 : 2) : 1;
	fail_ok = (data[0] & 2) && size > 1;
	if (fail_ok) {
		char spec[128];
		snprintf(spec, sizeof(spec), "mmap=rand:0.%02u,mremap=rand:0.5,madvise=rand:0.3,seed=%u",
			 (unsigned)(data[0] >> 2) * 100 / 64, (unsigned)data[1]);
		FCHECK(fault_configure(spec) == 0, "fault_configure(%s)", spec);
		data++;
		size--;
	}
	data++;
	size--;
	memset(th, 0, sizeof(th));
	if (nthreads == 1) {
		th[0] = (struct fthread){ .data = data, .size = size, .nthreads = 1 };
		run(&th[0]);
	} else {
		/* cut the program in nthreads parts, one per thread */
		size_t part = size / nthreads;
		pthread_t pt[MAX_THREADS];
		for (unsigned i = 0; i < nthreads; i++)
			th[i] = (struct fthread){ .data = data + i * part,
						  .size = i + 1 < nthreads ? part : size - i * part,
						  .nthreads = nthreads };
		for (unsigned i = 1; i < nthreads; i++)
			FCHECK(pthread_create(&pt[i], NULL, run, &th[i]) == 0, "pthread_create");
		run(&th[0]);
		for (unsigned i = 1; i < nthreads; i++)
			pthread_join(pt[i], NULL);
	}
	while (hand.n)
		take_handoff();
	if (fail_ok)
		fault_configure(NULL);
	walk();
	return 0;
}
