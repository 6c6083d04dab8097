/*
 * stats_check.c - the stats are consistent (issue 7, points 2 and 5), run
 * by stats.sh with LD_PRELOAD, EBB_STATS=1 and EBB_STATS_FILE=DIR/sf.%p.
 *
 * Three threads allocate a mix (16 B .. 1 MiB, plus two 8 MiB huge blocks
 * each) and park; with the process quiet, the main thread checks:
 *  - ebb_stats: the per-node figures add up to the totals (allocated and
 *    active plus huge, dirty, purging, purged, chunks, remote frees;
 *    mapped at least the nodes' plus huge), and each node's figures are
 *    the sums of its arenas' (all eight); active <= mapped and
 *    allocated <= active, in total, per node and per arena; the backends'
 *    syscalls add up to purge_syscalls, their batches to purge_batches
 *    (more only after a fallback); allocated >= the bytes the program
 *    holds; huge_count >= 6 and huge_bytes >= 48 MiB;
 *  - mallinfo2(): arena, uordblks, hblks, hblkhd are non-zero and agree
 *    with the above as glibc's do (hblks == huge_count, hblkhd ==
 *    huge_bytes, uordblks + fordblks == arena, uordblks + hblkhd between
 *    the bytes held and allocated_bytes);
 *  - malloc_info(0, fp) writes argv[1] (stats.sh parses the XML with
 *    python3), malloc_info(1, fp) fails with EINVAL; ebb_stats_print(fd, 1)
 *    writes argv[2] (stats.sh parses the JSON);
 *  - the live stats file: magic EBB_STATS_FILE_MAGIC, our pid, refreshed
 *    within 1 s, a seqlock-consistent copy whose allocated, active, mapped,
 *    chunks and huge figures (and each arena's) equal ebb_stats'; after 16 MiB more are
 *    allocated, the file shows them within 1 s (refresh period 100 ms);
 * then everything is freed, the threads exit and after malloc_trim(0)
 * dirty and purging are 0, tcache_flushes has counted the flushes, the
 * purge counters moved and the latency histogram holds every batch. EBB_STATS=1 prints at exit (stats.sh checks).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "rtest.h"

#define NTH	3
#define NBLK	2000
#define HUGE	(8 * MiB)

struct th {
	void *blk[NBLK];
	size_t size[NBLK];
	void *huge[2];
	size_t held;
	int bad;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int nready, go_free;

static void *worker(void *arg)
{
	struct th *t = arg;
	uint64_t seed = (uint64_t)(uintptr_t)arg;
	for (unsigned i = 0; i < NBLK; i++) {
		t->size[i] = rt_size(&seed, 16, MiB / 4);
		t->blk[i] = malloc(t->size[i]);
		if (!t->blk[i]) {
			t->bad = 1;
			break;
		}
		memset(t->blk[i], 1, t->size[i]);
		t->held += t->size[i];
		/* churn a little so that some slabs empty and get purged */
		if (i % 4 == 3) {
			free(t->blk[i - 1]);
			t->held -= t->size[i - 1];
			t->blk[i - 1] = NULL;
		}
	}
	for (int k = 0; k < 2; k++) {
		t->huge[k] = malloc(HUGE);
		if (!t->huge[k])
			t->bad = 1;
		else
			memset(t->huge[k], 2, HUGE);
		t->held += HUGE;
	}
	pthread_mutex_lock(&lock);
	nready++;
	pthread_cond_broadcast(&cv);
	while (!go_free)
		pthread_cond_wait(&cv, &lock);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < NBLK; i++)
		free(t->blk[i]);
	free(t->huge[0]);
	free(t->huge[1]);
	return NULL;
}

