/*
 * purge_backends.c - the three reclaim backends on the same work.
 *
 * 1 GiB (gib=) of anonymous memory in ranges of 4 KiB..2 MiB (sizes
 * log-uniform, fixed seed), each range followed by one untouched 4 KiB
 * page so that no backend can merge neighbours. Every run touches every
 * page of every range, then purges all ranges with MADV_DONTNEED in
 * batches of B ranges (batch=1,16,256,1024) through one backend's ops:
 *
 *   uring256, uring1024   io_uring, IORING_OP_MADVISE, ring of 256/1024
 *   uring256w1            the same, io-wq limited to one worker
 *   vector                process_madvise on a pidfd of ourselves
 *   madvise               one madvise per range
 *   auto                  backend_select(AUTO) + backend_purge: what the
 *                         allocator gets, lock and bookkeeping included
 *
 * Reported per GiB purged: syscalls (counted by the backend), wall time,
 * CPU time of the whole process (getrusage: includes the io-wq kernel
 * workers, which are threads of this process), median of runs= runs; the
 * variants are interleaved run by run so that a noisy neighbour hurts all
 * of them alike. Pages are kept small (MADV_NOHUGEPAGE) so that every
 * range is a page-table walk of its own, as in the allocator's runs.
 *
 * Build and run both range mixes: `make bench-backends` (links
 * build/libebbmalloc-ebb.a; output in bench/results/purge-backends.txt).
 * Run:  build/bench/purge_backends [gib=1] [maxkib=2048] [runs=5] [batch=1,16,256,1024]
 *                                  [variants=auto,uring256,...]
 * Measures only; asserts nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ebbmalloc.h"
#include "reclaim.h"

void backend_uring_configure(unsigned entries, unsigned max_workers);

#define MAX_VARIANTS 8
#define MAX_BATCHES 8
#define MAX_RUNS 15

struct variant {
	const char *name;
	int id;			/* RECLAIM_BACKEND_*; AUTO = through backend.c */
	unsigned ring, workers;
};

