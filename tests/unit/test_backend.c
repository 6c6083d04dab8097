/*
 * test_backend.c - the reclaim backends (reclaim/backend_*.c) and the
 * chooser (reclaim/backend.c), against the real kernel.
 *
 * Each backend purges 64 MiB of patterned pages in batches of mixed
 * ranges (4 KiB..2 MiB, separated by kept gaps): purged pages must be
 * gone from memory (mincore) and read back as zero, every page outside
 * the batches must keep its pattern (no live byte purged). Then: batches
 * larger than the ring and than IOV_MAX, one range larger than what one
 * process_madvise call or one SQE can carry (partial progress), a bogus
 * advice, fallbacks forced through a test hook that swaps a backend's ops
 * (ENOSYS, EPERM at init, EINVAL; the failed backend stays disabled, the
 * EBB_VERBOSE=1 line is exact), a batch every backend rejects (nothing is
 * disabled), every backend failing ("none"), and fork: the child purges
 * with its own ring/pidfd (the parent's copy of the same addresses keeps
 * its pattern), the parent still works afterwards; also after a raw fork
 * syscall that skips the atfork handlers.
 *
 * A backend the kernel lacks is skipped with the reason (cmocka skip);
 * on Linux >= 6.13 with io_uring enabled nothing is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ebbmalloc.h"
#include "internal.h"
#include "reclaim.h"

/* test hooks in backend.c / backend_uring.c */
void backend_test_set_ops(int id, const struct reclaim_backend *ops);
void backend_test_reset(void);
uint64_t backend_purged_bytes(void);
void backend_uring_configure(unsigned entries, unsigned max_workers);

#define MIB (1024UL * 1024)
#define GIB (1024 * MIB)

static size_t page_bytes;

/* ---- a patterned region and a set of ranges to purge in it ------------ */

struct region {
	unsigned char *base;
	size_t bytes, npages;
	unsigned char *purged;	/* per page: in some range */
	struct iovec *iov;
	size_t niov;
};

static uint32_t rng_state;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static unsigned char page_pattern(size_t i)
{
	return (unsigned char)(1 + i % 251);
}

/*
 * Map `bytes`, fill page i with page_pattern(i), and cut it into ranges of
 * 1..max_pages pages (log-uniform) separated by gaps of 1..max_gap pages
 * that are never purged.
 */
static void region_make(struct region *r, size_t bytes, uint32_t seed,
			unsigned max_pages, unsigned max_gap)
{
	size_t p = 0, cap;

	r->bytes = bytes;
	r->npages = bytes / page_bytes;
	r->base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(r->base != MAP_FAILED);
	/* small pages: the checks below are per 4 KiB page */
	madvise(r->base, bytes, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < r->npages; i++)
		memset(r->base + i * page_bytes, page_pattern(i), page_bytes);
	r->purged = calloc(r->npages, 1);
	cap = r->npages / 2 + 1;
	r->iov = calloc(cap, sizeof(*r->iov));
	assert_non_null(r->purged);
	assert_non_null(r->iov);
	r->niov = 0;
	rng_state = seed;
	while (p < r->npages) {
		unsigned shift = rng() % 10;	/* up to 512 pages: 2 MiB */
		size_t len = 1 + rng() % (1U << shift);
		size_t gap = 1 + rng() % max_gap;

		if (len > max_pages)
			len = max_pages;
		if (p + len > r->npages)
			len = r->npages - p;
		r->iov[r->niov].iov_base = r->base + p * page_bytes;
		r->iov[r->niov].iov_len = len * page_bytes;
		r->niov++;
		for (size_t k = 0; k < len; k++)
			r->purged[p + k] = 1;
		p += len + gap;
	}
}

static void region_free(struct region *r)
{
	munmap(r->base, r->bytes);
	free(r->purged);
	free(r->iov);
}

static size_t region_purge_bytes(const struct region *r)
{
	size_t sum = 0;

	for (size_t i = 0; i < r->niov; i++)
		sum += r->iov[i].iov_len;
	return sum;
}

/* purged pages: not resident and zero; the others: resident, pattern */
static void region_check(const struct region *r)
{
	unsigned char *vec = malloc(r->npages);
	unsigned char *zero = calloc(1, page_bytes);
	unsigned char *pat = malloc(page_bytes);
	size_t bad_res = 0, bad_zero = 0, bad_kept = 0;

	assert_non_null(vec);
	assert_non_null(zero);
	assert_non_null(pat);
	assert_int_equal(mincore(r->base, r->bytes, vec), 0);
	for (size_t i = 0; i < r->npages; i++) {
		if (r->purged[i] && (vec[i] & 1))
			bad_res++;
		if (!r->purged[i] && !(vec[i] & 1))
			bad_res++;
	}
	for (size_t i = 0; i < r->npages; i++) {
		const unsigned char *pg = r->base + i * page_bytes;

		if (r->purged[i]) {
			if (memcmp(pg, zero, page_bytes) != 0)
				bad_zero++;
		} else {
			memset(pat, page_pattern(i), page_bytes);
			if (memcmp(pg, pat, page_bytes) != 0)
				bad_kept++;
		}
	}
	if (bad_res || bad_zero || bad_kept)
		fprintf(stderr, "region_check: %zu residency, %zu not zeroed, "
			"%zu kept pages damaged\n", bad_res, bad_zero, bad_kept);
	assert_int_equal(bad_kept, 0);	/* no live byte purged */
	assert_int_equal(bad_zero, 0);
	assert_int_equal(bad_res, 0);
	free(vec);
	free(zero);
	free(pat);
}

