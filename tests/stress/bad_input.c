/*
 * bad_input.c - DESIGN.md invariant 6 end to end: bad input gets a clear
 * answer, never silent corruption.
 *
 * Run without arguments, it runs every case below in a child process (this
 * program re-executed with the case name, so each case starts in a fresh
 * process under the same LD_PRELOAD), with stdout and stderr captured, and
 * judges the outcome:
 *  - "returns" cases must exit 0 (the child checks NULL/errno/values itself
 *    and prints FAIL lines) and, under ebbmalloc, write nothing to stderr;
 *  - "aborts" cases must die of SIGABRT. Under ebbmalloc stderr must be
 *    exactly one line, starting with `ebbmalloc: free(): invalid pointer 0x`
 *    or `ebbmalloc: free(): double free 0x`, and the address in it must be
 *    the pointer the child passed to free() (the child prints it first).
 *    glibc's messages differ, so under glibc only SIGABRT is checked, and
 *    the cases glibc does not detect (it faults instead) are ebbmalloc-only.
 *    Other allocators (jemalloc, ...) do not promise to detect misuse: the
 *    abort cases are reported as not applicable for them.
 *  - ebbmalloc's fastfree build (libebbmalloc-fastfree.so, README "Two
 *    builds") catches a second free at the next malloc of its size on that
 *    thread rather than at the free: one case, a second free with no malloc
 *    after it, must run to its end quietly there; another, a block freed
 *    by two threads, is caught by that build only.
 * glibc behaviour matched (2.36): realloc(p, 0) frees p and returns NULL;
 * realloc(NULL, n) is malloc(n); realloc(NULL, 0) returns a unique pointer.
 * aligned_alloc with a bad alignment: EINVAL from glibc 2.38 on; before
 * that glibc rounds the alignment up, which is accepted for glibc only.
 * Exit 0 when every case behaved, 1 otherwise.
 */
#include <gnu/libc-version.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include "stress.h"

