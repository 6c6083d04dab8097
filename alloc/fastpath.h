/*
 * fastpath.h - the two fast paths, inlined into malloc.c's ebb_* entry
 * points and shim.c's libc names (a call through an alias would cost a jump).
 *
 * malloc: size -> class (a table of every small size), pop the thread cache's bin
 * (an array of pointers: the block itself is written once, to clear the
 * double-free key, and never read; the fastfree build reads it, below).
 * free: radix map -> chunk, page -> class, check that p is a block start
 * of a live run of this node and not already cached (tcache_key), push.
 * Both mark the cache busy while they run and see the reclaim thread's
 * request to flush it in a bound they compare anyway (internal.h).
 * Anything unusual (empty or full bin, a foreign pointer, a block of
 * another node, huge blocks, an uninitialised thread, a steal) takes one unlikely
 * branch to a noinline function in refill.c. Check the generated code with
 * `objdump -d build/libebbmalloc.so` when changing this file.
 */
#ifndef EBB_FASTPATH_H
#define EBB_FASTPATH_H

#include "internal.h"

/* The double-free key, in one of two builds (README "Two builds", DESIGN.md
 * invariant 6).
 *
 * EBB_FREE_READS_BLOCK 1, libebbmalloc.so: free stores tcache_key in the
 * block's second word and first reads that word: a second free of a block
 * that is still cached is caught at once. A free of a block that is not in
 * the CPU's caches waits for that read (a miss per free where a program
 * frees blocks it has not touched lately: bench/results/fastfree.md).
 *
 * EBB_FREE_READS_BLOCK 0, libebbmalloc-fastfree.so: free only writes the
 * block (the key in its first word) and checks the one block on top of
 * the bin; malloc checks the block it hands out, which is in the CPU's
 * caches as a rule (it was freed lately, or it comes from a refill and is
 * not checked). A cached block has the key in its first word and not in
 * its second; a block in an arena has it in its second (put there as it
 * goes back, by the flush that checks the first), so a second free after
 * that is caught when malloc would hand the block out again. Stack slots
 * of blocks from a refill are tagged (bit 0): their words are whatever
 * the slab held. Cost: a second free is reported by the next malloc of
 * its class on that thread, not by the free. */
#ifndef EBB_FREE_READS_BLOCK
#define EBB_FREE_READS_BLOCK 1
#endif

EBB_INLINE void *fast_malloc(size_t size)
{
	tcache_t *tc = tcache_self();
	uint32_t busy = tcache_fast_enter(tc);
	/* small_lim is 0 while the reclaim thread steals the cache: no size
	 * is below it, not even 0 */
	if (ebb_likely(tcache_size_ok(tc, size))) {
		tbin_t *b = (tbin_t *)((char *)tc->bins + sizeclass_bin_off[(size + 15) >> 4]);
		void **t = b->top;
		if (ebb_likely(TBIN_LO(t) != b->lo_empty)) {
#if EBB_FREE_READS_BLOCK
			void **p = t[-1];
			b->top = t - 1;
			p[1] = NULL;	/* the double-free key */
			tcache_fast_exit(tc, busy);
			return p;
#else
			uintptr_t x = (uintptr_t)t[-1];
			void **p = (void **)x;
			if (ebb_likely(!(x & SLOT_FRESH))) {
				/* else the slow path reports it */
				if (ebb_likely(block_freed_here(p, tc->key))) {
					b->top = t - 1;
					/* top before the word: fork's child checks
					 * the blocks below the top it sees */
					ebb_compiler_barrier();
					p[0] = NULL;	/* handed out: no key */
					tcache_fast_exit(tc, busy);
					return p;
				}
			} else {	/* from a refill: the slab's words */
				p = slot_block(p);
				b->top = t - 1;
				ebb_compiler_barrier();
				p[0] = NULL;
				p[1] = NULL;
				tcache_fast_exit(tc, busy);
				return p;
			}
#endif
		}
	}
	return refill_malloc_slow(size, busy);	/* tail call; it gives busy back */
}

EBB_INLINE void fast_free(void *ptr)
{
	tcache_t *tc = tcache_self();
	uint32_t busy = tcache_fast_enter(tc);
	/* map_limit is 0 while the reclaim thread steals the cache */
	if (ebb_likely(tcache_owns_fast(tc, ptr))) {
		chunk_t *c = chunk_of(ptr);
		size_t in_chunk = (uintptr_t)ptr & CHUNK_MASK;
		size_t pg = in_chunk >> LG_PAGE;
		size_t cls16 = (size_t)c->page_cls[pg] * sizeof(tbin_t);	/* bins and checks alike */
		size_t off = in_chunk - c->page_off[pg];
		tbin_t *b = (tbin_t *)((char *)tc->bins + cls16);
		void **p = ptr;
		void **t = b->top;
		/* bin 0 has max 0, so class 0 (no block here) fails the room test */
		if (ebb_likely(TBIN_LO(t) != b->lo_full &&
			       sizeclass_is_block_at(cls16, off) &&
#if EBB_FREE_READS_BLOCK
			       (uintptr_t)p[1] != tc->key)) {
#else
			       t[-1] != p)) {	/* readable: no stack starts at slot 0 */
#endif
#if EBB_FREE_READS_BLOCK
			p[1] = (void *)tc->key;
#else
			p[0] = (void *)tc->key;
#endif
			t[0] = p;
			/* slot before top: fork's child flushes the stacks of
			 * threads stopped anywhere in here */
			ebb_compiler_barrier();
			b->top = t + 1;
			tcache_fast_exit(tc, busy);
			return;
		}
	}
	refill_free_slow(ptr, busy);	/* tail call; it gives busy back */
}

#endif