static void check_stats(const struct ebb_stats *st, size_t held, const char *when)
{
	uint64_t alloc = 0, active = 0, dirty = 0, purging = 0, purged = 0, mapped = 0, chunks = 0, remote = 0;
	CHECK(st->version == EBB_STATS_VERSION, "%s: version %u", when, st->version);
	CHECK(st->nnodes >= 1 && st->nnodes <= EBB_STATS_MAX_NODES, "%s: nnodes %u", when, st->nnodes);
	for (unsigned n = 0; n < st->nnodes && n < EBB_STATS_MAX_NODES; n++) {
		const struct ebb_node_stats *ns = &st->node[n];
		alloc += ns->allocated_bytes;
		active += ns->active_bytes;
		dirty += ns->dirty_bytes;
		purging += ns->purging_bytes;
		purged += ns->purged_bytes;
		mapped += ns->mapped_bytes;
		chunks += ns->chunks;
		remote += ns->remote_frees;
		CHECK(ns->active_bytes <= ns->mapped_bytes, "%s: node %u active %llu > mapped %llu", when, n,
		      (unsigned long long)ns->active_bytes, (unsigned long long)ns->mapped_bytes);
		CHECK(ns->allocated_bytes <= ns->active_bytes, "%s: node %u allocated %llu > active %llu", when,
		      n, (unsigned long long)ns->allocated_bytes, (unsigned long long)ns->active_bytes);
		CHECK(ns->active_bytes + ns->dirty_bytes + ns->purging_bytes <= ns->mapped_bytes,
		      "%s: node %u active + dirty + purging > mapped", when, n);
	}
	CHECK(alloc + st->huge_bytes == st->allocated_bytes, "%s: nodes' allocated %llu + huge %llu != %llu",
	      when, (unsigned long long)alloc, (unsigned long long)st->huge_bytes,
	      (unsigned long long)st->allocated_bytes);
	CHECK(active + st->huge_bytes == st->active_bytes, "%s: nodes' active %llu + huge != %llu", when,
	      (unsigned long long)active, (unsigned long long)st->active_bytes);
	CHECK(dirty == st->dirty_bytes && purging == st->purging_bytes && purged == st->purged_bytes,
	      "%s: nodes' dirty/purging/purged do not add up", when);
	CHECK(chunks == st->chunks && remote == st->remote_frees, "%s: nodes' chunks/remote_frees do not add up",
	      when);
	CHECK(mapped + st->huge_bytes <= st->mapped_bytes, "%s: nodes' mapped %llu + huge %llu > mapped %llu",
	      when, (unsigned long long)mapped, (unsigned long long)st->huge_bytes,
	      (unsigned long long)st->mapped_bytes);
	CHECK(st->active_bytes <= st->mapped_bytes, "%s: active %llu > mapped %llu", when,
	      (unsigned long long)st->active_bytes, (unsigned long long)st->mapped_bytes);
	CHECK(st->allocated_bytes <= st->active_bytes, "%s: allocated %llu > active %llu (huge %llu)", when,
	      (unsigned long long)st->allocated_bytes, (unsigned long long)st->active_bytes,
	      (unsigned long long)st->huge_bytes);
	CHECK(st->allocated_bytes >= held, "%s: allocated %llu < %zu bytes the program holds", when,
	      (unsigned long long)st->allocated_bytes, held);
	CHECK(st->chunks * 4 * MiB == mapped, "%s: %llu chunks but %llu bytes mapped in chunks", when,
	      (unsigned long long)st->chunks, (unsigned long long)mapped);
	/* every purged page was taken for a reason first */
	CHECK(st->purged_decay_bytes + st->purged_cap_bytes + st->purged_forced_bytes >= st->purged_bytes,
	      "%s: purged by decay %llu + cap %llu + forced %llu < purged %llu", when,
	      (unsigned long long)st->purged_decay_bytes, (unsigned long long)st->purged_cap_bytes,
	      (unsigned long long)st->purged_forced_bytes, (unsigned long long)st->purged_bytes);
	CHECK(st->dirty_cap_bytes >= 16 * MiB && st->dirty_hold_bytes < st->dirty_cap_bytes,
	      "%s: dirty cap %llu (floor 16 MiB), held %llu", when, (unsigned long long)st->dirty_cap_bytes,
	      (unsigned long long)st->dirty_hold_bytes);

	/* per arena: each node's figures are the sums of its arenas' */
	CHECK(st->narenas >= st->nnodes && st->narenas <= EBB_STATS_MAX_ARENAS, "%s: narenas %u for %u node(s)",
	      when, st->narenas, st->nnodes);
	struct ebb_node_stats sum[EBB_STATS_MAX_NODES];
	memset(sum, 0, sizeof(sum));
	for (unsigned i = 0; i < st->narenas && i < EBB_STATS_MAX_ARENAS; i++) {
		const struct ebb_arena_stats *a = &st->arena[i];
		CHECK(a->node < st->nnodes, "%s: arena %u on node %u of %u", when, i, a->node, st->nnodes);
		if (a->node >= st->nnodes)
			continue;
		CHECK(a->allocated_bytes <= a->active_bytes && a->active_bytes <= a->mapped_bytes &&
		      a->active_bytes + a->dirty_bytes + a->purging_bytes <= a->mapped_bytes &&
		      a->mapped_bytes == a->chunks * 4 * MiB,
		      "%s: arena %u: allocated %llu active %llu dirty %llu purging %llu mapped %llu chunks %llu",
		      when, i, (unsigned long long)a->allocated_bytes, (unsigned long long)a->active_bytes,
		      (unsigned long long)a->dirty_bytes, (unsigned long long)a->purging_bytes,
		      (unsigned long long)a->mapped_bytes, (unsigned long long)a->chunks);
		struct ebb_node_stats *s = &sum[a->node];
		s->allocated_bytes += a->allocated_bytes;
		s->active_bytes += a->active_bytes;
		s->dirty_bytes += a->dirty_bytes;
		s->purging_bytes += a->purging_bytes;
		s->purged_bytes += a->purged_bytes;
		s->mapped_bytes += a->mapped_bytes;
		s->chunks += a->chunks;
		s->remote_frees += a->remote_frees;
	}
	for (unsigned n = 0; n < st->nnodes && n < EBB_STATS_MAX_NODES; n++)
		CHECK(!memcmp(&sum[n], &st->node[n], sizeof(sum[n])),
		      "%s: node %u: arenas' sums (allocated %llu active %llu dirty %llu purging %llu purged %llu "
		      "mapped %llu chunks %llu remote %llu) != the node's (%llu %llu %llu %llu %llu %llu %llu %llu)",
		      when, n, (unsigned long long)sum[n].allocated_bytes, (unsigned long long)sum[n].active_bytes,
		      (unsigned long long)sum[n].dirty_bytes, (unsigned long long)sum[n].purging_bytes,
		      (unsigned long long)sum[n].purged_bytes, (unsigned long long)sum[n].mapped_bytes,
		      (unsigned long long)sum[n].chunks, (unsigned long long)sum[n].remote_frees,
		      (unsigned long long)st->node[n].allocated_bytes, (unsigned long long)st->node[n].active_bytes,
		      (unsigned long long)st->node[n].dirty_bytes, (unsigned long long)st->node[n].purging_bytes,
		      (unsigned long long)st->node[n].purged_bytes, (unsigned long long)st->node[n].mapped_bytes,
		      (unsigned long long)st->node[n].chunks, (unsigned long long)st->node[n].remote_frees);

	/* purges by backend: every syscall was made by one backend; a batch
	 * counts once in total and once per backend that tried it */
	uint64_t bb = 0, bs = 0;
	for (unsigned k = 0; k < EBB_STATS_BACKENDS; k++) {
		bb += st->by_backend[k].batches;
		bs += st->by_backend[k].syscalls;
	}
	CHECK(bs == st->purge_syscalls, "%s: backends' syscalls %llu != purge_syscalls %llu", when,
	      (unsigned long long)bs, (unsigned long long)st->purge_syscalls);
	CHECK(bb >= st->purge_batches && (st->backend_fallbacks || bb == st->purge_batches),
	      "%s: backends' batches %llu, purge_batches %llu, fallbacks %llu", when, (unsigned long long)bb,
	      (unsigned long long)st->purge_batches, (unsigned long long)st->backend_fallbacks);

	/* per node: a node's cache flushes are its arenas'; its purge batches,
	 * syscalls and latency buckets are part of the totals (which also
	 * count the idle flush's purges of parked threads' stacks) */
	uint64_t nb = 0, ns = 0, nlat[EBB_STATS_LAT_BUCKETS] = { 0 };
	for (unsigned n = 0; n < st->nnodes && n < EBB_STATS_MAX_NODES; n++) {
		const struct ebb_node_purge_stats *np = &st->node_purge[n];
		uint64_t flushes = 0, lat = 0;
		for (unsigned i = 0; i < st->narenas && i < EBB_STATS_MAX_ARENAS; i++)
			if (st->arena[i].node == n)
				flushes += st->arena[i].cache_flushes;
		CHECK(flushes == np->cache_flushes, "%s: node %u: cache_flushes %llu, its arenas' %llu", when, n,
		      (unsigned long long)np->cache_flushes, (unsigned long long)flushes);
		/* a node's batch carries the ranges of any of its arenas: each
		 * arena's batches are at most the node's, their sum at least */
		uint64_t ab = 0;
		for (unsigned i = 0; i < st->narenas && i < EBB_STATS_MAX_ARENAS; i++) {
			const struct ebb_arena_stats *a = &st->arena[i];
			if (a->node != n)
				continue;
			uint64_t al = 0;
			for (unsigned k = 0; k < EBB_STATS_LAT_BUCKETS; k++)
				al += a->purge_batch_lat[k];
			CHECK(al == a->purge_batches && a->purge_batches <= np->batches &&
			      a->purge_ranges >= a->purge_batches,
			      "%s: arena %u: %llu purge batches (%llu in its latency buckets, %llu ranges), its node's %llu",
			      when, i, (unsigned long long)a->purge_batches, (unsigned long long)al,
			      (unsigned long long)a->purge_ranges, (unsigned long long)np->batches);
			ab += a->purge_batches;
		}
		CHECK(ab >= np->batches, "%s: node %u: %llu purge batches, its arenas' only %llu", when, n,
		      (unsigned long long)np->batches, (unsigned long long)ab);
		for (unsigned k = 0; k < EBB_STATS_LAT_BUCKETS; k++) {
			lat += np->batch_lat[k];
			nlat[k] += np->batch_lat[k];
		}
		CHECK(lat == np->batches && np->syscalls >= np->batches,
		      "%s: node %u: %llu batches, %llu in its latency buckets, %llu syscalls", when, n,
		      (unsigned long long)np->batches, (unsigned long long)lat, (unsigned long long)np->syscalls);
		nb += np->batches;
		ns += np->syscalls;
	}
	CHECK(nb <= st->purge_batches && ns <= st->purge_syscalls,
	      "%s: nodes' purge batches %llu / syscalls %llu over the totals %llu / %llu", when,
	      (unsigned long long)nb, (unsigned long long)ns, (unsigned long long)st->purge_batches,
	      (unsigned long long)st->purge_syscalls);
	for (unsigned k = 0; k < EBB_STATS_LAT_BUCKETS; k++)
		CHECK(nlat[k] <= st->purge_batch_lat[k], "%s: nodes' latency bucket %u %llu > total %llu", when, k,
		      (unsigned long long)nlat[k], (unsigned long long)st->purge_batch_lat[k]);
}

