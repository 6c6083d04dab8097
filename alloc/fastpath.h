/*
 * fastpath.h - the two fast paths, inlined into malloc.c's ebb_* entry
 * points and shim.c's libc names (a call through an alias would cost a jump).
 *
 * malloc: size -> class (a table of every small size), pop the thread cache's bin
 * (an array of pointers: the block itself is written once, to clear the
 * double-free key, and never read).
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
	if (ebb_likely(!tcache_enter_fast(tc) && size <= SMALL_MAX)) {
		tbin_t *b = (tbin_t *)((char *)tc->bins + sizeclass_bin_off[(size + 15) >> 4]);
		void **t = b->top;
		if (ebb_likely(TBIN_LO(t) != b->lo_empty)) {
			void **p = t[-1];
			b->top = t - 1;
			p[1] = NULL;	/* the double-free key */
			tcache_exit(tc);
			return p;
		}
	}
	return refill_malloc_slow(size);	/* tail call; it calls tcache_exit */
}

EBB_INLINE void fast_free(void *ptr)
{
	tcache_t *tc = tcache_self();
	int stealing = tcache_enter_fast(tc);
	if (ebb_likely(chunk_is_local_fast(ptr, tc->node_tag) && !stealing)) {
		chunk_t *c = chunk_of(ptr);
		size_t in_chunk = (uintptr_t)ptr & CHUNK_MASK;
		size_t pg = in_chunk >> LG_PAGE;
		unsigned cls = c->page_cls[pg];
		size_t off = in_chunk - c->page_off[pg];
		tbin_t *b = &tc->bins[cls];
		void **p = ptr;
		void **t = b->top;
		/* bin 0 has max 0, so class 0 (no block here) fails the room test */
		if (ebb_likely(TBIN_LO(t) != b->lo_full &&
			       sizeclass_is_block_cls(cls, off) &&
			       (uintptr_t)p[1] != tc->key)) {
			p[1] = (void *)tc->key;
			t[0] = p;
			/* slot before top: fork's child flushes the stacks of
			 * threads stopped anywhere in here */
			ebb_compiler_barrier();
			b->top = t + 1;
			tcache_exit(tc);
			return;
		}
	}
	refill_free_slow(ptr);	/* tail call; it calls tcache_exit */
}

#endif