#define EXPECT_NULL_ERRNO(expr, err) do { \
	errno = 0; \
	void *p_ = (expr); \
	int e_ = errno; \
	if (p_ != NULL) \
		FAIL("%s = %p, want NULL", #expr, p_); \
	else if (e_ != (err)) \
		FAIL("%s: errno %d (%s), want %d", #expr, e_, strerror(e_), err); \
} while (0)

static volatile size_t vzero;	/* defeats constant folding of sizes */

static size_t V(size_t x)
{
	return x + vzero;
}

/* Called through volatile pointers: the compiler may not assume that a
 * failed realloc freed its argument (gcc's -Wuse-after-free would). */
static void *(*volatile realloc_v)(void *, size_t) = realloc;
static void *(*volatile reallocarray_v)(void *, size_t, size_t) = reallocarray;

/* ---- cases that must return --------------------------------------------- */

static int case_malloc_huge(void)
{
	EXPECT_NULL_ERRNO(malloc(V(SIZE_MAX)), ENOMEM);
	EXPECT_NULL_ERRNO(malloc(V((size_t)PTRDIFF_MAX + 1)), ENOMEM);
	EXPECT_NULL_ERRNO(malloc(V(SIZE_MAX - 4095)), ENOMEM);
	EXPECT_NULL_ERRNO(malloc(V(SIZE_MAX - 16)), ENOMEM);
	EXPECT_NULL_ERRNO(malloc(V((size_t)1 << 62)), ENOMEM);	/* fits ptrdiff_t, no such memory */
	EXPECT_NULL_ERRNO(valloc(V(SIZE_MAX)), ENOMEM);
	EXPECT_NULL_ERRNO(pvalloc(V(SIZE_MAX - 100)), ENOMEM);
	EXPECT_NULL_ERRNO(memalign(64, V(SIZE_MAX)), ENOMEM);
	EXPECT_NULL_ERRNO(aligned_alloc(4096, V(SIZE_MAX - 8192)), ENOMEM);
	{
		void *out = (void *)0x7;
		int rc = posix_memalign(&out, 1 << 20, V(SIZE_MAX));
		if (rc != ENOMEM)
			FAIL("posix_memalign(1 MiB, SIZE_MAX) = %d, want ENOMEM", rc);
		if (out != (void *)0x7)
			FAIL("posix_memalign failed but wrote *out = %p", out);
	}
	/* the allocator still works afterwards */
	void *p = malloc(V(100));
	if (!p)
		FAIL("malloc(100) after the failures = NULL");
	free(p);
	return 0;
}

static int case_calloc_overflow(void)
{
	EXPECT_NULL_ERRNO(calloc(V(SIZE_MAX / 2 + 1), 2), ENOMEM);
	EXPECT_NULL_ERRNO(calloc(2, V(SIZE_MAX / 2 + 1)), ENOMEM);
	EXPECT_NULL_ERRNO(calloc(V((size_t)1 << 32) + 1, V((size_t)1 << 32)), ENOMEM);
	EXPECT_NULL_ERRNO(calloc(V(SIZE_MAX), V(SIZE_MAX)), ENOMEM);
	EXPECT_NULL_ERRNO(calloc(1, V(SIZE_MAX)), ENOMEM);
	EXPECT_NULL_ERRNO(calloc(V((size_t)PTRDIFF_MAX / 2 + 1), 2), ENOMEM);	/* no overflow, > PTRDIFF_MAX */
	/* a product that fits must still work */
	unsigned char *p = calloc(V(1000), 1000);
	if (!p || zero_check(p, 1000000) != (size_t)-1)
		FAIL("calloc(1000, 1000) = %p, not zeroed or NULL", (void *)p);
	free(p);
	return 0;
}

static int case_realloc_overflow(void)
{
	unsigned char *p = malloc(V(100)), *q;

	if (!p) {
		FAIL("malloc(100) = NULL");
		return 1;
	}
	pat_fill(p, 100, 9);
	EXPECT_NULL_ERRNO(reallocarray_v(p, V(SIZE_MAX / 2 + 1), 2), ENOMEM);
	EXPECT_NULL_ERRNO(reallocarray_v(p, 3, V(SIZE_MAX / 3 + 1)), ENOMEM);
	EXPECT_NULL_ERRNO(realloc_v(p, V(SIZE_MAX)), ENOMEM);
	EXPECT_NULL_ERRNO(realloc_v(p, V((size_t)PTRDIFF_MAX + 1)), ENOMEM);
	if (pat_check(p, 100, 9) != (size_t)-1)
		FAIL("a failed realloc/reallocarray damaged the original block");
	EXPECT_NULL_ERRNO(reallocarray_v(NULL, V(SIZE_MAX / 2 + 1), 2), ENOMEM);
	q = reallocarray_v(p, 25, 8);
	if (!q || pat_check(q, 100, 9) != (size_t)-1)
		FAIL("reallocarray_v(p, 25, 8) = %p lost the contents", (void *)q);
	free(q ? q : p);
	return 0;
}

static int case_posix_memalign_bad(void)
{
	static const size_t bad[] = { 0, 1, 2, 3, 4, 12, 24, 48, 96, 4097, 3 << 12,
				      (size_t)1 << 63 | 8, SIZE_MAX };

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *out = (void *)0x3;
		int rc = posix_memalign(&out, V(bad[i]), 64);
		if (rc != EINVAL)
			FAIL("posix_memalign(alignment %zu) = %d, want EINVAL (%d)", bad[i], rc, EINVAL);
		if (out != (void *)0x3)
			FAIL("posix_memalign(alignment %zu) failed but wrote *out = %p", bad[i], out);
		if (rc == 0 && out != (void *)0x3)
			free(out);
	}
	/* the smallest valid one: sizeof(void *) */
	void *out = NULL;
	if (posix_memalign(&out, V(sizeof(void *)), 1) || !out)
		FAIL("posix_memalign(sizeof(void *), 1) failed");
	free(out);
	return 0;
}