static long statm_resident_pages(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res;
}

/* ---- backends that are available on this kernel --------------------------- */

static const struct reclaim_backend *real_ops(int id)
{
	switch (id) {
	case RECLAIM_BACKEND_URING: return &reclaim_backend_uring;
	case RECLAIM_BACKEND_VECTOR: return &reclaim_backend_vector;
	default: return &reclaim_backend_madvise;
	}
}

static int avail[5];	/* init result per backend id, probed in main */

static void require_backend(int id)
{
	if (avail[id] != 0) {
		fprintf(stderr, "SKIP: backend %s unavailable on this kernel "
			"(init: %s)\n", real_ops(id)->name, strerror(-avail[id]));
		skip();
	}
}

static int setup_reset(void **state)
{
	(void)state;
	backend_test_reset();
	for (int id = 1; id <= 3; id++)
		backend_test_set_ops(id, NULL);
	atomic_store(&opt_values[OPT_verbose], (int64_t)0);	/* the verbose option, as EBB_VERBOSE=0 sets it */
	return 0;
}

/* ---- 1. each backend through the chooser: 64 MiB in mixed batches -------- */

static void purge_region_batches(struct region *r, size_t batch,
				 uint64_t *batches)
{
	for (size_t i = 0; i < r->niov; i += batch) {
		size_t n = r->niov - i < batch ? r->niov - i : batch;
		ssize_t got = backend_purge(r->iov + i, n, RECLAIM_DONTNEED);
		size_t want = 0;

		for (size_t k = 0; k < n; k++)
			want += r->iov[i + k].iov_len;
		assert_int_equal(got, (ssize_t)want);
		(*batches)++;
	}
}

static void check_backend_64m(int id)
{
	static const size_t batch_sizes[] = { 1, 7, 64, 300, RECLAIM_BATCH_MAX };
	struct region r;
	struct ebb_stats st;
	uint64_t batches = 0, lat_sum = 0;
	long rss0, rss1;

	require_backend(id);
	assert_int_equal(backend_select(id), id);
	assert_string_equal(backend_name(), real_ops(id)->name);
	region_make(&r, 64 * MIB, 0x1234567u + (uint32_t)id, 512, 8);
	rss0 = statm_resident_pages();
	/* the ranges in slices, each slice with another batch size */
	{
		size_t slice = r.niov / 5 + 1, start = 0;

		for (size_t b = 0; b < 5 && start < r.niov; b++) {
			struct region part = r;
			size_t n = r.niov - start < slice ? r.niov - start : slice;

			part.iov = r.iov + start;
			part.niov = n;
			purge_region_batches(&part, batch_sizes[b], &batches);
			start += n;
		}
	}
	rss1 = statm_resident_pages();
	region_check(&r);
	/* RSS fell by the purged bytes (slack: 2 MiB of test noise) */
	assert_true(rss0 > 0 && rss1 > 0);
	assert_true((size_t)(rss0 - rss1) * page_bytes + 2 * MIB >=
		    region_purge_bytes(&r));

	memset(&st, 0, sizeof(st));
	backend_stats_merge(&st);
	assert_string_equal(st.backend, real_ops(id)->name);
	assert_int_equal(st.purge_batches, batches);
	assert_int_equal(st.purge_ranges, r.niov);
	assert_int_equal(st.backend_fallbacks, 0);
	assert_int_equal(backend_purged_bytes(), region_purge_bytes(&r));
	for (int k = 0; k < EBB_STATS_LAT_BUCKETS; k++)
		lat_sum += st.purge_batch_lat[k];
	assert_int_equal(lat_sum, batches);
	switch (id) {
	case RECLAIM_BACKEND_VECTOR:
		/* one process_madvise per batch of <= 1024 ranges < 2 GiB */
		assert_int_equal(st.purge_syscalls, batches);
		break;
	case RECLAIM_BACKEND_MADVISE:
		/* ranges never touch (gaps): one madvise each */
		assert_int_equal(st.purge_syscalls, r.niov);
		break;
	default:
		/* one submit per ring-sized part; a wait only if a CQE was
		 * late, which submit_and_wait(all) rules out */
		assert_true(st.purge_syscalls >= batches);
		assert_true(st.purge_syscalls <= batches + r.niov / 256 + 5);
		break;
	}
	region_free(&r);
}

static void test_uring_64m(void **state) { (void)state; check_backend_64m(RECLAIM_BACKEND_URING); }
static void test_vector_64m(void **state) { (void)state; check_backend_64m(RECLAIM_BACKEND_VECTOR); }
static void test_madvise_64m(void **state) { (void)state; check_backend_64m(RECLAIM_BACKEND_MADVISE); }

