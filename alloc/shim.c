/*
 * shim.c - the libc malloc surface: the names a preloaded or linked
 * ebbmalloc answers to, and nothing else. Review the preload surface here.
 *
 * malloc and free inline the fast paths (fastpath.h); the rest forward to
 * the ebb_* entry points. mallopt() accepts every parameter and ignores it
 * (ebbmalloc is tuned with EBB_* options; M_ARENA_MAX, M_MMAP_THRESHOLD,
 * M_TRIM_THRESHOLD ... have no meaning here) and returns 1, as glibc does
 * for a parameter it accepts. The fork handlers are registered at init
 * (refill.c) and live with their modules.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastpath.h"

#define EXPORT EBB_EXPORT

EXPORT void *malloc(size_t size) { return fast_malloc(size); }
EXPORT void free(void *p) { fast_free(p); }
EXPORT void *calloc(size_t n, size_t size) { return ebb_calloc(n, size); }
EXPORT void *realloc(void *p, size_t size) { return ebb_realloc(p, size); }
EXPORT void *reallocarray(void *p, size_t n, size_t size) { return ebb_reallocarray(p, n, size); }
EXPORT int posix_memalign(void **out, size_t align, size_t size) { return ebb_posix_memalign(out, align, size); }
EXPORT void *aligned_alloc(size_t align, size_t size) { return ebb_aligned_alloc(align, size); }
EXPORT void *memalign(size_t align, size_t size) { return ebb_memalign(align, size); }
EXPORT void *valloc(size_t size) { return ebb_valloc(size); }
EXPORT void *pvalloc(size_t size) { return ebb_pvalloc(size); }
EXPORT size_t malloc_usable_size(void *p) { return ebb_malloc_usable_size(p); }
EXPORT void cfree(void *p);
EXPORT void cfree(void *p) { fast_free(p); }
EXPORT void free_sized(void *p, size_t size);
EXPORT void free_sized(void *p, size_t size)
{
	if (EBB_DEBUG >= 1)
		refill_check_sized("free_sized", p, 0, size);
	fast_free(p);
}
EXPORT void free_aligned_sized(void *p, size_t align, size_t size);
EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
	if (EBB_DEBUG >= 1)
		refill_check_sized("free_aligned_sized", p, align, size);
	fast_free(p);
}
EXPORT int malloc_trim(size_t pad) { return ebb_malloc_trim(pad); }

EXPORT int mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1;
}

EXPORT struct mallinfo2 mallinfo2(void)
{
	struct ebb_stats *st = stats_snapshot();
	struct mallinfo2 mi;
	memset(&mi, 0, sizeof(mi));
	if (!st)
		return mi;
	/* as glibc's: arena = uordblks + fordblks, and huge blocks (own
	 * mappings) only in hblks/hblkhd, so uordblks + hblkhd is what the
	 * program holds (the JVM adds them up: os::print_memory_info) */
	mi.arena = st->mapped_bytes - st->huge_bytes;	/* chunks + cached huge mappings */
	mi.ordblks = (size_t)st->chunks;
	mi.hblks = (size_t)st->huge_count;
	mi.hblkhd = st->huge_bytes;
	mi.uordblks = st->allocated_bytes - st->huge_bytes - st->tcache_bytes;	/* in use in chunks */
	mi.fordblks = mi.arena - mi.uordblks;		/* free (cached, dirty, clean) */
	mi.fsmblks = st->tcache_bytes;
	mi.keepcost = st->dirty_bytes;			/* what malloc_trim would release */
	stats_snapshot_free(st);
	return mi;
}

static int clamp_int(size_t v)
{
	return v > (size_t)0x7fffffff ? 0x7fffffff : (int)v;
}

EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi;
	memset(&mi, 0, sizeof(mi));
	mi.arena = clamp_int(m2.arena);
	mi.ordblks = clamp_int(m2.ordblks);
	mi.hblks = clamp_int(m2.hblks);
	mi.hblkhd = clamp_int(m2.hblkhd);
	mi.uordblks = clamp_int(m2.uordblks);
	mi.fordblks = clamp_int(m2.fordblks);
	mi.fsmblks = clamp_int(m2.fsmblks);
	mi.keepcost = clamp_int(m2.keepcost);
	return mi;
}

EXPORT void malloc_stats(void)
{
	ebb_stats_print(2, 0);
}

EXPORT int malloc_info(int options, FILE *fp)
{
	if (options != 0 || !fp) {
		errno = EINVAL;
		return -1;
	}
	struct ebb_stats *st = stats_snapshot();
	if (!st) {
		errno = ENOMEM;
		return -1;
	}
	fprintf(fp, "<malloc version=\"ebbmalloc-%d.%d\">\n", EBBMALLOC_VERSION_MAJOR,
		EBBMALLOC_VERSION_MINOR);
	for (unsigned n = 0; n < st->nnodes && n < EBB_STATS_MAX_NODES; n++) {
		const struct ebb_node_stats *ns = &st->node[n];
		fprintf(fp, "<heap nr=\"%u\">\n<total type=\"allocated\" size=\"%llu\"/>\n"
			"<total type=\"active\" size=\"%llu\"/>\n<total type=\"dirty\" size=\"%llu\"/>\n"
			"<total type=\"purged\" size=\"%llu\"/>\n<system type=\"current\" size=\"%llu\"/>\n</heap>\n",
			n, (unsigned long long)ns->allocated_bytes, (unsigned long long)ns->active_bytes,
			(unsigned long long)ns->dirty_bytes, (unsigned long long)ns->purged_bytes,
			(unsigned long long)ns->mapped_bytes);
	}
	fprintf(fp, "<total type=\"huge\" count=\"%llu\" size=\"%llu\"/>\n"
		"<total type=\"tcache\" size=\"%llu\"/>\n<system type=\"current\" size=\"%llu\"/>\n</malloc>\n",
		(unsigned long long)st->huge_count, (unsigned long long)st->huge_bytes,
		(unsigned long long)st->tcache_bytes, (unsigned long long)st->mapped_bytes);
	stats_snapshot_free(st);
	return 0;
}

/* glibc's internal names, which some programs and libraries call directly
 * (no header declares them) */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
EXPORT void *__libc_malloc(size_t size) { return fast_malloc(size); }
EXPORT void __libc_free(void *p) { fast_free(p); }
EXPORT void *__libc_calloc(size_t n, size_t size) { return ebb_calloc(n, size); }
EXPORT void *__libc_realloc(void *p, size_t size) { return ebb_realloc(p, size); }
EXPORT void *__libc_memalign(size_t align, size_t size) { return ebb_memalign(align, size); }
EXPORT void *__libc_valloc(size_t size) { return ebb_valloc(size); }
EXPORT void *__libc_pvalloc(size_t size) { return ebb_pvalloc(size); }
EXPORT int __posix_memalign(void **out, size_t align, size_t size) { return ebb_posix_memalign(out, align, size); }
EXPORT struct mallinfo2 __libc_mallinfo2(void) { return mallinfo2(); }
EXPORT int __libc_mallopt(int param, int value) { return mallopt(param, value); }
