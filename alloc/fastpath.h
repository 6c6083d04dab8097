/*
 * fastpath.h - the two fast paths, inlined into malloc.c's ebb_* entry
 * points and shim.c's libc names (a call through an alias would cost a jump).
 *
 * malloc: size -> class (a table up to 1 KiB), pop the thread cache's bin.
 * free: radix map -> chunk, page -> class, check that p is a block start
 * of a live run of this node and not already cached (tcache_key), push.
 * Anything unusual (empty or full bin, a foreign pointer, a block of
 * another node, huge blocks, an uninitialised thread) takes one unlikely
 * branch to a noinline function in refill.c. Check the generated code with
 * `objdump -d build/libebbmalloc.so` when changing this file.
 */
#ifndef EBB_FASTPATH_H
#define EBB_FASTPATH_H

#include "internal.h"

EBB_INLINE void *fast_malloc(size_t size)
{
	tcache_t *tc = tcache_self();
	tcache_enter(tc);
	if (ebb_likely(size <= LARGE_MAX)) {
		unsigned cls = sizeclass_of(size);
		tbin_t *b = &tc->bins[cls];
		void **p = b->head;
		if (ebb_likely(p != NULL)) {
			b->head = p[0];
			b->count--;
			p[1] = NULL;	/* the double-free key */
			tc->room += sizeclass_info[cls].size;
			tcache_exit(tc);
			return p;
		}
	}
	void *r = refill_malloc_slow(tc, size);
	tcache_exit(tc);
	return r;
}

EBB_INLINE void fast_free(void *ptr)
{
	tcache_t *tc = tcache_self();
	tcache_enter(tc);
	uintptr_t e = rtree_get(ptr);
	if (ebb_likely(e & 1)) {
		chunk_t *c = (chunk_t *)(e - 1);
		uintptr_t a = (uintptr_t)ptr;
		size_t pg = (a - (uintptr_t)c) >> LG_PAGE;
		unsigned cls = c->page_cls[pg];
		const struct class_info *ci = &sizeclass_info[cls];
		size_t off = a - ((uintptr_t)c + ((size_t)c->page_run[pg] << LG_PAGE));
		tbin_t *b = &tc->bins[cls];
		void **p = ptr;
		if (ebb_likely(cls != 0 && c->node == tc->node && b->count < b->max &&
			       (size_t)(((uint64_t)off * ci->recip) >> 32) * ci->size == off &&
			       (uintptr_t)p[1] != tcache_key && tc->room >= (int64_t)ci->size)) {
			p[0] = b->head;
			p[1] = (void *)tcache_key;
			b->head = p;
			b->count++;
			tc->room -= ci->size;
			tcache_exit(tc);
			return;
		}
	}
	refill_free_slow(tc, ptr);
	tcache_exit(tc);
}

#endif