/* MADV_FREE through each backend: the call succeeds and no kept page
 * changes (freed pages may stay until memory pressure: not checked). */
static void test_free_advice(void **state)
{
	(void)state;
	for (int id = 1; id <= 3; id++) {
		struct region r;
		unsigned char *pat = malloc(page_bytes);

		if (avail[id] != 0)
			continue;
		backend_test_reset();
		assert_int_equal(backend_select(id), id);
		region_make(&r, 8 * MIB, 99u + (uint32_t)id, 64, 4);
		assert_int_equal(backend_purge(r.iov, r.niov, RECLAIM_FREE),
				 (ssize_t)region_purge_bytes(&r));
		for (size_t i = 0; i < r.npages; i++) {
			if (r.purged[i])
				continue;
			memset(pat, page_pattern(i), page_bytes);
			assert_memory_equal(r.base + i * page_bytes, pat, page_bytes);
		}
		free(pat);
		region_free(&r);
	}
}

/* ---- 2. batches larger than the ring and than IOV_MAX ------------------ */

/* n one-page ranges with one-page gaps, through the ops directly */
static void check_big_batch(int id, size_t n, uint64_t *syscalls)
{
	const struct reclaim_backend *b = real_ops(id);
	struct region r;

	region_make(&r, 2 * n * page_bytes, 7u, 1, 1);
	assert_int_equal(r.niov, n);
	assert_int_equal(b->purge(r.iov, r.niov, MADV_DONTNEED, syscalls),
			 (ssize_t)(n * page_bytes));
	region_check(&r);
	region_free(&r);
}

static void test_uring_batch_larger_than_ring(void **state)
{
	uint64_t sc = 0;

	(void)state;
	require_backend(RECLAIM_BACKEND_URING);
	/* a 16-entry ring: 1000 ranges go in 63 submits */
	backend_uring_configure(16, 0);
	assert_int_equal(reclaim_backend_uring.init(), 0);
	check_big_batch(RECLAIM_BACKEND_URING, 1000, &sc);
	assert_true(sc >= 63);
	reclaim_backend_uring.fini();
	backend_uring_configure(RECLAIM_BATCH_MAX, 0);
	/* and the default ring with more than IOV_MAX ranges */
	sc = 0;
	assert_int_equal(reclaim_backend_uring.init(), 0);
	check_big_batch(RECLAIM_BACKEND_URING, 3000, &sc);
	assert_true(sc >= 3);	/* ceil(3000 / 1024) submits */
	reclaim_backend_uring.fini();
}

static void test_vector_batch_larger_than_iov_max(void **state)
{
	uint64_t sc = 0;

	(void)state;
	require_backend(RECLAIM_BACKEND_VECTOR);
	assert_int_equal(reclaim_backend_vector.init(), 0);
	check_big_batch(RECLAIM_BACKEND_VECTOR, 2500, &sc);
	assert_int_equal(sc, 3);	/* 1024 + 1024 + 452 */
	reclaim_backend_vector.fini();
}

static void test_madvise_big_batch(void **state)
{
	uint64_t sc = 0;

	(void)state;
	check_big_batch(RECLAIM_BACKEND_MADVISE, 2500, &sc);
	assert_int_equal(sc, 2500);
}

/*
 * One range of 5 GiB (reserved, only a few pages touched): more than one
 * process_madvise call moves (~2 GiB), more than one SQE carries (32-bit
 * length). The touched pages inside must read zero; the page just after
 * the range keeps its pattern.
 */
static void check_huge_range(int id, uint64_t min_syscalls)
{
	const struct reclaim_backend *b = real_ops(id);
	size_t len = 5 * GIB;
	size_t probe[] = { 0, 2 * GIB - 4096, 2 * GIB, 2 * GIB + 4096,
			   4 * GIB - 4096, 4 * GIB, 4 * GIB + 4096, len - 4096 };
	unsigned char *base = mmap(NULL, len + page_bytes, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				   -1, 0);
	struct iovec iov;
	uint64_t sc = 0;

	assert_true(base != MAP_FAILED);
	for (size_t k = 0; k < sizeof(probe) / sizeof(probe[0]); k++)
		memset(base + probe[k], 0x5a, page_bytes);
	memset(base + len, 0xa5, page_bytes);
	iov.iov_base = base;
	iov.iov_len = len;
	assert_int_equal(b->init(), 0);
	assert_int_equal(b->purge(&iov, 1, MADV_DONTNEED, &sc), (ssize_t)len);
	for (size_t k = 0; k < sizeof(probe) / sizeof(probe[0]); k++) {
		assert_int_equal(base[probe[k]], 0);
		assert_int_equal(base[probe[k] + page_bytes - 1], 0);
	}
	for (size_t k = 0; k < page_bytes; k++)
		assert_int_equal(base[len + k], 0xa5);
	assert_true(sc >= min_syscalls);
	b->fini();
	munmap(base, len + page_bytes);
}