static int case_aligned_alloc_bad(void)
{
	static const size_t bad[] = { 0, 3, 24, 48, 96, 4097, (size_t)1 << 63 | 8 };
	const char *ver = gnu_get_libc_version();
	int major = 0, minor = 0;
	int lenient;

	sscanf(ver, "%d.%d", &major, &minor);
	/* glibc before 2.38 rounds a bad alignment up (aligned_alloc was memalign) */
	lenient = stress_is_glibc() && (major < 2 || (major == 2 && minor < 38));
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t a = bad[i];
		errno = 0;
		void *p = aligned_alloc(V(a), 64);
		int e = errno;
		if (!p && e == EINVAL)
			continue;
		if (lenient && a < ((size_t)1 << 62)) {
			size_t pow = 1;
			while (pow < a)
				pow <<= 1;
			if (p && ((uintptr_t)p & (pow - 1)) == 0) {
				free(p);
				continue;
			}
		}
		FAIL("aligned_alloc(%zu, 64) = %p errno %d, want NULL/EINVAL", a, p, e);
		free(p);
	}
	if (lenient)
		printf("note: glibc %s rounds bad aligned_alloc alignments up (EINVAL from 2.38)\n", ver);
	return 0;
}

static int case_realloc_zero(void)
{
	struct rlimit rl = { 1ul << 30, 1ul << 30 };

	/* glibc: realloc(p, 0) frees p and returns NULL. 3000 x 1 MiB
	 * that were not freed would not fit in a 1 GiB address space. */
	if (setrlimit(RLIMIT_AS, &rl))
		FAIL("setrlimit: %s", strerror(errno));
	for (int i = 0; i < 3000; i++) {
		unsigned char *p = malloc(V(1 << 20));
		if (!p) {
			FAIL("iteration %d: malloc(1 MiB) = NULL: realloc(p, 0) does not free p", i);
			break;
		}
		p[0] = p[(1 << 20) - 1] = 1;
		void *r = realloc(p, V(0));
		if (r != NULL) {
			FAIL("realloc(%p, 0) = %p, want NULL (glibc frees and returns NULL)", (void *)p, r);
			free(r);
			break;
		}
	}
	for (int i = 0; i < 100000; i++) {
		void *p = malloc(V(24 + i % 1000));
		if (!p || realloc(p, V(0)) != NULL) {
			FAIL("small realloc(p, 0) did not return NULL");
			break;
		}
	}
	/* realloc(NULL, n) is malloc(n) */
	for (size_t n = 1; n < (8 << 20); n = n * 3 + 1) {
		unsigned char *p = realloc(NULL, V(n));
		if (!p) {
			FAIL("realloc(NULL, %zu) = NULL", n);
			continue;
		}
		if (malloc_usable_size(p) < n)
			FAIL("realloc(NULL, %zu): usable size %zu", n, malloc_usable_size(p));
		if ((uintptr_t)p & 15)
			FAIL("realloc(NULL, %zu) = %p not 16-byte aligned", n, (void *)p);
		memset(p, 0xCC, n);
		free(p);
	}
	/* realloc(NULL, 0) is malloc(0): a unique pointer */
	void *a = realloc(NULL, V(0)), *b = realloc(NULL, V(0));
	if (!a || !b || a == b)
		FAIL("realloc(NULL, 0) twice = %p, %p: want two distinct pointers", a, b);
	free(a);
	free(b);
	return 0;
}

static int case_zero_sizes(void)
{
	void *p[64];

	for (int i = 0; i < 64; i++) {
		p[i] = (i & 1) ? malloc(V(0)) : calloc(V(0), 16);
		if (!p[i])
			FAIL("%s(0) = NULL", (i & 1) ? "malloc" : "calloc");
		for (int j = 0; j < i; j++)
			if (p[i] && p[i] == p[j])
				FAIL("two live zero-size blocks share %p", p[i]);
	}
	for (int i = 0; i < 64; i++)
		free(p[i]);
	for (int i = 0; i < 1000; i++)
		free(NULL);
	void *q = calloc(V(0), V(0));
	if (!q)
		FAIL("calloc(0, 0) = NULL");
	free(q);
	/* size 0 with an alignment: NULL, or a pointer that honours it */
	for (size_t a = 16; a <= (1 << 20); a <<= 1) {
		void *r[3] = { NULL, memalign(a, V(0)), aligned_alloc(a, V(0)) };
		int rc = posix_memalign(&r[0], a, V(0));
		if (rc)
			FAIL("posix_memalign(%zu, 0) = %d", a, rc);
		for (int k = 0; k < 3; k++) {
			if ((uintptr_t)r[k] & (a - 1))
				FAIL("%s(%zu, 0) = %p is not aligned", k == 0 ? "posix_memalign" : k == 1 ? "memalign" : "aligned_alloc",
				     a, r[k]);
			free(r[k]);
		}
	}
	return 0;
}