/* Copy the stats file's content under its seqlock; 0 or -1. */
static int read_sfile(const volatile struct ebb_stats_file *f, struct ebb_stats_file *out)
{
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t s0 = __atomic_load_n(&f->seq, __ATOMIC_ACQUIRE);
		if (s0 & 1) {
			rt_sleep_ms(1);
			continue;
		}
		memcpy(out, (const void *)f, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&f->seq, __ATOMIC_ACQUIRE) == s0)
			return 0;
	}
	return -1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void check_stats_file(void)
{
	const char *pat = getenv("EBB_STATS_FILE");
	if (!pat) {
		CHECK(0, "EBB_STATS_FILE is not set (stats.sh sets it)");
		return;
	}
	char path[512];
	size_t k = 0;
	for (const char *s = pat; *s && k + 16 < sizeof(path); s++) {
		if (s[0] == '%' && s[1] == 'p') {
			k += (size_t)snprintf(path + k, sizeof(path) - k, "%d", (int)getpid());
			s++;
		} else {
			path[k++] = *s;
		}
	}
	path[k] = 0;
	int fd = -1;
	for (int i = 0; i < 100 && fd < 0; i++) {	/* created by the reclaim thread */
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			rt_sleep_ms(10);
	}
	if (fd < 0) {
		CHECK(0, "stats file %s was not created: %s", path, strerror(errno));
		return;
	}
	void *m = mmap(NULL, sizeof(struct ebb_stats_file), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		CHECK(0, "cannot map %s", path);
		return;
	}
	const volatile struct ebb_stats_file *f = m;
	struct ebb_stats_file c;
	struct ebb_stats st;
	rt_sleep_ms(300);	/* quiet for 3 refresh periods */
	CHECK(read_sfile(f, &c) == 0, "stats file: no consistent copy (seq stays odd or changes)");
	rt_stats(&st);
	uint64_t age = now_ns() - c.updated_ns;
	printf("stats file %s: magic %#llx pid %llu seq %llu age %.0f ms; allocated %llu (ebb_stats %llu), "
	       "active %llu (%llu), mapped %llu (%llu)\n", path, (unsigned long long)c.magic,
	       (unsigned long long)c.pid, (unsigned long long)c.seq, age / 1e6,
	       (unsigned long long)c.stats.allocated_bytes, (unsigned long long)st.allocated_bytes,
	       (unsigned long long)c.stats.active_bytes, (unsigned long long)st.active_bytes,
	       (unsigned long long)c.stats.mapped_bytes, (unsigned long long)st.mapped_bytes);
	CHECK(c.magic == EBB_STATS_FILE_MAGIC, "stats file magic %#llx, want %#llx",
	      (unsigned long long)c.magic, (unsigned long long)EBB_STATS_FILE_MAGIC);
	CHECK(c.pid == (uint64_t)getpid(), "stats file pid %llu, want %d", (unsigned long long)c.pid,
	      (int)getpid());
	CHECK(age < 1000000000ull, "stats file last refreshed %.0f ms ago", age / 1e6);
	CHECK(c.stats.version == st.version && c.stats.nnodes == st.nnodes &&
	      c.stats.allocated_bytes == st.allocated_bytes && c.stats.active_bytes == st.active_bytes &&
	      c.stats.mapped_bytes == st.mapped_bytes && c.stats.chunks == st.chunks &&
	      c.stats.huge_bytes == st.huge_bytes && c.stats.huge_count == st.huge_count &&
	      c.stats.narenas == st.narenas,
	      "stats file figures differ from ebb_stats in a quiet process");
	for (unsigned i = 0; i < st.narenas && i < EBB_STATS_MAX_ARENAS; i++)
		CHECK(c.stats.arena[i].node == st.arena[i].node &&
		      c.stats.arena[i].allocated_bytes == st.arena[i].allocated_bytes &&
		      c.stats.arena[i].active_bytes == st.arena[i].active_bytes &&
		      c.stats.arena[i].chunks == st.arena[i].chunks,
		      "stats file: arena %u differs from ebb_stats in a quiet process", i);
	/* a change shows up within a refresh period (bounded wait of 1 s) */
	void *more[16];
	for (int i = 0; i < 16; i++) {
		more[i] = malloc(MiB);
		if (more[i])
			memset(more[i], 3, MiB);
	}
	uint64_t before = c.stats.allocated_bytes;
	int seen = 0;
	for (int i = 0; i < 100 && !seen; i++) {
		rt_sleep_ms(10);
		if (read_sfile(f, &c) == 0 && c.stats.allocated_bytes >= before + 16 * MiB)
			seen = 1;
	}
	CHECK(seen, "16 MiB more allocated: the stats file still says %llu bytes after 1 s",
	      (unsigned long long)c.stats.allocated_bytes);
	for (int i = 0; i < 16; i++)
		free(more[i]);
	munmap(m, sizeof(struct ebb_stats_file));
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		printf("usage: stats_check MALLOC_INFO.xml STATS.json\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	static struct th t[NTH];
	pthread_t th[NTH];
	for (int i = 0; i < NTH; i++)
		if (pthread_create(&th[i], NULL, worker, &t[i]) != 0) {
			printf("FAIL: pthread_create\n");
			return 1;
		}
	pthread_mutex_lock(&lock);
	while (nready < NTH)
		pthread_cond_wait(&cv, &lock);
	pthread_mutex_unlock(&lock);
	size_t held = 0;
	for (int i = 0; i < NTH; i++) {
		CHECK(!t[i].bad, "thread %d could not allocate", i);
		held += t[i].held;
	}
	struct ebb_stats st;
	rt_stats(&st);
	struct mallinfo2 mi = mallinfo2();
	printf("held %.1f MiB; stats: nnodes %u allocated %.1f active %.1f mapped %.1f dirty %.1f purged %.1f "
	       "MiB, huge %llu (%.1f MiB), chunks %llu, threads %llu, tcache %.1f KiB, backend %s\n",
	       rt_mib(held), st.nnodes, rt_mib(st.allocated_bytes), rt_mib(st.active_bytes),
	       rt_mib(st.mapped_bytes), rt_mib(st.dirty_bytes), rt_mib(st.purged_bytes),
	       (unsigned long long)st.huge_count, rt_mib(st.huge_bytes), (unsigned long long)st.chunks,
	       (unsigned long long)st.threads, (double)st.tcache_bytes / KiB, st.backend);
	printf("mallinfo2: arena %zu ordblks %zu hblks %zu hblkhd %zu uordblks %zu fordblks %zu "
	       "fsmblks %zu keepcost %zu\n", mi.arena, mi.ordblks, mi.hblks, mi.hblkhd, mi.uordblks,
	       mi.fordblks, mi.fsmblks, mi.keepcost);
	check_stats(&st, held, "with 3 threads holding memory");
	CHECK(st.huge_count >= 2 * NTH && st.huge_bytes >= 2 * NTH * HUGE, "huge: %llu blocks, %llu bytes",
	      (unsigned long long)st.huge_count, (unsigned long long)st.huge_bytes);
	CHECK(mi.arena > 0 && mi.uordblks > 0 && mi.hblks > 0 && mi.hblkhd > 0 && mi.ordblks > 0,
	      "mallinfo2 has zero fields");
	CHECK(mi.uordblks >= held - 2 * NTH * HUGE, "mallinfo2 uordblks %zu < %zu bytes held in chunks",
	      mi.uordblks, held - 2 * NTH * HUGE);
	CHECK(mi.hblks == st.huge_count && mi.hblkhd == st.huge_bytes,
	      "mallinfo2 hblks/hblkhd %zu/%zu, ebb_stats huge %llu/%llu", mi.hblks, mi.hblkhd,
	      (unsigned long long)st.huge_count, (unsigned long long)st.huge_bytes);
	/* glibc's meaning: arena = uordblks + fordblks (huge blocks are not in
	 * the arena), uordblks + hblkhd = what the program holds */
	CHECK(mi.uordblks + mi.fordblks == mi.arena, "mallinfo2 uordblks %zu + fordblks %zu != arena %zu",
	      mi.uordblks, mi.fordblks, mi.arena);
	CHECK(mi.uordblks + mi.hblkhd >= held && mi.uordblks + mi.hblkhd <= st.allocated_bytes + MiB,
	      "mallinfo2 uordblks %zu + hblkhd %zu: the program holds %zu, ebb_stats allocated %llu",
	      mi.uordblks, mi.hblkhd, held, (unsigned long long)st.allocated_bytes);
	CHECK(mi.arena == st.chunks * 4 * MiB, "mallinfo2 arena %zu, chunks %llu x 4 MiB", mi.arena,
	      (unsigned long long)st.chunks);

	FILE *fp = fopen(argv[1], "w");
	if (!fp) {
		printf("FAIL: fopen %s\n", argv[1]);
		return 1;
	}
	CHECK(malloc_info(0, fp) == 0, "malloc_info(0, fp) failed");
	fclose(fp);
	fp = fopen("/dev/null", "w");
	errno = 0;
	int r = malloc_info(1, fp);
	CHECK(r == -1 && errno == EINVAL, "malloc_info(1, fp) returned %d errno %d (want -1 EINVAL)", r, errno);
	fclose(fp);
	int jfd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	void (*print)(int, int) = (void (*)(int, int))rt_sym("ebb_stats_print");
	print(jfd, 1);
	close(jfd);

	check_stats_file();

	pthread_mutex_lock(&lock);
	go_free = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < NTH; i++)
		pthread_join(th[i], NULL);
	int t1 = malloc_trim(0);
	rt_stats(&st);
	mi = mallinfo2();
	printf("after freeing all and malloc_trim (-> %d): allocated %.1f active %.1f dirty %llu purging %llu "
	       "purged %.1f MiB, huge %llu; mallinfo2 uordblks %zu keepcost %zu\n", t1,
	       rt_mib(st.allocated_bytes), rt_mib(st.active_bytes), (unsigned long long)st.dirty_bytes,
	       (unsigned long long)st.purging_bytes, rt_mib(st.purged_bytes),
	       (unsigned long long)st.huge_count, mi.uordblks, mi.keepcost);
	check_stats(&st, 0, "after freeing everything");
	CHECK(st.dirty_bytes == 0 && st.purging_bytes == 0, "after trim: dirty %llu, purging %llu (want 0)",
	      (unsigned long long)st.dirty_bytes, (unsigned long long)st.purging_bytes);
	CHECK(st.huge_count == 0 && st.huge_bytes == 0, "after freeing: %llu huge blocks still counted",
	      (unsigned long long)st.huge_count);
	CHECK(st.allocated_bytes < 4 * MiB, "after freeing everything %.1f MiB still allocated",
	      rt_mib(st.allocated_bytes));
	CHECK(mi.keepcost == 0, "mallinfo2 keepcost %zu after trim", mi.keepcost);
	/* 3 threads exited with full caches, malloc_trim flushed ours, and
	 * every worker's bins overflowed while it freed: caches were flushed */
	CHECK(st.tcache_flushes > 0, "tcache_flushes is still 0 after %d threads flushed their caches",
	      NTH + 1);
	CHECK(st.purge_batches > 0 && st.purge_syscalls > 0 && st.purge_ranges > 0,
	      "purge counters batches/syscalls/ranges %llu/%llu/%llu after %.1f MiB purged",
	      (unsigned long long)st.purge_batches, (unsigned long long)st.purge_syscalls,
	      (unsigned long long)st.purge_ranges, rt_mib(st.purged_bytes));
	uint64_t lat = 0;
	for (int i = 0; i < EBB_STATS_LAT_BUCKETS; i++)
		lat += st.purge_batch_lat[i];
	CHECK(lat == st.purge_batches, "purge latency histogram holds %llu batches, purge_batches %llu",
	      (unsigned long long)lat, (unsigned long long)st.purge_batches);
	/* the arenas' purges (all of them here: the threads exited, no cache
	 * was idle-flushed) are counted in their node; the flushes too */
	uint64_t nb = 0, nf = 0;
	for (unsigned n = 0; n < st.nnodes && n < EBB_STATS_MAX_NODES; n++) {
		nb += st.node_purge[n].batches;
		nf += st.node_purge[n].cache_flushes;
	}
	CHECK(nb > 0 && nf > 0, "after trim the nodes count %llu purge batches and %llu cache flushes",
	      (unsigned long long)nb, (unsigned long long)nf);
	return rt_result("stats_check");
}