static void test_vector_partial_progress(void **state)
{
	(void)state;
	require_backend(RECLAIM_BACKEND_VECTOR);
	check_huge_range(RECLAIM_BACKEND_VECTOR, 3);	/* 5 GiB / ~2 GiB */
}

static void test_uring_split_long_range(void **state)
{
	(void)state;
	require_backend(RECLAIM_BACKEND_URING);
	check_huge_range(RECLAIM_BACKEND_URING, 1);	/* 5 SQEs, one submit */
}

/* ---- 3. the kernel says EINVAL ------------------------------------------- */

static void test_bogus_advice(void **state)
{
	(void)state;
	for (int id = 1; id <= 3; id++) {
		const struct reclaim_backend *b = real_ops(id);
		struct region r;
		uint64_t sc = 0;

		if (avail[id] != 0)
			continue;
		assert_int_equal(b->init(), 0);
		region_make(&r, 1 * MIB, 5u, 4, 2);
		assert_int_equal(b->purge(r.iov, r.niov, 12345, &sc), -EINVAL);
		/* nothing purged, and the backend still works */
		for (size_t i = 0; i < r.npages; i++)
			assert_int_equal(r.base[i * page_bytes], page_pattern(i));
		assert_int_equal(b->purge(r.iov, r.niov, MADV_DONTNEED, &sc),
				 (ssize_t)region_purge_bytes(&r));
		region_check(&r);
		region_free(&r);
		b->fini();
	}
	/* and the chooser rejects an advice it does not know */
	assert_int_equal(backend_purge(NULL, 1, 7), -EINVAL);
}

/* ---- 4. fallbacks through swapped ops ------------------------------------ */

static int fake_calls, fake_inits, fake_err, fake_init_err;
static int fake_init(void) { fake_inits++; return fake_init_err; }
static ssize_t fake_purge(const struct iovec *v, size_t n, int advice,
			  uint64_t *syscalls)
{
	(void)v; (void)n; (void)advice;
	fake_calls++;
	(*syscalls)++;
	return fake_err;
}
static void fake_nop(void) {}

/* static: backend.c keeps the pointer until the next setup_reset */
static struct reclaim_backend fake_slot[4];

static const struct reclaim_backend *fake_ops(int slot, const char *name)
{
	struct reclaim_backend b = {
		.name = name, .init = fake_init, .purge = fake_purge,
		.fini = fake_nop, .atfork_child = fake_nop,
	};

	fake_slot[slot] = b;
	return &fake_slot[slot];
}

/* Run fn with stderr going to a pipe; return what it wrote. */
static void capture_stderr(void (*fn)(void *), void *arg, char *out, size_t cap)
{
	int fds[2], saved = dup(2);
	ssize_t k;

	assert_int_equal(pipe(fds), 0);
	fflush(stderr);
	dup2(fds[1], 2);
	close(fds[1]);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	k = read(fds[0], out, cap - 1);
	out[k > 0 ? k : 0] = '\0';
	close(fds[0]);
}

static int first_available(int skip_id)
{
	/* backend.c's probe order */
	static const int order[] = { RECLAIM_BACKEND_VECTOR, RECLAIM_BACKEND_MADVISE,
				     RECLAIM_BACKEND_URING };

	for (int k = 0; k < 3; k++)
		if (order[k] != skip_id && avail[order[k]] == 0)
			return order[k];
	return RECLAIM_BACKEND_MADVISE;
}

struct purge_arg {
	struct region *r;
	ssize_t ret;
};

static void purge_first_half(void *p)
{
	struct purge_arg *a = p;

	a->ret = backend_purge(a->r->iov, a->r->niov / 2, RECLAIM_DONTNEED);
}

/* The first backend in the order fails a purge with err: the same batch
 * is purged by the next one, the failed one stays disabled. */
static void check_runtime_fallback(int err)
{
	const struct reclaim_backend *fake = fake_ops(0, "vector");
	struct region r;
	struct purge_arg a = { &r, 0 };
	struct ebb_stats st;
	char msg[512], want[160];
	int next = first_available(RECLAIM_BACKEND_VECTOR);
	size_t half;

	fake_calls = fake_inits = 0;
	fake_err = err;
	fake_init_err = 0;
	backend_test_set_ops(RECLAIM_BACKEND_VECTOR, fake);
	atomic_store(&opt_values[OPT_verbose], (int64_t)1);	/* as EBB_VERBOSE=1 sets it */
	assert_int_equal(backend_select(RECLAIM_BACKEND_AUTO), RECLAIM_BACKEND_VECTOR);
	region_make(&r, 16 * MIB, 77u, 512, 8);
	half = r.niov / 2;
	capture_stderr(purge_first_half, &a, msg, sizeof(msg));
	{
		size_t want_bytes = 0;

		for (size_t i = 0; i < half; i++)
			want_bytes += r.iov[i].iov_len;
		assert_int_equal(a.ret, (ssize_t)want_bytes);
	}
	snprintf(want, sizeof(want), "ebbmalloc: reclaim backend vector failed "
		 "(%s), falling back to %s\n", err == -ENOSYS ? "ENOSYS" : "EINVAL",
		 real_ops(next)->name);
	assert_string_equal(msg, want);
	assert_int_equal(fake_calls, 1);
	assert_string_equal(backend_name(), real_ops(next)->name);
	/* the second half: the fake is not asked again */
	assert_true(backend_purge(r.iov + half, r.niov - half, RECLAIM_DONTNEED) > 0);
	assert_int_equal(fake_calls, 1);
	region_check(&r);
	memset(&st, 0, sizeof(st));
	backend_stats_merge(&st);
	assert_int_equal(st.backend_fallbacks, 1);
	assert_string_equal(st.backend, real_ops(next)->name);
	/* and a new select keeps the choice */
	assert_int_equal(backend_select(RECLAIM_BACKEND_VECTOR), next);
	region_free(&r);
}

