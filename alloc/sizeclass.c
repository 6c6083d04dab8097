/*
 * sizeclass.c - size <-> class tables. Pure functions, no state after init.
 *
 * Classes: 16-byte steps up to 128 B (classes 1..8), then 8 classes per
 * doubling: 144, 160, ... 256, 288, ... up to 2 MiB. The internal waste of
 * a request is therefore at most 15 bytes up to 128 B and below 12.5 %
 * above (a request just over a class boundary wastes < 1/8 of itself), the
 * same bound as mimalloc's bins. Classes 1..72 (<= 32 KiB) live in slabs,
 * 73..120 (36 KiB .. 2 MiB, all page multiples) are page runs.
 *
 * Slab sizing: the smallest slab of at least max(16 KiB, 4 blocks) whose
 * tail waste is under 1/64; failing that, the one with the least waste, at
 * most SLAB_MAX_PAGES pages.
 */
#include "internal.h"

struct class_info sizeclass_info[NCLASS + 1];
struct cls_check sizeclass_check[NCLASS + 1];
uint16_t sizeclass_bin_off[SIZECLASS_BIN_OFF_N];

/* (size + 15) >> 4 -> class, for size <= 1024: generated to match
 * sizeclass_of_slow (checked by tests/unit/test_sizeclass.c). */
const uint8_t sizeclass_small_tab[65] = {
	1, 1, 2, 3, 4, 5, 6, 7, 8,		/* 0..128 */
	9, 10, 11, 12, 13, 14, 15, 16,		/* 144..256 */
	17, 17, 18, 18, 19, 19, 20, 20,		/* 288..512, step 32 */
	21, 21, 22, 22, 23, 23, 24, 24,
	25, 25, 25, 25, 26, 26, 26, 26,		/* 576..1024, step 64 */
	27, 27, 27, 27, 28, 28, 28, 28,
	29, 29, 29, 29, 30, 30, 30, 30,
	31, 31, 31, 31, 32, 32, 32, 32,
};

static size_t class_size_calc(unsigned c)
{
	if (c <= 8)
		return 16u * c;
	unsigned g = (c - 9) / 8, i = (c - 9) % 8;
	return ((size_t)1 << (g + 7)) + (size_t)(i + 1) * ((size_t)1 << (g + 4));
}

unsigned sizeclass_of_slow(size_t size)
{
	if (size <= 128)
		return size ? (unsigned)((size + 15) >> 4) : 1;
	unsigned lg = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
	unsigned idx = (unsigned)((size - 1) >> (lg - 3)) - 8;
	return 8 + (lg - 7) * 8 + idx + 1;
}

static void slab_geometry(unsigned c)
{
	size_t size = sizeclass_info[c].size;
	size_t min_bytes = size * 4 > 16384 ? size * 4 : 16384;
	unsigned first = (unsigned)((min_bytes + PAGE_SIZE - 1) / PAGE_SIZE);
	unsigned best = 0;
	size_t best_waste = SIZE_MAX;
	if (first > SLAB_MAX_PAGES)
		first = SLAB_MAX_PAGES;
	for (unsigned pg = first; pg <= SLAB_MAX_PAGES; pg++) {
		size_t bytes = (size_t)pg * PAGE_SIZE;
		size_t waste = bytes % size;
		if (waste * 64 < bytes) {
			best = pg;
			break;
		}
		/* compare waste ratios: waste/bytes */
		if (best == 0 || waste * best * PAGE_SIZE < best_waste * bytes) {
			best = pg;
			best_waste = waste;
		}
	}
	sizeclass_info[c].slab_pages = best;
	sizeclass_info[c].slab_objs = (uint32_t)(((size_t)best * PAGE_SIZE) / size);
}

void sizeclass_init(void)
{
	for (unsigned c = 1; c <= NCLASS; c++) {
		struct class_info *ci = &sizeclass_info[c];
		ci->size = (uint32_t)class_size_calc(c);
		ci->recip = (uint32_t)(((1ull << 32) + ci->size - 1) / ci->size);
		ci->divmagic = UINT64_MAX / ci->size + 1;
		if (c <= NSMALL)
			slab_geometry(c);
		else
			ci->slab_pages = ci->size / PAGE_SIZE;
		sizeclass_check[c].divmagic = ci->divmagic;
		sizeclass_check[c].span = c <= NSMALL ? (uint64_t)ci->slab_objs * ci->size : ci->size;
	}
	for (unsigned i = 0; i < SIZECLASS_BIN_OFF_N; i++) {
		unsigned cls = i <= 64 ? sizeclass_small_tab[i] : sizeclass_of_slow((size_t)i << 4);
		sizeclass_bin_off[i] = (uint16_t)(cls * sizeof(tbin_t));
	}
	ebb_check(sizeclass_info[NSMALL].size == SMALL_MAX);
	ebb_check(sizeclass_info[NCLASS].size == LARGE_MAX);
}