static const struct variant all_variants[] = {
	{ "auto", RECLAIM_BACKEND_AUTO, 0, 0 },
	{ "uring256", RECLAIM_BACKEND_URING, 256, 0 },
	{ "uring1024", RECLAIM_BACKEND_URING, 1024, 0 },
	{ "uring256w1", RECLAIM_BACKEND_URING, 256, 1 },
	{ "vector", RECLAIM_BACKEND_VECTOR, 0, 0 },
	{ "madvise", RECLAIM_BACKEND_MADVISE, 0, 0 },
};
#define NVARIANTS (sizeof(all_variants) / sizeof(all_variants[0]))

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static long rss_kib(void)
{
	long size, res;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* syscalls counted by backend.c since the last call */
static uint64_t auto_syscalls_delta(void)
{
	static uint64_t last;
	struct ebb_stats st;
	uint64_t d;

	memset(&st, 0, sizeof(st));
	backend_stats_merge(&st);
	d = st.purge_syscalls - last;
	last = st.purge_syscalls;
	return d;
}

static const char *auto_select(void)
{
	backend_select(RECLAIM_BACKEND_AUTO);
	auto_syscalls_delta();
	return backend_name();
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint32_t rng_state = 0x9e3779b9u;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static int parse_list(const char *s, long *out, int max)
{
	int n = 0;

	while (*s && n < max) {
		out[n++] = strtol(s, (char **)&s, 10);
		if (*s == ',')
			s++;
	}
	return n;
}

int main(int argc, char **argv)
{
	long gib = 1, runs = 5, max_kib = 2048, batches[MAX_BATCHES] = { 1, 16, 256, 1024 };
	int nbatches = 4, nvar = 0;
	const struct variant *var[MAX_VARIANTS];
	size_t page = (size_t)sysconf(_SC_PAGESIZE), total = 0, niov = 0, cap;
	size_t map_bytes;
	struct iovec *iov;
	char *base, *p;
	static double wall[MAX_VARIANTS][MAX_BATCHES][MAX_RUNS];
	static double cpu[MAX_VARIANTS][MAX_BATCHES][MAX_RUNS];
	static uint64_t sys[MAX_VARIANTS][MAX_BATCHES];
	static long rss_after[MAX_VARIANTS][MAX_BATCHES];
	static const char *auto_name = "?";

	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "gib=", 4)) {
			gib = atol(argv[i] + 4);
		} else if (!strncmp(argv[i], "maxkib=", 7)) {
			max_kib = atol(argv[i] + 7);
		} else if (!strncmp(argv[i], "runs=", 5)) {
			runs = atol(argv[i] + 5);
		} else if (!strncmp(argv[i], "batch=", 6)) {
			nbatches = parse_list(argv[i] + 6, batches, MAX_BATCHES);
		} else if (!strncmp(argv[i], "variants=", 9)) {
			char *s = argv[i] + 9;

			while (*s && nvar < MAX_VARIANTS) {
				size_t len = strcspn(s, ",");

				for (size_t k = 0; k < NVARIANTS; k++)
					if (strlen(all_variants[k].name) == len &&
					    !strncmp(all_variants[k].name, s, len))
						var[nvar++] = &all_variants[k];
				s += len + (s[len] == ',');
			}
		} else {
			fprintf(stderr, "usage: %s [gib=1] [maxkib=2048] [runs=5] [batch=1,16,256,1024] "
				"[variants=auto,uring256,uring1024,uring256w1,vector,madvise]\n",
				argv[0]);
			return 2;
		}
	}
	if (nvar == 0)
		for (size_t k = 0; k < NVARIANTS && nvar < MAX_VARIANTS; k++)
			var[nvar++] = &all_variants[k];
	if (runs < 1)
		runs = 1;
	if (runs > MAX_RUNS)
		runs = MAX_RUNS;

	/* ranges: log-uniform 1..512 pages, each followed by a 1-page hole */
	cap = (size_t)gib * (1UL << 30) / page + 1;
	iov = calloc(cap, sizeof(*iov));
	map_bytes = (size_t)gib * (1UL << 30) * 2;
	base = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!iov || base == MAP_FAILED) {
		perror("purge_backends: setup");
		return 1;
	}
	madvise(base, map_bytes, MADV_NOHUGEPAGE);
	p = base;
	while (total < (size_t)gib * (1UL << 30)) {
		size_t pages = 1 + rng() % (1U << (rng() % 10));
		size_t len;

		if (pages * page > (size_t)max_kib * 1024)
			pages = (size_t)max_kib * 1024 / page;
		len = pages * page;

		if (total + len > (size_t)gib * (1UL << 30))
			len = (size_t)gib * (1UL << 30) - total;
		iov[niov].iov_base = p;
		iov[niov].iov_len = len;
		niov++;
		total += len;
		p += len + page;
	}

	printf("# purge_backends: %ld GiB in %zu ranges (mean %.0f KiB, 4 KiB..%ld KiB), "
	       "MADV_DONTNEED, median of %ld runs\n",
	       gib, niov, (double)total / (double)niov / 1024, max_kib, runs);
	fflush(stdout);

	for (long r = 0; r < runs; r++) {
		for (int b = 0; b < nbatches; b++) {
			for (int v = 0; v < nvar; v++) {
				const struct reclaim_backend *ops = NULL;
				size_t batch = (size_t)batches[b];
				uint64_t syscalls = 0;
				double t0, c0, t1, c1;

				if (var[v]->id == RECLAIM_BACKEND_URING) {
					backend_uring_configure(var[v]->ring, var[v]->workers);
					ops = &reclaim_backend_uring;
				} else if (var[v]->id == RECLAIM_BACKEND_VECTOR) {
					ops = &reclaim_backend_vector;
				} else if (var[v]->id == RECLAIM_BACKEND_MADVISE) {
					ops = &reclaim_backend_madvise;
				}
				if (ops && ops->init() != 0) {
					fprintf(stderr, "%s: init failed\n", var[v]->name);
					continue;
				}
				if (!ops)
					auto_name = auto_select();
				/* touch every page of every range */
				for (size_t i = 0; i < niov; i++)
					for (size_t o = 0; o < iov[i].iov_len; o += page)
						((volatile char *)iov[i].iov_base)[o] = 1;
				t0 = now_s();
				c0 = cpu_s();
				for (size_t i = 0; i < niov; i += batch) {
					size_t n = niov - i < batch ? niov - i : batch;
					ssize_t got;

					if (ops) {
						got = ops->purge(iov + i, n, MADV_DONTNEED,
								 &syscalls);
					} else {
						got = backend_purge(iov + i, n,
								    RECLAIM_DONTNEED);
					}
					if (got < 0) {
						fprintf(stderr, "%s: purge: %s\n",
							var[v]->name, strerror((int)-got));
						return 1;
					}
				}
				t1 = now_s();
				c1 = cpu_s();
				if (!ops)
					syscalls = auto_syscalls_delta();
				wall[v][b][r] = t1 - t0;
				cpu[v][b][r] = c1 - c0;
				sys[v][b] = syscalls;
				rss_after[v][b] = rss_kib();
				if (ops)
					ops->fini();
			}
		}
	}

	printf("%-11s %6s %12s %10s %10s %12s\n", "backend", "batch",
	       "syscalls/GiB", "wall ms/GiB", "cpu ms/GiB", "rss after MiB");
	for (int b = 0; b < nbatches; b++) {
		for (int v = 0; v < nvar; v++) {
			double w = median(wall[v][b], (int)runs) / (double)gib;
			double c = median(cpu[v][b], (int)runs) / (double)gib;
			char name[32];

			if (var[v]->id == RECLAIM_BACKEND_AUTO)
				snprintf(name, sizeof(name), "auto=%s", auto_name);
			else
				snprintf(name, sizeof(name), "%s", var[v]->name);
			printf("%-15s %6ld %12.0f %10.1f %10.1f %12ld\n", name,
			       batches[b], (double)sys[v][b] / (double)gib,
			       w * 1e3, c * 1e3, rss_after[v][b] / 1024);
		}
	}
	return 0;
}
