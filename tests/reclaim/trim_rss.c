/*
 * trim_rss.c - malloc_trim(0) gives freed memory back (issue 4, point 5).
 *
 * Allocates and touches ~256 MiB in log-uniform sizes from 16 B to 1 MiB
 * (every small and large class), frees it all and calls malloc_trim(0):
 *  - it returns 1 (memory was released);
 *  - RSS (/proc/self/statm) has fallen from its peak by at least the freed
 *    bytes minus SLACK;
 *  - ebb_stats() says nothing is dirty or purging any more;
 *  - a second malloc_trim(0), with nothing freed since, returns 0.
 * SLACK = 4 MiB + 1/64 of the freed bytes: what stays resident by design
 * after everything is freed: chunk headers (the run/class maps and slab
 * bitmaps at the start of each 4 MiB chunk: up to ~88 KiB each, of which
 * only the entries of pages in use get touched), the radix-map leaves,
 * this thread's stack and stdio buffers. Measured on Linux 6.18: RSS after
 * trim was within 0.2 MiB of the start, so the slack is generous and the
 * check still fails if even 1/20 of the heap stays resident.
 *
 * Argument "before-trim-resident" (run with EBB_RECLAIM=off): also checks
 * that RSS had NOT fallen before malloc_trim (within SLACK), so the drop
 * is malloc_trim's own work.
 */
#include <malloc.h>
#include <sys/mman.h>

#include "rtest.h"

#define TARGET	(256 * MiB)
#define NSLOTS	(1u << 16)

int main(int argc, char **argv)
{
	int want_resident = argc > 1 && strcmp(argv[1], "before-trim-resident") == 0;
	void **slot = mmap(NULL, NSLOTS * sizeof(void *), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (slot == MAP_FAILED) {
		printf("FAIL: mmap\n");
		return 1;
	}
	uint64_t seed = 42;
	/* warm up the allocator (init, first chunk, stdio) before the baseline */
	free(malloc(100));
	printf("trim_rss: decay_ms %llu, reclaim %s\n", (unsigned long long)rt_opt("decay_ms", 0),
	       getenv("EBB_RECLAIM") ? getenv("EBB_RECLAIM") : "thread (default)");
	size_t r0 = rt_rss_bytes();
	size_t freed = 0;
	unsigned n = 0;
	while (freed < TARGET && n < NSLOTS) {
		size_t sz = rt_size(&seed, 16, MiB);
		void *p = malloc(sz);
		if (!p) {
			printf("FAIL: malloc(%zu) failed\n", sz);
			return 1;
		}
		memset(p, 0xa5, sz);
		slot[n++] = p;
		freed += sz;
	}
	size_t r1 = rt_rss_bytes();
	for (unsigned i = 0; i < n; i++)
		free(slot[i]);
	size_t r2 = rt_rss_bytes();
	int t1 = malloc_trim(0);
	size_t r3 = rt_rss_bytes();
	struct ebb_stats st;
	rt_stats(&st);
	int t2 = malloc_trim(0);
	size_t slack = 4 * MiB + freed / 64;
	printf("blocks %u, freed %.1f MiB; RSS: start %.1f, peak %.1f, after free %.1f, "
	       "after trim %.1f MiB (drop %.1f MiB, slack %.1f MiB); trim -> %d, again -> %d\n",
	       n, rt_mib(freed), rt_mib(r0), rt_mib(r1), rt_mib(r2), rt_mib(r3),
	       rt_mib(r1 - r3), rt_mib(slack), t1, t2);
	printf("stats after trim: dirty %llu purging %llu purged %llu backend %s\n",
	       (unsigned long long)st.dirty_bytes, (unsigned long long)st.purging_bytes,
	       (unsigned long long)st.purged_bytes, st.backend);
	CHECK(r1 >= r0 + freed - slack, "the heap was not resident at its peak (%.1f MiB for %.1f MiB touched)",
	      rt_mib(r1 - r0), rt_mib(freed));
	CHECK(t1 == 1, "malloc_trim(0) returned %d after %.1f MiB were freed (want 1)", t1, rt_mib(freed));
	CHECK(r3 + freed <= r1 + slack, "RSS fell by %.1f MiB only; freed %.1f MiB (slack %.1f MiB)",
	      rt_mib(r1 > r3 ? r1 - r3 : 0), rt_mib(freed), rt_mib(slack));
	CHECK(st.dirty_bytes == 0 && st.purging_bytes == 0,
	      "after malloc_trim: %llu dirty, %llu purging bytes (want 0)",
	      (unsigned long long)st.dirty_bytes, (unsigned long long)st.purging_bytes);
	CHECK(t2 == 0, "a second malloc_trim(0) with nothing freed returned %d (want 0)", t2);
	if (want_resident)
		CHECK(r2 + slack >= r1, "RSS fell by %.1f MiB before malloc_trim with EBB_RECLAIM=off",
		      rt_mib(r1 - r2));
	return rt_result("trim_rss");
}
