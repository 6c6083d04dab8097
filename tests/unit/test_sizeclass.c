/* test_sizeclass.c - size <-> class math: the table agrees with the
 * formula, every size maps to the smallest class that holds it, the waste
 * bound of sizeclass.c holds, and slab geometry fits the bitmap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "internal.h"

static int setup(void **state)
{
	(void)state;
	ebb_init_slow();
	return 0;
}

static void test_table_matches_formula(void **state)
{
	(void)state;
	for (size_t s = 0; s <= 1024; s++)
		assert_int_equal(sizeclass_of(s), sizeclass_of_slow(s));
}

/* The fast path's lookup (every small size) names the bin of the class
 * that serves the size. */
static void test_fast_table_matches_classes(void **state)
{
	(void)state;
	for (size_t sz = 0; sz <= SMALL_MAX; sz++) {
		unsigned off = sizeclass_bin_off[(sz + 15) >> 4];
		assert_int_equal(off % sizeof(tbin_t), 0);
		assert_int_equal(off / sizeof(tbin_t), sizeclass_of(sz));
	}
}

static void test_smallest_fitting_class(void **state)
{
	(void)state;
	for (size_t s = 1; s <= LARGE_MAX; s++) {
		unsigned c = sizeclass_of(s);
		assert_true(c >= 1 && c <= NCLASS);
		assert_true(sizeclass_size(c) >= s);
		if (c > 1)
			assert_true(sizeclass_size(c - 1) < s);
	}
	assert_int_equal(sizeclass_of(0), 1);
}

static void test_waste_bound(void **state)
{
	(void)state;
	for (size_t s = 1; s <= LARGE_MAX; s++) {
		size_t waste = sizeclass_size(sizeclass_of(s)) - s;
		if (s <= 128)
			assert_true(waste <= 15);
		else
			assert_true(waste * 8 < s);	/* < 12.5 % */
	}
}

static void test_class_sizes_aligned(void **state)
{
	(void)state;
	for (unsigned c = 1; c <= NCLASS; c++) {
		assert_int_equal(sizeclass_size(c) % MIN_ALIGN, 0);
		if (c > NSMALL)
			assert_int_equal(sizeclass_size(c) % PAGE_SIZE, 0);
	}
	assert_int_equal(sizeclass_size(NSMALL), SMALL_MAX);
	assert_int_equal(sizeclass_size(NCLASS), LARGE_MAX);
}

static void test_slab_geometry(void **state)
{
	(void)state;
	for (unsigned c = 1; c <= NSMALL; c++) {
		const struct class_info *ci = &sizeclass_info[c];
		assert_true(ci->slab_pages >= 1 && ci->slab_pages <= SLAB_MAX_PAGES);
		assert_true(ci->slab_objs >= 1);
		assert_true((size_t)ci->slab_objs * ci->size <= ci->slab_pages * PAGE_SIZE);
		/* the slab's bitmap bits fit in the bits its pages reserve */
		assert_true(ci->slab_objs <= ci->slab_pages * BITS_PER_PAGE);
		/* the reciprocal gives exact indexes for every block offset */
		for (size_t i = 0; i < ci->slab_objs; i++) {
			size_t off = i * ci->size;
			assert_int_equal((((uint64_t)off * ci->recip) >> 32), i);
			if (ci->size > 16)
				assert_true((((uint64_t)(off + 8) * ci->recip) >> 32) * ci->size != off + 8);
		}
		/* tail waste stays small */
		size_t bytes = ci->slab_pages * PAGE_SIZE;
		assert_true((bytes - (size_t)ci->slab_objs * ci->size) * 8 <= bytes);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_matches_formula),
		cmocka_unit_test(test_fast_table_matches_classes),
		cmocka_unit_test(test_smallest_fitting_class),
		cmocka_unit_test(test_waste_bound),
		cmocka_unit_test(test_class_sizes_aligned),
		cmocka_unit_test(test_slab_geometry),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