static void test_fallback_enosys(void **state) { (void)state; check_runtime_fallback(-ENOSYS); }
static void test_fallback_einval(void **state) { (void)state; check_runtime_fallback(-EINVAL); }

/* verbose off: the same fallback is silent */
static void test_fallback_silent(void **state)
{
	const struct reclaim_backend *fake = fake_ops(1, "vector");
	struct region r;
	struct purge_arg a = { &r, 0 };
	char msg[256];

	(void)state;
	fake_calls = fake_inits = 0;
	fake_err = -EOPNOTSUPP;
	fake_init_err = 0;
	backend_test_set_ops(RECLAIM_BACKEND_VECTOR, fake);
	region_make(&r, 4 * MIB, 3u, 16, 4);
	capture_stderr(purge_first_half, &a, msg, sizeof(msg));
	assert_true(a.ret > 0);
	assert_string_equal(msg, "");
	assert_int_equal(fake_calls, 1);
	region_free(&r);
}

/* Down the whole chain: vector (ENOSYS) and madvise (EPERM) refused,
 * the batch ends on uring; one line per fallback, both stay disabled. */
static void test_fallback_chain_to_uring(void **state)
{
	const struct reclaim_backend *fv = fake_ops(0, "vector");
	const struct reclaim_backend *fm = fake_ops(1, "madvise");
	struct region r;
	struct purge_arg a = { &r, 0 };
	struct ebb_stats st;
	char msg[512];

	(void)state;
	require_backend(RECLAIM_BACKEND_URING);
	fake_calls = fake_inits = 0;
	fake_err = -EPERM;	/* seccomp answering EPERM */
	fake_init_err = 0;
	backend_test_set_ops(RECLAIM_BACKEND_VECTOR, fv);
	backend_test_set_ops(RECLAIM_BACKEND_MADVISE, fm);
	atomic_store(&opt_values[OPT_verbose], (int64_t)1);	/* as EBB_VERBOSE=1 sets it */
	region_make(&r, 16 * MIB, 31u, 512, 8);
	capture_stderr(purge_first_half, &a, msg, sizeof(msg));
	assert_true(a.ret > 0);
	assert_string_equal(msg,
		"ebbmalloc: reclaim backend: vector\n"
		"ebbmalloc: reclaim backend vector failed (EPERM), falling back to madvise\n"
		"ebbmalloc: reclaim backend madvise failed (EPERM), falling back to uring\n");
	assert_int_equal(fake_calls, 2);
	assert_string_equal(backend_name(), "uring");
	assert_int_equal(backend_purge(r.iov + r.niov / 2, r.niov - r.niov / 2,
				       RECLAIM_DONTNEED) > 0, 1);
	assert_int_equal(fake_calls, 2);
	region_check(&r);
	memset(&st, 0, sizeof(st));
	backend_stats_merge(&st);
	assert_int_equal(st.backend_fallbacks, 2);
	region_free(&r);
}

/* The preferred backend's init fails: the chooser takes the next one. */
static void test_fallback_init_eperm(void **state)
{
	const struct reclaim_backend *fake = fake_ops(2, "uring");
	struct ebb_stats st;
	struct region r;
	int want = first_available(RECLAIM_BACKEND_URING);

	(void)state;
	fake_calls = fake_inits = 0;
	fake_err = 0;
	fake_init_err = -EPERM;		/* kernel.io_uring_disabled=2 */
	backend_test_set_ops(RECLAIM_BACKEND_URING, fake);
	assert_int_equal(backend_select(RECLAIM_BACKEND_URING), want);
	assert_int_equal(fake_inits, 1);
	region_make(&r, 4 * MIB, 4u, 64, 4);
	assert_int_equal(backend_purge(r.iov, r.niov, RECLAIM_DONTNEED),
			 (ssize_t)region_purge_bytes(&r));
	region_check(&r);
	assert_int_equal(fake_calls, 0);
	assert_int_equal(fake_inits, 1);
	memset(&st, 0, sizeof(st));
	backend_stats_merge(&st);
	assert_int_equal(st.backend_fallbacks, 1);
	region_free(&r);
}

/* A batch every backend rejects (an unaligned address): -EINVAL to the
 * caller, nothing disabled, the next good batch uses the same backend. */
