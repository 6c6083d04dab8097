/*
 * malloc.c - the public ebb_* entry points (fast paths in fastpath.h).
 *
 * The argument checks of the malloc family live here: overflow of
 * calloc/reallocarray (ENOMEM), alignments (EINVAL), realloc's edge cases
 * (in refill.c). errno is set only at this boundary.
 */
#include <errno.h>
#include <string.h>

#include "fastpath.h"

const int ebb_build_free_reads_block = EBB_FREE_READS_BLOCK;

EBB_EXPORT void *ebb_malloc(size_t size)
{
	return fast_malloc(size);
}

EBB_EXPORT void ebb_free(void *ptr)
{
	fast_free(ptr);
}

EBB_EXPORT void *ebb_calloc(size_t nmemb, size_t size)
{
	size_t total;
	if (ebb_unlikely(__builtin_mul_overflow(nmemb, size, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	if (total > LARGE_MAX)
		return refill_calloc_huge(total);	/* zero unless reused */
	void *p = ebb_malloc(total);
	if (p)
		memset(p, 0, total);
	return p;
}

EBB_EXPORT void *ebb_realloc(void *ptr, size_t size)
{
	return refill_realloc(ptr, size);
}

EBB_EXPORT void *ebb_reallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(nmemb, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return refill_realloc(ptr, total);
}

static int align_ok(size_t align)
{
	return align && !(align & (align - 1));
}

EBB_EXPORT int ebb_posix_memalign(void **out, size_t align, size_t size)
{
	if (!align_ok(align) || align % sizeof(void *))
		return EINVAL;
	int saved = errno;
	void *p = refill_aligned(align, size);
	if (!p)
		return ENOMEM;
	errno = saved;
	*out = p;
	return 0;
}

EBB_EXPORT void *ebb_aligned_alloc(size_t align, size_t size)
{
	if (!align_ok(align)) {
		errno = EINVAL;
		return NULL;
	}
	return refill_aligned(align, size);
}

EBB_EXPORT void *ebb_memalign(size_t align, size_t size)
{
	/* glibc's memalign rounds a non-power-of-two alignment up */
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (!align_ok(align))
		align = align ? (size_t)1 << (64 - __builtin_clzll((unsigned long long)align)) : 1;
	return refill_aligned(align, size);
}

EBB_EXPORT void *ebb_valloc(size_t size)
{
	return refill_aligned(PAGE_SIZE, size);
}

EBB_EXPORT void *ebb_pvalloc(size_t size)
{
	if (size > SIZE_MAX - PAGE_SIZE) {
		errno = ENOMEM;
		return NULL;
	}
	return refill_aligned(PAGE_SIZE, ALIGN_UP(size ? size : 1, PAGE_SIZE));
}

EBB_EXPORT size_t ebb_malloc_usable_size(void *ptr)
{
	return refill_usable_size(ptr);
}

EBB_EXPORT void ebb_free_sized(void *ptr, size_t size)
{
	if (EBB_DEBUG >= 1)
		refill_check_sized("free_sized", ptr, 0, size);
	ebb_free(ptr);
}

EBB_EXPORT void ebb_free_aligned_sized(void *ptr, size_t align, size_t size)
{
	if (EBB_DEBUG >= 1)
		refill_check_sized("free_aligned_sized", ptr, align, size);
	ebb_free(ptr);
}