/* ---- cases that must abort ------------------------------------------------ */

static void say_ptr(void *p)
{
	printf("ptr=%p\n", p);
	fflush(stdout);
}

static int case_free_stack(void)
{
	char buf[64] __attribute__((aligned(16)));

	memset(buf, 0, sizeof(buf));
	say_ptr(buf);
	free(buf);
	return 0;	/* not reached if detected */
}

static int case_free_middle_small(void)
{
	unsigned char *p = malloc(V(256));

	memset(p, 0x11, 256);
	say_ptr(p + 64);
	free(p + 64);
	return 0;
}

static int case_free_middle_large(void)
{
	unsigned char *p = malloc(V(1 << 20));

	memset(p, 0x22, 1 << 20);
	say_ptr(p + 8192 + (16 - ((uintptr_t)p & 15)) % 16);
	free(p + 8192 + (16 - ((uintptr_t)p & 15)) % 16);
	return 0;
}

static int case_free_middle_huge(void)
{
	unsigned char *p = malloc(V(32 << 20));

	memset(p, 0x33, 32 << 20);
	/* page-aligned, 1 MiB in: looks like the start of something */
	unsigned char *mid = (unsigned char *)(((uintptr_t)p + (1 << 20)) & ~(uintptr_t)4095);
	say_ptr(mid);
	free(mid);
	return 0;
}

static int case_free_mmap(void)
{
	unsigned char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED) {
		FAIL("mmap: %s", strerror(errno));
		return 1;
	}
	say_ptr(m + 4096);
	free(m + 4096);
	return 0;
}

static int case_double_free_adjacent(void)
{
	void *p = malloc(V(64));

	memset(p, 0x44, 64);
	say_ptr(p);
	free(p);
	free(p);
	return 0;
}

/* p, then three other blocks, then p again */
static void free_p_twice_interleaved(void)
{
	void *p = malloc(V(64)), *q = malloc(V(64)), *r = malloc(V(100)), *s = malloc(V(64));

	memset(p, 0x55, 64);
	say_ptr(p);
	free(p);
	free(q);
	free(r);
	free(s);
	free(p);
}

/* what the cases below do after a second free: take 64-byte blocks again */
static void malloc_64_again(void)
{
	for (int i = 0; i < 8; i++)
		memset(malloc(V(64)), 0x66, 64);
}

static int case_double_free_interleaved(void)
{
	free_p_twice_interleaved();
	return 0;
}

/* The same, then the mallocs that hand the blocks out again: ebbmalloc's
 * fastfree build, which lets the second free through, must stop at the
 * malloc that would hand p out a second time (the default build and
 * glibc stop at the free). */
static int case_double_free_then_malloc(void)
{
	free_p_twice_interleaved();
	malloc_64_again();
	return 0;
}

/* A second free after the cache gave the block back (malloc_trim flushes
 * the thread's cache in ebbmalloc; glibc's tcache keeps it). A block of
 * the same slab stays live, so the slab stays too. */
static int case_double_free_after_trim(void)
{
	void *p = malloc(V(64)), *keep = malloc(V(64));

	memset(p, 0x77, 64);
	say_ptr(p);
	free(p);
	malloc_trim(0);
	free(p);
	malloc_64_again();
	free(keep);
	return 0;
}

/* Freed by this thread, then by another one (which exits): the block is
 * in two threads' caches. Neither glibc nor ebbmalloc's default build
 * looks in another thread's cache; the fastfree build finds it when this
 * thread's malloc is about to hand it out (its first word was cleared by
 * the other thread's flush). */
static void *free_it(void *p)
{
	free(p);
	return NULL;
}

static int case_double_free_cross_thread(void)
{
	void *p = malloc(V(64));
	pthread_t t;

	memset(p, 0x33, 64);
	say_ptr(p);
	free(p);
	if (pthread_create(&t, NULL, free_it, p) != 0 || pthread_join(t, NULL) != 0)
		return printf("FAIL pthread_create\n"), 1;
	malloc_64_again();
	return 0;
}

static int case_double_free_large(void)
{
	void *p = malloc(V(256 << 10));

	memset(p, 0x66, 256 << 10);
	say_ptr(p);
	free(p);
	free(p);
	return 0;
}