static void test_bad_batch_disables_nothing(void **state)
{
	struct region r;
	struct iovec bad;
	struct ebb_stats st;
	int id = first_available(0);

	(void)state;
	assert_int_equal(backend_select(RECLAIM_BACKEND_AUTO), id);
	region_make(&r, 4 * MIB, 6u, 64, 4);
	bad.iov_base = (char *)r.iov[0].iov_base + 1;
	bad.iov_len = page_bytes;
	assert_int_equal(backend_purge(&bad, 1, RECLAIM_DONTNEED), -EINVAL);
	assert_string_equal(backend_name(), real_ops(id)->name);
	assert_int_equal(backend_purge(r.iov, r.niov, RECLAIM_DONTNEED),
			 (ssize_t)region_purge_bytes(&r));
	region_check(&r);
	memset(&st, 0, sizeof(st));
	backend_stats_merge(&st);
	assert_int_equal(st.backend_fallbacks, 0);
	assert_string_equal(st.backend, real_ops(id)->name);
	region_free(&r);
}

/* Every backend refused by the environment: "none", memory left alone. */
static void test_all_fail_none(void **state)
{
	const struct reclaim_backend *fake = fake_ops(3, "fake");
	struct region r;
	struct ebb_stats st;

	(void)state;
	fake_calls = fake_inits = 0;
	fake_err = -ENOSYS;
	fake_init_err = 0;
	for (int id = 1; id <= 3; id++)
		backend_test_set_ops(id, fake);
	region_make(&r, 2 * MIB, 8u, 8, 2);
	assert_int_equal(backend_purge(r.iov, r.niov, RECLAIM_DONTNEED), -ENOSYS);
	assert_int_equal(fake_calls, 3);
	assert_string_equal(backend_name(), "none");
	assert_int_equal(backend_purge(r.iov, r.niov, RECLAIM_DONTNEED), -ENOSYS);
	assert_int_equal(fake_calls, 3);	/* nobody asked again */
	for (size_t i = 0; i < r.npages; i++)
		assert_int_equal(r.base[i * page_bytes], page_pattern(i));
	memset(&st, 0, sizeof(st));
	backend_stats_merge(&st);
	assert_int_equal(st.backend_fallbacks, 3);
	assert_string_equal(st.backend, "none");
	region_free(&r);
}

/* ---- the application closes our fds (daemons close every fd) ---------- */

static int find_uring_fd(void)
{
	char path[64], link[64];

	for (int fd = 3; fd < 1024; fd++) {
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		k = readlink(path, link, sizeof(link) - 1);
		if (k <= 0)
			continue;
		link[k] = '\0';
		if (strstr(link, "io_uring"))
			return fd;
	}
	return -1;
}

/* closed: the batch still goes through (a new ring); replaced by a pipe:
 * the pipe is not closed by us, the batch falls back */
static void test_uring_fd_closed_or_replaced(void **state)
{
	struct region r;
	int fd, pfd[2];
	struct stat sb;

	(void)state;
	require_backend(RECLAIM_BACKEND_URING);
	assert_int_equal(backend_select(RECLAIM_BACKEND_URING), RECLAIM_BACKEND_URING);
	fd = find_uring_fd();
	assert_true(fd >= 0);
	close(fd);
	region_make(&r, 4 * MIB, 51u, 64, 4);
	assert_int_equal(backend_purge(r.iov, r.niov, RECLAIM_DONTNEED),
			 (ssize_t)region_purge_bytes(&r));
	region_check(&r);
	assert_string_equal(backend_name(), "uring");
	region_free(&r);

	/* now put a pipe where the ring fd is */
	fd = find_uring_fd();
	assert_true(fd >= 0);
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(dup2(pfd[0], fd), fd);
	region_make(&r, 4 * MIB, 52u, 64, 4);
	assert_int_equal(backend_purge(r.iov, r.niov, RECLAIM_DONTNEED),
			 (ssize_t)region_purge_bytes(&r));
	region_check(&r);
	assert_string_not_equal(backend_name(), "uring");	/* EOPNOTSUPP */
	assert_int_equal(fstat(fd, &sb), 0);	/* still open, still ours */
	assert_true(S_ISFIFO(sb.st_mode));
	close(fd);
	close(pfd[0]);
	close(pfd[1]);
	region_free(&r);
}

/* the pidfd closed under the vector backend: it opens a new one */
static void test_vector_pidfd_closed(void **state)
{
	struct region r;
	char path[64], link[64];

	(void)state;
	require_backend(RECLAIM_BACKEND_VECTOR);
	assert_int_equal(backend_select(RECLAIM_BACKEND_VECTOR), RECLAIM_BACKEND_VECTOR);
	for (int fd = 3; fd < 1024; fd++) {
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		k = readlink(path, link, sizeof(link) - 1);
		if (k > 0 && (link[k] = '\0', strstr(link, "pidfd")))
			close(fd);
	}
	region_make(&r, 4 * MIB, 53u, 64, 4);
	assert_int_equal(backend_purge(r.iov, r.niov, RECLAIM_DONTNEED),
			 (ssize_t)region_purge_bytes(&r));
	region_check(&r);
	assert_string_equal(backend_name(), "vector");
	region_free(&r);
}

