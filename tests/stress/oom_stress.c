/*
 * oom_stress.c - stress under an address-space limit (run under ulimit -v).
 *
 * The process must run with a finite RLIMIT_AS (tests/stress/stress.mk uses
 * `ulimit -v 2097152`, 2 GiB); the test fails if the limit is missing, since
 * then nothing would be tested. Allocations may then fail, but only cleanly:
 * NULL with errno ENOMEM (posix_memalign: ENOMEM returned, *out untouched;
 * realloc: NULL and the old block intact). Nothing may crash or corrupt.
 *
 *  1. OOM_THREADS (4) threads, seed = index, OOM_OPS (3000) operations each
 *     on 256 slots: malloc/calloc/realloc/posix_memalign of 1 B..64 MiB
 *     (large ones often), every block carrying a pattern (sparse above
 *     256 KiB: 64 bytes per 64 KiB, plus the tail) checked before free.
 *     On a failure a quarter of the live blocks are freed and work goes on.
 *  2. One thread exhausts the space with 1 MiB blocks, then with 64-byte
 *     blocks (bounded), checks errno, frees it all.
 *  3. Recovery: with everything freed, 256 MiB and many small blocks can be
 *     allocated again.
 * Exit 0 when failures were only clean ones, some did happen, and the
 * process recovered; 1 otherwise.
 */
#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include "stress.h"

#define NSLOTS	256
#define SPARSE	(256u << 10)
#define STRIDE	(64u << 10)	/* sparse pattern: 64 bytes every 64 KiB */

struct blk {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};

static atomic_ulong n_fail, n_ok;

static void bfill(struct blk *b)
{
	if (b->n <= SPARSE) {
		pat_fill(b->p, b->n, b->tag);
		return;
	}
	for (size_t off = 0; off + 128 <= b->n; off += STRIDE)
		pat_fill(b->p + off, 64, b->tag + off);
	pat_fill(b->p + b->n - 64, 64, b->tag ^ 0xFFFF);
}

static int bcheck(const struct blk *b)
{
	if (b->n <= SPARSE)
		return pat_check(b->p, b->n, b->tag) == (size_t)-1;
	for (size_t off = 0; off + 128 <= b->n; off += STRIDE)
		if (pat_check(b->p + off, 64, b->tag + off) != (size_t)-1)
			return 0;
	return pat_check(b->p + b->n - 64, 64, b->tag ^ 0xFFFF) == (size_t)-1;
}

static void bfree(struct blk *b, unsigned idx)
{
	if (!bcheck(b))
		FAIL("t%u: block %p (%zu bytes) corrupt before free", idx, (void *)b->p, b->n);
	free(b->p);
	b->p = NULL;
}

static size_t pick(uint64_t *r)
{
	unsigned x = (unsigned)rng_below(r, 100);

	if (x < 50)
		return rng_size_log(r, 1, 4096);
	if (x < 75)
		return rng_size_log(r, 4097, 1 << 20);
	return rng_size_log(r, (1 << 20) + 1, 64 << 20);
}

static void failed(struct blk *s, uint64_t *r, unsigned idx, const char *what, size_t n, int err)
{
	atomic_fetch_add_explicit(&n_fail, 1, memory_order_relaxed);
	if (err != ENOMEM)
		FAIL("t%u: %s(%zu) failed with errno %d (%s), want ENOMEM", idx, what, n, err, strerror(err));
	for (unsigned i = 0; i < NSLOTS; i++)	/* make room */
		if (s[i].p && rng_below(r, 4) == 0)
			bfree(&s[i], idx);
}

static void *worker(void *arg)
{
	unsigned idx = (unsigned)(uintptr_t)arg;
	uint64_t r = rng_seed(77, idx);
	long ops = env_long("OOM_OPS", 3000);
	struct blk *s = calloc(NSLOTS, sizeof(*s));
	uint64_t tag = (uint64_t)(idx + 1) << 48;

	if (!s) {
		FAIL("t%u: calloc of the slot table failed", idx);
		return NULL;
	}
	for (long i = 0; i < ops && stress_failed() < 10; i++) {
		struct blk *b = &s[rng_below(&r, NSLOTS)];
		unsigned x = (unsigned)rng_below(&r, 100);
		size_t n = pick(&r);
		void *p;

		if (b->p && x < 40) {
			bfree(b, idx);
			continue;
		}
		if (b->p && x < 60) {
			struct blk old = *b;
			errno = 0;
			p = realloc(b->p, n);
			if (!p) {
				int e = errno;
				if (!bcheck(&old))
					FAIL("t%u: realloc(%p, %zu) failed and damaged the old block", idx, (void *)old.p, n);
				failed(s, &r, idx, "realloc", n, e);
				continue;
			}
			b->p = p;
			if (old.n <= SPARSE && n <= SPARSE &&
			    pat_check(p, old.n < n ? old.n : n, old.tag) != (size_t)-1)
				FAIL("t%u: realloc lost the prefix", idx);
			b->n = n;
			b->tag = ++tag;
			bfill(b);
			atomic_fetch_add_explicit(&n_ok, 1, memory_order_relaxed);
			continue;
		}
		if (b->p)
			bfree(b, idx);
		errno = 0;
		if (x < 80) {
			p = malloc(n);
			if (!p) {
				failed(s, &r, idx, "malloc", n, errno);
				continue;
			}
		} else if (x < 90) {
			p = calloc(1, n);
			if (!p) {
				failed(s, &r, idx, "calloc", n, errno);
				continue;
			}
			if (n <= SPARSE ? zero_check(p, n) != (size_t)-1
					: (zero_check(p, 4096) != (size_t)-1 ||
					   zero_check((char *)p + n - 4096, 4096) != (size_t)-1))
				FAIL("t%u: calloc(%zu) not zeroed", idx, n);
		} else {
			void *out = (void *)0x5;
			int rc = posix_memalign(&out, 4096, n);
			if (rc) {
				if (out != (void *)0x5)
					FAIL("t%u: posix_memalign failed (%d) but changed *out", idx, rc);
				failed(s, &r, idx, "posix_memalign", n, rc);
				continue;
			}
			p = out;
		}
		b->p = p;
		b->n = n;
		b->tag = ++tag;
		bfill(b);
		atomic_fetch_add_explicit(&n_ok, 1, memory_order_relaxed);
	}
	for (unsigned i = 0; i < NSLOTS; i++)
		if (s[i].p)
			bfree(&s[i], idx);
	free(s);
	return NULL;
}