/* a freed huge block stays mapped in the huge cache for a while (8 MiB
 * fits its default 32 MiB): the second free must still be named */
static int case_double_free_huge(void)
{
	char *p = malloc(V(8 << 20));

	memset(p, 0x77, 4096);
	say_ptr(p);
	free(p);
	free(p);
	return 0;
}

/* ---- the driver -------------------------------------------------------- */

/* ABORTS_CHECKED: as ABORTS, but ebbmalloc's fastfree build does not read
 * the block on free and lets it through (README, Known limits): there the
 * case must run to its end, quietly, which also tells the two builds apart. */
/* ABORTS_FASTFREE_ONLY: only the fastfree build promises to stop it; for
 * the others it is not applicable. */
enum kind { RETURNS, ABORTS, ABORTS_EBB_ONLY, ABORTS_CHECKED, ABORTS_FASTFREE_ONLY };

struct bcase {
	const char *name;
	int (*fn)(void);
	enum kind kind;
	const char *msg;	/* ebbmalloc's line prefix; NULL: invalid or double accepted */
};

#define INVALID "ebbmalloc: free(): invalid pointer 0x"
#define DOUBLE  "ebbmalloc: free(): double free 0x"

static const struct bcase cases[] = {
	{ "malloc_huge", case_malloc_huge, RETURNS, NULL },
	{ "calloc_overflow", case_calloc_overflow, RETURNS, NULL },
	{ "realloc_overflow", case_realloc_overflow, RETURNS, NULL },
	{ "posix_memalign_bad", case_posix_memalign_bad, RETURNS, NULL },
	{ "aligned_alloc_bad", case_aligned_alloc_bad, RETURNS, NULL },
	{ "realloc_zero", case_realloc_zero, RETURNS, NULL },
	{ "zero_sizes", case_zero_sizes, RETURNS, NULL },
	{ "free_stack", case_free_stack, ABORTS_EBB_ONLY, INVALID },
	{ "free_middle_small", case_free_middle_small, ABORTS, INVALID },
	{ "free_middle_large", case_free_middle_large, ABORTS_EBB_ONLY, INVALID },
	{ "free_middle_huge", case_free_middle_huge, ABORTS_EBB_ONLY, INVALID },
	{ "free_mmap", case_free_mmap, ABORTS, INVALID },
	{ "double_free_adjacent", case_double_free_adjacent, ABORTS, DOUBLE },
	{ "double_free_interleaved", case_double_free_interleaved, ABORTS_CHECKED, DOUBLE },
	{ "double_free_then_malloc", case_double_free_then_malloc, ABORTS, DOUBLE },
	{ "double_free_after_trim", case_double_free_after_trim, ABORTS, DOUBLE },
	{ "double_free_cross_thread", case_double_free_cross_thread, ABORTS_FASTFREE_ONLY, DOUBLE },
	/* a large run may already be gone: either message is a clear answer */
	{ "double_free_large", case_double_free_large, ABORTS_EBB_ONLY, NULL },
	{ "double_free_huge", case_double_free_huge, ABORTS_EBB_ONLY, DOUBLE },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static char *slurp(int fd)
{
	static char bufs[2][8192];
	static int which;
	char *b = bufs[which++ & 1];
	ssize_t n = pread(fd, b, sizeof(bufs[0]) - 1, 0);

	b[n > 0 ? n : 0] = 0;
	close(fd);
	return b;
}

static int judge(const struct bcase *c, int st, const char *out, const char *err, const char *alloc)
{
	int ebb = strcmp(alloc, "ebbmalloc") == 0, glibc = strcmp(alloc, "glibc") == 0;

	if (c->kind == ABORTS_CHECKED && ebb && stress_is_fastfree()) {
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || *err) {
			printf("FAIL %s: the fastfree build stopped it (status %#x, stderr [%s]): "
			       "does its free read the block?\n", c->name, st, err);
			return 1;
		}
		printf("ok   %s (not caught by the fastfree build, as documented)\n", c->name);
		return -1;
	}
	if (c->kind == RETURNS) {
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("FAIL %s: %s %d\n", c->name, WIFSIGNALED(st) ? "killed by signal" : "exit",
			       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			return 1;
		}
		if (ebb && *err) {
			printf("FAIL %s: stderr not empty under ebbmalloc\n", c->name);
			return 1;
		}
		return 0;
	}
	if (!ebb && !glibc) {
		printf("n/a  %s: %s does not promise to detect this misuse\n", c->name, alloc);
		return -1;
	}
	if (c->kind == ABORTS_FASTFREE_ONLY && !(ebb && stress_is_fastfree())) {
		printf("n/a  %s: only ebbmalloc's fastfree build looks for this one\n", c->name);
		return -1;
	}
	if (c->kind == ABORTS_EBB_ONLY && !ebb) {
		printf("n/a  %s: glibc does not detect this one (it faults or corrupts)\n", c->name);
		return -1;
	}
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT) {
		if (WIFSIGNALED(st))
			printf("FAIL %s: killed by signal %d (%s), want SIGABRT\n", c->name, WTERMSIG(st), strsignal(WTERMSIG(st)));
		else
			printf("FAIL %s: exited %d, want SIGABRT (misuse not detected)\n", c->name, WEXITSTATUS(st));
		return 1;
	}
	if (!ebb)
		return 0;
	/* ebbmalloc: exactly one line, the right prefix, the right pointer */
	{
		const char *nl = strchr(err, '\n');
		unsigned long long want = 0, got = 0;
		const char *hex;

		if (sscanf(out, "ptr=%llx", &want) != 1) {
			printf("FAIL %s: the child did not report its pointer\n", c->name);
			return 1;
		}
		if (!nl || nl[1] != 0) {
			printf("FAIL %s: stderr must be exactly one line, got: [%s]\n", c->name, err);
			return 1;
		}
		if (c->msg ? strncmp(err, c->msg, strlen(c->msg)) != 0
			   : (strncmp(err, INVALID, strlen(INVALID)) != 0 &&
			      strncmp(err, DOUBLE, strlen(DOUBLE)) != 0)) {
			printf("FAIL %s: stderr line [%.*s], want it to start with [%s]\n", c->name,
			       (int)(nl - err), err, c->msg ? c->msg : INVALID " or " DOUBLE);
			return 1;
		}
		hex = strstr(err, " 0x");
		if (!hex || sscanf(hex + 1, "%llx", &got) != 1 || got != want) {
			printf("FAIL %s: the message names %#llx, the pointer freed was %#llx\n", c->name, got, want);
			return 1;
		}
	}
	return 0;
}