/* ---- 5. real kernel refusals: seccomp in a child ------------------------- */

#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

/* In the calling process from now on: syscall nr_a fails with err_a,
 * nr_b with err_b (nr < 0: unused). 0 or -1. */
static int seccomp_deny(long nr_a, int err_a, long nr_b, int err_b)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr_a, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err_a & SECCOMP_RET_DATA)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr_b, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err_b & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof(f) / sizeof(f[0])), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

static int run_in_child(int (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(fn());
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* purge a fresh region through backend_purge; 0 if it worked and
 * the backend in use is want */
static int child_region_ok(const char *want)
{
	struct region r;
	size_t bad = 0;

	region_make(&r, 4 * MIB, 41u, 64, 4);
	if (backend_purge(r.iov, r.niov, RECLAIM_DONTNEED) != (ssize_t)region_purge_bytes(&r))
		return 20;
	for (size_t i = 0; i < r.npages; i++)
		if (r.base[i * page_bytes] != (r.purged[i] ? 0 : page_pattern(i)))
			bad++;
	if (bad)
		return 21;
	if (strcmp(backend_name(), want) != 0)
		return 22;
	region_free(&r);
	return 0;
}

static uint64_t fallbacks_now(void)
{
	struct ebb_stats st;

	memset(&st, 0, sizeof(st));
	backend_stats_merge(&st);
	return st.backend_fallbacks;
}

/* io_uring_setup -> EPERM (kernel.io_uring_disabled=2 answers that),
 * process_madvise -> ENOSYS (a kernel without it): EBB_RECLAIM_BACKEND=
 * uring ends on madvise, two fallbacks. */
static int child_init_refused(void)
{
	if (seccomp_deny(SYS_io_uring_setup, EPERM, SYS_process_madvise, ENOSYS))
		return 30;
	backend_test_reset();
	if (backend_select(RECLAIM_BACKEND_URING) != RECLAIM_BACKEND_MADVISE)
		return 31;
	if (fallbacks_now() != 2)
		return 32;
	return child_region_ok("madvise");
}

/* vector works at init, then process_madvise starts failing with EPERM:
 * the batch goes to madvise, vector stays disabled. */
static int child_vector_refused_later(void)
{
	backend_test_reset();
	if (backend_select(RECLAIM_BACKEND_VECTOR) != RECLAIM_BACKEND_VECTOR)
		return 40;
	if (child_region_ok("vector"))
		return 41;
	if (seccomp_deny(SYS_process_madvise, EPERM, -1, 0))
		return 42;
	if (child_region_ok("madvise"))
		return 43;
	if (fallbacks_now() != 1)
		return 44;
	if (child_region_ok("madvise"))
		return 45;
	return fallbacks_now() == 1 ? 0 : 46;
}

/* uring works at init, then io_uring_enter fails with EPERM: nothing was
 * consumed, the ring is dropped, the batch goes to vector (or madvise). */
static int child_uring_refused_later(void)
{
	const char *next = avail[RECLAIM_BACKEND_VECTOR] == 0 ? "vector" : "madvise";

	backend_test_reset();
	if (backend_select(RECLAIM_BACKEND_URING) != RECLAIM_BACKEND_URING)
		return 50;
	if (child_region_ok("uring"))
		return 51;
	if (seccomp_deny(SYS_io_uring_enter, EPERM, -1, 0))
		return 52;
	if (child_region_ok(next))
		return 53;
	return fallbacks_now() == 1 ? 0 : 54;
}

static void test_seccomp_init_refused(void **state)
{
	(void)state;
	assert_int_equal(run_in_child(child_init_refused), 0);
}

static void test_seccomp_vector_refused_later(void **state)
{
	(void)state;
	require_backend(RECLAIM_BACKEND_VECTOR);
	assert_int_equal(run_in_child(child_vector_refused_later), 0);
}

static void test_seccomp_uring_refused_later(void **state)
{
	(void)state;
	require_backend(RECLAIM_BACKEND_URING);
	assert_int_equal(run_in_child(child_uring_refused_later), 0);
}

/* ---- 6. fork --------------------------------------------------------------- */

/*
 * Parent purges A; forks; the child purges B (same addresses as the
 * parent's B) with its own ring / pidfd and checks it; the parent's B must
 * still hold its pattern (a child using the parent's pidfd or ring would
 * have purged the parent's pages), then the parent purges B itself.
 */
static int child_purge_and_check(struct region *b, int id)
{
	ssize_t got = backend_purge(b->iov, b->niov, RECLAIM_DONTNEED);

	if (got != (ssize_t)region_purge_bytes(b))
		return 10;
	if (strcmp(backend_name(), real_ops(id)->name) != 0)
		return 11;
	for (size_t i = 0; i < b->npages; i++) {
		unsigned char want = b->purged[i] ? 0 : page_pattern(i);

		for (size_t k = 0; k < page_bytes; k += 512)
			if (b->base[i * page_bytes + k] != want)
				return 12;
	}
	return 0;
}

static void check_fork(int id, int raw)
{
	struct region a, b;
	int status;
	pid_t pid;

	require_backend(id);
	assert_int_equal(backend_select(id), id);
	region_make(&a, 8 * MIB, 21u, 512, 8);
	region_make(&b, 8 * MIB, 22u, 512, 8);
	assert_int_equal(backend_purge(a.iov, a.niov, RECLAIM_DONTNEED),
			 (ssize_t)region_purge_bytes(&a));
	fflush(NULL);
#ifdef SYS_fork
	pid = raw ? (pid_t)syscall(SYS_fork) : fork();
#else
	if (raw)
		skip();
	pid = fork();
#endif
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_purge_and_check(&b, id));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the parent's B is intact */
	for (size_t i = 0; i < b.npages; i++)
		assert_int_equal(b.base[i * page_bytes], page_pattern(i));
	region_check(&a);
	/* the parent's backend still works after the child closed its copy */
	assert_int_equal(backend_purge(b.iov, b.niov, RECLAIM_DONTNEED),
			 (ssize_t)region_purge_bytes(&b));
	region_check(&b);
	assert_string_equal(backend_name(), real_ops(id)->name);
	region_free(&a);
	region_free(&b);
}

static void test_fork_uring(void **state) { (void)state; check_fork(RECLAIM_BACKEND_URING, 0); }
static void test_fork_vector(void **state) { (void)state; check_fork(RECLAIM_BACKEND_VECTOR, 0); }
static void test_fork_madvise(void **state) { (void)state; check_fork(RECLAIM_BACKEND_MADVISE, 0); }
static void test_rawfork_uring(void **state) { (void)state; check_fork(RECLAIM_BACKEND_URING, 1); }
static void test_rawfork_vector(void **state) { (void)state; check_fork(RECLAIM_BACKEND_VECTOR, 1); }

/* A purge that starts in the child must not find a ring the parent
 * created: the child's backend builds its own at its first purge even
 * when the fork came before any purge in the parent. */
static void test_fork_before_first_purge(void **state)
{
	struct region b;
	int status;
	pid_t pid;

	(void)state;
	region_make(&b, 4 * MIB, 23u, 64, 4);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_purge_and_check(&b, first_available(0)));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (size_t i = 0; i < b.npages; i++)
		assert_int_equal(b.base[i * page_bytes], page_pattern(i));
	region_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_uring_64m, setup_reset),
		cmocka_unit_test_setup(test_vector_64m, setup_reset),
		cmocka_unit_test_setup(test_madvise_64m, setup_reset),
		cmocka_unit_test_setup(test_free_advice, setup_reset),
		cmocka_unit_test_setup(test_uring_batch_larger_than_ring, setup_reset),
		cmocka_unit_test_setup(test_vector_batch_larger_than_iov_max, setup_reset),
		cmocka_unit_test_setup(test_madvise_big_batch, setup_reset),
		cmocka_unit_test_setup(test_vector_partial_progress, setup_reset),
		cmocka_unit_test_setup(test_uring_split_long_range, setup_reset),
		cmocka_unit_test_setup(test_bogus_advice, setup_reset),
		cmocka_unit_test_setup(test_fallback_enosys, setup_reset),
		cmocka_unit_test_setup(test_fallback_einval, setup_reset),
		cmocka_unit_test_setup(test_fallback_silent, setup_reset),
		cmocka_unit_test_setup(test_fallback_chain_to_uring, setup_reset),
		cmocka_unit_test_setup(test_fallback_init_eperm, setup_reset),
		cmocka_unit_test_setup(test_bad_batch_disables_nothing, setup_reset),
		cmocka_unit_test_setup(test_all_fail_none, setup_reset),
		cmocka_unit_test_setup(test_uring_fd_closed_or_replaced, setup_reset),
		cmocka_unit_test_setup(test_vector_pidfd_closed, setup_reset),
		cmocka_unit_test_setup(test_seccomp_init_refused, setup_reset),
		cmocka_unit_test_setup(test_seccomp_vector_refused_later, setup_reset),
		cmocka_unit_test_setup(test_seccomp_uring_refused_later, setup_reset),
		cmocka_unit_test_setup(test_fork_uring, setup_reset),
		cmocka_unit_test_setup(test_fork_vector, setup_reset),
		cmocka_unit_test_setup(test_fork_madvise, setup_reset),
		cmocka_unit_test_setup(test_rawfork_uring, setup_reset),
		cmocka_unit_test_setup(test_rawfork_vector, setup_reset),
		cmocka_unit_test_setup(test_fork_before_first_purge, setup_reset),
	};

	page_bytes = (size_t)sysconf(_SC_PAGESIZE);
	/* what the production shim does (alloc/shim.c registers these) */
	pthread_atfork(backend_atfork_prepare, backend_atfork_parent,
		       backend_atfork_child);
	for (int id = 1; id <= 3; id++) {
		avail[id] = real_ops(id)->init();
		real_ops(id)->fini();
		if (avail[id])
			printf("note: backend %s unavailable here: %s\n",
			       real_ops(id)->name, strerror(-avail[id]));
	}
	return cmocka_run_group_tests(tests, NULL, NULL) ? 1 : 0;
}
