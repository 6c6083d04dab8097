/*
 * fake_statswriter.c - writes an ebbmalloc stats file the way the library
 * is specified to (include/ebbmalloc.h: struct ebb_stats_file, a seqlock),
 * so ebbstat and rsswatch can be tested without the allocator.
 *
 *   fake_statswriter fixed        known figures (see below), written once
 *                                 more every 2 ms (seq moves on)
 *   fake_statswriter consistent   every counter of the snapshot is k, for
 *                                 k = 1, 2, 3...; fields are stored one by
 *                                 one with a yield in between, so a reader
 *                                 that ignores the seqlock sees mixed k's
 *
 * The path is taken from EBB_STATS_FILE, else from stats_file= in EBB_CONF
 * ("%p" = our pid), as the library does. Prints "ready" once the first snapshot is complete, then runs until
 * stdin closes (at most 60 s).
 */
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "ebbmalloc.h"

#define MIB (1024ULL * 1024)

static void st(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void fill_fixed(struct ebb_stats_file *f)
{
	struct ebb_stats *s = &f->stats;
	unsigned i;

	st(&s->allocated_bytes, 123 * MIB);
	st(&s->active_bytes, 130 * MIB);
	st(&s->dirty_bytes, 7 * MIB);
	st(&s->purging_bytes, 1 * MIB);
	st(&s->purged_bytes, 2048 * MIB);
	st(&s->mapped_bytes, 256 * MIB);
	st(&s->huge_bytes, 40 * MIB);
	st(&s->huge_count, 3);
	st(&s->tcache_bytes, 5 * MIB);
	st(&s->chunks, 12);
	st(&s->threads, 17);
	st(&s->tcache_flushes, 4242);
	st(&s->remote_frees, 99);
	st(&s->purge_batches, 1000);
	st(&s->purge_syscalls, 1001);
	st(&s->purge_ranges, 64000);
	st(&s->backend_fallbacks, 0);
	for (i = 0; i < EBB_STATS_LAT_BUCKETS; i++)
		st(&s->purge_batch_lat[i], i >= 3 && i <= 8 ? 100 * (i - 2) : 0);
	for (i = 0; i < 2; i++) {
		struct ebb_node_stats *n = &s->node[i];

		st(&n->allocated_bytes, (60 + 3 * i) * MIB);
		st(&n->active_bytes, 65 * MIB);
		st(&n->dirty_bytes, (3 + i) * MIB);
		st(&n->purging_bytes, 0);
		st(&n->purged_bytes, 1024 * MIB);
		st(&n->mapped_bytes, (108 + i) * MIB);
		st(&n->chunks, 6);
		st(&n->remote_frees, 40 + 19 * i);
	}
	/* node 0 has arenas 0 and 1, node 1 arena 2: each node's figures are
	 * the sums of its arenas' */
	static const uint64_t ar[3][8] = {
		/* allocated, active, dirty, purging, purged, mapped (MiB), chunks, remote_frees */
		{ 20, 25, 1, 0, 1000, 54, 3, 10 },
		{ 40, 40, 2, 0, 24, 54, 3, 30 },
		{ 63, 65, 4, 0, 1024, 109, 6, 59 },
	};
	s->narenas = 3;
	for (i = 0; i < 3; i++) {
		struct ebb_arena_stats *a = &s->arena[i];

		a->node = i == 2;
		a->threads = 5 + i;
		st(&a->allocated_bytes, ar[i][0] * MIB);
		st(&a->active_bytes, ar[i][1] * MIB);
		st(&a->dirty_bytes, ar[i][2] * MIB);
		st(&a->purging_bytes, ar[i][3] * MIB);
		st(&a->purged_bytes, ar[i][4] * MIB);
		st(&a->mapped_bytes, ar[i][5] * MIB);
		st(&a->chunks, ar[i][6]);
		st(&a->remote_frees, ar[i][7]);
		st(&a->xfer_bytes, (i + 1) * 4096);
		st(&a->cache_flushes, 100 * (i + 1));
		/* node 0's 700 batches carried arena 0's ranges 500 times and
		 * arena 1's 400 times (both in 200 of them) */
		st(&a->purge_batches, i == 0 ? 500 : i == 1 ? 400 : 300);
		st(&a->purge_ranges, 1000 * (i + 1));
		st(&a->purge_batch_lat[4], i == 0 ? 500 : i == 1 ? 400 : 300);
	}
	/* node 0 purged 700 batches in 701 syscalls, node 1 300 in 300 (the
	 * other 10 batches were parked threads' stacks: totals only) */
	for (i = 0; i < 2; i++) {
		struct ebb_node_purge_stats *np = &s->node_purge[i];

		st(&np->batches, i ? 300 : 700);
		st(&np->syscalls, i ? 300 : 701);
		st(&np->batch_lat[4], i ? 300 : 700);
		st(&np->cache_flushes, 300);	/* 100 + 200, and 300 */
	}
	/* uring failed 10 batches that vector finished: 1010 batches in all
	 * for 1000, 1001 syscalls */
	st(&s->by_backend[0].batches, 1000);
	st(&s->by_backend[0].syscalls, 995);
	st(&s->by_backend[1].batches, 10);
	st(&s->by_backend[1].syscalls, 6);
	st(&s->by_backend[2].batches, 0);
	st(&s->by_backend[2].syscalls, 0);
	/* version 3: 2 GiB purged, most of it over the cap; 1 MiB in flight */
	st(&s->purged_decay_bytes, 512 * MIB);
	st(&s->purged_cap_bytes, 1536 * MIB);
	st(&s->purged_forced_bytes, MIB);
	st(&s->dirty_cap_bytes, 48 * MIB);
	st(&s->dirty_hold_bytes, 16 * MIB);
}

static void fill_k(struct ebb_stats_file *f, uint64_t k)
{
	struct ebb_stats *s = &f->stats;
	uint64_t *w;
	unsigned i;

	/* every 64-bit word from allocated_bytes up to backend[], then nodes */
	for (w = &s->allocated_bytes; w < (uint64_t *)s->backend; w++) {
		st(w, k);
		sched_yield();
	}
	for (i = 0; i < 2; i++)
		for (w = (uint64_t *)&s->node[i]; w < (uint64_t *)&s->node[i + 1]; w++)
			st(w, k);
	for (w = (uint64_t *)&s->by_backend[0]; w < (uint64_t *)&s->by_backend[EBB_STATS_BACKENDS]; w++) {
		st(w, k);
		sched_yield();
	}
	/* the arenas' 64-bit figures (node and threads stay as they are) */
	s->narenas = 3;
	for (i = 0; i < 3; i++)
		for (w = &s->arena[i].allocated_bytes; w < (uint64_t *)&s->arena[i + 1]; w++)
			st(w, k);
	/* each node's purges and flushes */
	for (i = 0; i < 2; i++)
		for (w = (uint64_t *)&s->node_purge[i]; w < (uint64_t *)&s->node_purge[i + 1]; w++)
			st(w, k);
}

int main(int argc, char **argv)
{
	const char *tmpl = getenv("EBB_STATS_FILE"), *conf = getenv("EBB_CONF");
	char confpath[4096];
	int consistent = argc == 2 && !strcmp(argv[1], "consistent");
	struct ebb_stats_file *f;
	char path[4096];
	size_t o = 0;
	uint64_t k, t_end;
	int fd;

	/* like the library: EBB_STATS_FILE, else the last stats_file= of EBB_CONF */
	confpath[0] = '\0';
	for (; conf && *conf; conf = strchr(conf, ',') ? strchr(conf, ',') + 1 : "")
		if (!strncmp(conf, "stats_file=", 11))
			snprintf(confpath, sizeof(confpath), "%.*s", (int)strcspn(conf + 11, ","), conf + 11);
	if ((!tmpl || !*tmpl) && confpath[0])
		tmpl = confpath;
	if (argc != 2 || (!consistent && strcmp(argv[1], "fixed")) || !tmpl || !*tmpl) {
		fprintf(stderr, "usage: EBB_STATS_FILE=path (or EBB_CONF=stats_file=path) fake_statswriter fixed|consistent\n");
		return 2;
	}
	for (; *tmpl && o + 16 < sizeof(path); tmpl++) {
		if (tmpl[0] == '%' && tmpl[1] == 'p') {
			o += (size_t)snprintf(path + o, sizeof(path) - o, "%d", (int)getpid());
			tmpl++;
		} else {
			path[o++] = *tmpl;
		}
	}
	path[o] = '\0';
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, sizeof(*f)) != 0) {
		perror(path);
		return 1;
	}
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	close(fd);

	t_end = now_ns() + 60ULL * 1000000000ULL;
	for (k = 1; now_ns() < t_end; k++) {
		struct timespec pause = { 0, 2 * 1000 * 1000 };
		struct timeval tv = { 0, 0 };
		fd_set fds;
		char buf[16];

		__atomic_store_n(&f->seq, 2 * k - 1, __ATOMIC_RELAXED);	/* odd: writing */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		st(&f->pid, (uint64_t)getpid());
		f->stats.version = EBB_STATS_VERSION;
		f->stats.nnodes = 2;
		snprintf(f->stats.backend, sizeof(f->stats.backend), "%s", consistent ? "fake" : "uring");
		if (consistent)
			fill_k(f, k);
		else
			fill_fixed(f);
		st(&f->updated_ns, now_ns());
		st(&f->magic, EBB_STATS_FILE_MAGIC);
		__atomic_store_n(&f->seq, 2 * k, __ATOMIC_RELEASE);	/* even: done */
		if (k == 1) {
			printf("ready %s\n", path);
			fflush(stdout);
		}
		FD_ZERO(&fds);
		FD_SET(0, &fds);
		if (select(1, &fds, NULL, NULL, &tv) > 0 && read(0, buf, sizeof(buf)) <= 0)
			break;
		/* consistent: a short gap between (slow) updates, so a reader
		 * that follows the seqlock gets its turn; fixed: every 2 ms */
		if (consistent)
			pause.tv_nsec = 300 * 1000;
		nanosleep(&pause, NULL);
	}
	unlink(path);
	return 0;
}