static int run_case(const struct bcase *c, const char *alloc)
{
	int out = memfd_create("out", 0), err = memfd_create("err", 0);
	pid_t pid;
	int st;

	if (out < 0 || err < 0)
		return printf("FAIL memfd_create: %s\n", strerror(errno)), 1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return printf("FAIL fork: %s\n", strerror(errno)), 1;
	if (pid == 0) {
		dup2(out, 1);
		dup2(err, 2);
		alarm(30);	/* survives exec: a hung case dies of SIGALRM */
		execl("/proc/self/exe", "bad_input", c->name, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return printf("FAIL waitpid: %s\n", strerror(errno)), 1;
	const char *o = slurp(out), *e = slurp(err);
	int bad = judge(c, st, o, e, alloc);
	if (bad < 0)	/* not applicable to this allocator: said why */
		return 0;
	if (!bad)
		printf("ok   %s%s\n", c->name, c->kind == RETURNS ? "" : WIFSIGNALED(st) ? " (SIGABRT)" : "");
	if (bad || getenv("BAD_INPUT_VERBOSE")) {
		if (*o)
			printf("     stdout: %s", o);
		if (*e)
			printf("     stderr: %s", e);
	}
	return bad;
}

int main(int argc, char **argv)
{
	const char *alloc;
	int bad = 0;

	if (argc == 2) {	/* child: run one case */
		for (unsigned i = 0; i < NCASES; i++)
			if (strcmp(argv[1], cases[i].name) == 0)
				return cases[i].fn() || stress_failed() ? 1 : 0;
		fprintf(stderr, "unknown case %s\n", argv[1]);
		return 2;
	}
	if (stress_banner("bad_input"))
		return 1;
	alloc = stress_allocator();
	for (unsigned i = 0; i < NCASES; i++)
		bad += run_case(&cases[i], alloc);
	printf("bad_input: %u cases under %s, %d failed\n", (unsigned)NCASES, alloc, bad);
	return bad ? 1 : 0;
}
