/* test_chunk.c - the radix map never names memory the allocator has given
 * back to the kernel.
 *
 * Every unmapping the allocator makes goes through os_unmap or (for a huge
 * block moved by realloc) os_remap_move. This test is linked with
 * -Wl,--wrap for both, so each call is checked at the moment the range
 * leaves the process: no chunk slot in it may still be in the radix map or
 * carry a node tag in chunk_map. A late clear is a real bug, not a
 * bookkeeping nit: the kernel gives the range to the next mmap, another
 * thread registers its block there, and the late clear erases that entry
 * (its free then aborts with "invalid pointer"; CI saw it in fault_oom).
 *
 * The checks run inside the wrappers (no cmocka calls there: they also run
 * on the reclaim thread, which is off here); the tests assert that the
 * paths they drive did reach the wrappers and that no violation was seen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "internal.h"

int __real_os_unmap(void *addr, size_t size);
int __real_os_remap_move(void *addr, size_t old_size, size_t new_size, void *dst);
int __wrap_os_unmap(void *addr, size_t size);
int __wrap_os_remap_move(void *addr, size_t old_size, size_t new_size, void *dst);

static _Atomic unsigned unmaps, moves, violations;
static void *_Atomic bad_addr;

/* 1 if some chunk slot of [addr, addr + size) is still known to the map. */
static int range_still_named(const void *addr, size_t size)
{
	uintptr_t a = ALIGN_UP((uintptr_t)addr, CHUNK_SIZE), end = (uintptr_t)addr + size;
	for (; a < end; a += CHUNK_SIZE)
		if (rtree_get((void *)a) != 0 || chunk_map[a >> LG_CHUNK] != 0) {
			bad_addr = (void *)a;
			return 1;
		}
	return 0;
}

int __wrap_os_unmap(void *addr, size_t size)
{
	unmaps++;
	if (range_still_named(addr, size))
		violations++;
	return __real_os_unmap(addr, size);
}

/* mremap(MREMAP_FIXED) unmaps the old range when it succeeds: by then the
 * map must have forgotten it (it cannot be checked later: another thread
 * may map the range again in between). */
int __wrap_os_remap_move(void *addr, size_t old_size, size_t new_size, void *dst)
{
	int r = __real_os_remap_move(addr, old_size, new_size, dst);
	if (r == 0) {
		moves++;
		if (range_still_named(addr, old_size))
			violations++;
	}
	return r;
}

static int setup(void **state)
{
	(void)state;
	setenv("EBB_RECLAIM", "off", 1);	/* no other thread unmaps */
	setenv("EBB_HUGE_CACHE_BYTES", "0", 1);	/* a freed huge block is unmapped at once */
	ebb_init_slow();
	return 0;
}

static void expect_clean(void)
{
	if (violations)
		fail_msg("%u unmapping(s) of a range the radix map still named (%p)", (unsigned)violations,
			 (void *)bad_addr);
}

/* A huge block that cannot grow in place (a page we mapped sits right
 * after it) is moved; its old address must be forgotten before the move. */
static void test_huge_move_forgets_old_address(void **state)
{
	(void)state;
	violations = 0;
	size_t n = (size_t)5 << 20;
	unsigned char *p = ebb_malloc(n);
	assert_non_null(p);
	assert_int_equal(rtree_get(p) & 1, 0);	/* a huge block */
	memset(p, 0x5a, n);
	size_t map = ALIGN_UP(n, PAGE_SIZE);
	void *wall = mmap(p + map, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	assert_ptr_equal(wall, p + map);
	unsigned m0 = moves;
	unsigned char *q = ebb_realloc(p, (size_t)20 << 20);
	assert_non_null(q);
	assert_ptr_not_equal(q, p);
	assert_int_equal(moves, m0 + 1);	/* moved by mremap, not copied */
	assert_int_equal(rtree_get(p), 0);
	assert_int_not_equal(rtree_get(q), 0);
	for (size_t i = 0; i < n; i += 4096)
		assert_int_equal(q[i], 0x5a);
	assert_int_equal(q[n - 1], 0x5a);
	expect_clean();
	/* the old range is free again: a new huge block may land there, and
	 * must be freeable */
	munmap(wall, PAGE_SIZE);
	unsigned char *r = ebb_malloc(n);
	assert_non_null(r);
	ebb_free(r);
	ebb_free(q);
	expect_clean();
}

/* Shrinking unmaps the tail; freeing (huge cache off) unmaps the block. */
static void test_huge_shrink_and_free(void **state)
{
	(void)state;
	violations = 0;
	unsigned u0 = unmaps;
	unsigned char *p = ebb_malloc((size_t)24 << 20);
	assert_non_null(p);
	unsigned char *q = ebb_realloc(p, (size_t)5 << 20);
	assert_ptr_equal(q, p);		/* shrunk in place */
	ebb_free(q);
	assert_true(unmaps >= u0 + 2);
	assert_int_equal(rtree_get(p), 0);
	expect_clean();
}

/* An empty chunk given back by malloc_trim is forgotten before munmap. */
static void test_chunk_release(void **state)
{
	(void)state;
	violations = 0;
	enum { N = 64 };
	void *b[N];
	for (int i = 0; i < N; i++) {	/* 64 x 1 MiB: several chunks */
		b[i] = ebb_malloc((size_t)1 << 20);
		assert_non_null(b[i]);
	}
	for (int i = 0; i < N; i++)
		ebb_free(b[i]);
	unsigned u0 = unmaps;
	ebb_malloc_trim(0);
	assert_true(unmaps > u0);	/* at least one chunk went back */
	for (int i = 0; i < N; i++)
		if (rtree_get(b[i]) != 0)
			assert_int_equal(chunk_of(b[i])->magic, CHUNK_MAGIC);	/* a kept chunk */
	expect_clean();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_huge_move_forgets_old_address),
		cmocka_unit_test(test_huge_shrink_and_free),
		cmocka_unit_test(test_chunk_release),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