/* VmSize and VmRSS lines of /proc/self/status, for failure messages. */
static const char *vm_status(void)
{
	static char out[128];
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	size_t n = 0;

	out[0] = 0;
	if (!f)
		return "?";
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmSize:", 7) || !strncmp(line, "VmRSS:", 6)) {
			line[strcspn(line, "\n")] = 0;
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", n ? ", " : "", line);
			if (n >= sizeof(out))
				break;
		}
	fclose(f);
	return out;
}

/* Phase 2: exhaust with 1 MiB blocks, then with 64-byte blocks. */
static void exhaust(void)
{
	void *big = NULL, *small = NULL;
	unsigned long nbig = 0, nsmall = 0;
	int e;

	for (;;) {
		void **p = malloc(1 << 20);
		if (!p) {
			e = errno;
			break;
		}
		*p = big;
		((char *)p)[(1 << 20) - 1] = 1;
		big = p;
		nbig++;
	}
	if (e != ENOMEM)
		FAIL("exhaust: malloc(1 MiB) failed with errno %d, want ENOMEM", e);
	e = 0;
	while (nsmall < (4ul << 20)) {
		void **p = malloc(64);
		if (!p) {
			e = errno;
			break;
		}
		*p = small;
		small = p;
		nsmall++;
	}
	if (e && e != ENOMEM)
		FAIL("exhaust: malloc(64) failed with errno %d, want ENOMEM", e);
	printf("oom_stress: exhausted the address space with %lu x 1 MiB, then %lu x 64 B (%s): %s\n",
	       nbig, nsmall, e ? "until NULL/ENOMEM" : "bound reached", vm_status());
	if (nbig == 0)
		FAIL("exhaust: not a single 1 MiB block");
	while (small) {
		void *n = *(void **)small;
		free(small);
		small = n;
	}
	while (big) {
		void *n = *(void **)big;
		free(big);
		big = n;
	}
}

int main(void)
{
	unsigned nthr = (unsigned)env_long("OOM_THREADS", 4);
	struct rlimit rl;
	pthread_t th[32];

	if (stress_banner("oom_stress"))
		return 1;
	if (getrlimit(RLIMIT_AS, &rl) || rl.rlim_cur == RLIM_INFINITY) {
		FAIL("RLIMIT_AS is not set: run under `ulimit -v` (e.g. 2097152)");
		return 1;
	}
	printf("oom_stress: RLIMIT_AS %llu MiB, %u threads\n", (unsigned long long)(rl.rlim_cur >> 20), nthr);
	if (nthr > 32)
		nthr = 32;
	for (unsigned t = 0; t < nthr; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t)) {
			FAIL("pthread_create under the limit failed");
			return 1;
		}
	for (unsigned t = 0; t < nthr; t++)
		pthread_join(th[t], NULL);
	printf("oom_stress: phase 1: %lu allocations succeeded, %lu failed cleanly; all freed: %s\n",
	       atomic_load(&n_ok), atomic_load(&n_fail), vm_status());
	if (atomic_load(&n_fail) == 0)
		FAIL("the limit was never reached: the test exercised nothing");
	exhaust();
	/* phase 3: recovery */
	{
		size_t n = 256u << 20;
		unsigned char *p = malloc(n);
		void *v[10000];
		if (!p) {
			FAIL("after freeing everything, malloc(256 MiB) still fails (errno %d; %s)", errno, vm_status());
		} else {
			for (size_t off = 0; off < n; off += STRIDE)
				p[off] = (unsigned char)off;
			free(p);
		}
		for (unsigned i = 0; i < 10000; i++)
			if (!(v[i] = malloc(16 + i % 2000)))
				FAIL("after freeing everything, malloc(%u) fails", 16 + i % 2000);
		for (unsigned i = 0; i < 10000; i++)
			free(v[i]);
	}
	printf("oom_stress: %lu failures\n", stress_failed());
	return stress_failed() ? 1 : 0;
}
