/*
 * numa_fake.c - per-node arenas on the fake topology (issue 5), linked with
 * build/libebbmalloc-ebb.a (the ebb_* API beside glibc's malloc).
 *
 * Mode "on" (run with EBB_NUMA_FAKE=2: CPU 0 is node 0, CPU 1 node 1):
 *  1. a thread pinned to CPU 0 allocates 4 MiB (64 KiB blocks) + 1000
 *     small blocks and keeps them: one node's allocated_bytes grows by at
 *     least that much, the other's by less than 1 MiB;
 *  2. a thread pinned to CPU 1 does the same: the OTHER node grows;
 *  3. threads pinned to CPU 1 free the CPU 0 thread's blocks - half by a
 *     thread that allocated before, half by a fresh thread whose first
 *     call is a free (a pure consumer): each time the first node's
 *     remote_frees grows by at least the number of blocks, its
 *     allocated_bytes falls by at least their bytes (they went home, not
 *     into the CPU 1 thread's cache), and the second node does not grow
 *     (but for the warm-up block of 32 B);
 *  4. the CPU 1 thread allocates again: its own node grows, not the first.
 *  Also nnodes == 2 and the per-node figures add up to the totals.
 *  5. a CPU 1 thread that stays alive frees 1000 small blocks of CPU 0:
 *     all but less than a batch go home while it lives, and none of its
 *     next 1000 allocations of that size is one of them;
 *  6. freeing twice a block that waits in that thread's batch to go home
 *     aborts with "double free" (in a forked child);
 *  7. everything freed and ebb_reclaim(0): the purge batches of the node
 *     whose memory it was grow (whoever purged it), and the nodes' batches and syscalls add up
 *     to no more than the totals' (purges are counted per node).
 * Mode "off" (EBB_NUMA=off EBB_NUMA_FAKE=2): nnodes == 1, both threads
 * allocate from node 0, and step 3 counts no remote frees.
 * Needs CPUs 0 and 1 in the affinity mask (else skip, 77).
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include "rtest.h"

#define NBIG	64
#define BIG	(64 * KiB)
#define NSMALL_BLK 1000
#define SMALL	100
#define NBLK	(NBIG + NSMALL_BLK)

struct job {
	int cpu;
	void **alloc;		/* allocate NBLK blocks here (if non-NULL) */
	void **free_them;	/* free these blocks first (if non-NULL) */
	unsigned nfree;		/* how many */
	int warm;		/* malloc (and keep) one block before freeing */
	int got_cpu;
	int bad;
};
static void *warm_blk[4];
static unsigned nwarm;

static void *run(void *arg)
{
	struct job *j = arg;
	j->got_cpu = sched_getcpu();
	if (j->warm)
		warm_blk[nwarm++] = ebb_malloc(32);
	if (j->free_them)
		for (unsigned i = 0; i < j->nfree; i++)
			ebb_free(j->free_them[i]);
	if (j->alloc)
		for (unsigned i = 0; i < NBLK; i++) {
			size_t n = i < NBIG ? BIG : SMALL;
			j->alloc[i] = ebb_malloc(n);
			if (!j->alloc[i]) {
				j->bad = 1;
				break;
			}
			memset(j->alloc[i], 0x42, n);
		}
	return NULL;
}

/* Run a job on a thread pinned to cpu; the thread exits afterwards (its
 * cache is flushed at exit, as a real worker's would be). */
static int on_cpu_free(int cpu, void **alloc, void **free_them, unsigned nfree, int warm)
{
	struct job j = { .cpu = cpu, .alloc = alloc, .free_them = free_them, .nfree = nfree, .warm = warm };
	pthread_attr_t a;
	cpu_set_t set;
	pthread_t th;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_attr_init(&a);
	pthread_attr_setaffinity_np(&a, sizeof(set), &set);
	if (pthread_create(&th, &a, run, &j) != 0)
		return -1;
	pthread_join(th, NULL);
	pthread_attr_destroy(&a);
	CHECK(j.got_cpu == cpu, "the thread pinned to CPU %d ran on CPU %d", cpu, j.got_cpu);
	return j.bad ? -1 : 0;
}

static int on_cpu(int cpu, void **alloc)
{
	return on_cpu_free(cpu, alloc, NULL, 0, 0);
}

static int64_t d_alloc(const struct ebb_stats *a, const struct ebb_stats *b, unsigned n)
{
	return (int64_t)b->node[n].allocated_bytes - (int64_t)a->node[n].allocated_bytes;
}

static void check_sums(const struct ebb_stats *st, const char *when)
{
	uint64_t alloc = 0, active = 0, dirty = 0, mapped = 0, chunks = 0, remote = 0;
	for (unsigned n = 0; n < st->nnodes && n < EBB_STATS_MAX_NODES; n++) {
		alloc += st->node[n].allocated_bytes;
		active += st->node[n].active_bytes;
		dirty += st->node[n].dirty_bytes;
		mapped += st->node[n].mapped_bytes;
		chunks += st->node[n].chunks;
		remote += st->node[n].remote_frees;
	}
	CHECK(alloc + st->huge_bytes == st->allocated_bytes && active + st->huge_bytes == st->active_bytes &&
	      dirty == st->dirty_bytes && chunks == st->chunks && remote == st->remote_frees &&
	      mapped + st->huge_bytes <= st->mapped_bytes,
	      "%s: per-node figures do not add up to the totals", when);
}

/* 5: a consumer on CPU 1 that stays alive frees NLIVE small blocks of
 * CPU 0: they go home in batches of a class while it lives (all but less
 * than a batch before it exits), and its own allocations of that class
 * afterwards are never those blocks (they went home, not into its bins). */
#define NLIVE 1000
static void *live_alloc(void *arg)
{
	void **blk = arg;
	for (unsigned i = 0; i < NLIVE; i++)
		blk[i] = ebb_malloc(SMALL);
	return NULL;
}

static void *one_alloc(void *arg)
{
	*(void **)arg = ebb_malloc(SMALL);
	return NULL;
}

struct live_job {
	void **blk;
	unsigned home;
	uint64_t remote_alive;	/* home's remote_frees grew by this before the exit */
	unsigned reused;
	int got_cpu;
};

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static void *live_run(void *arg)
{
	struct live_job *j = arg;
	static void *mine[NLIVE];
	struct ebb_stats a, b;
	j->got_cpu = sched_getcpu();
	ebb_free(ebb_malloc(SMALL));	/* a cache */
	rt_stats(&a);
	for (unsigned i = 0; i < NLIVE; i++)
		ebb_free(j->blk[i]);
	rt_stats(&b);
	j->remote_alive = b.node[j->home].remote_frees - a.node[j->home].remote_frees;
	for (unsigned i = 0; i < NLIVE; i++)
		mine[i] = ebb_malloc(SMALL);
	qsort(j->blk, NLIVE, sizeof(void *), ptr_cmp);
	for (unsigned i = 0; i < NLIVE; i++)
		j->reused += bsearch(&mine[i], j->blk, NLIVE, sizeof(void *), ptr_cmp) != NULL;
	for (unsigned i = 0; i < NLIVE; i++)
		ebb_free(mine[i]);
	return NULL;
}

static void live_consumer(unsigned home)
{
	static void *blk[NLIVE];
	struct live_job j = { .blk = blk, .home = home };
	pthread_attr_t a;
	cpu_set_t set;
	pthread_t th;
	for (unsigned i = 0; i < NLIVE; i++)
		blk[i] = NULL;
	/* CPU 0 allocates them (a thread that exits: nothing stays cached) */
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	pthread_attr_init(&a);
	pthread_attr_setaffinity_np(&a, sizeof(set), &set);
	if (pthread_create(&th, &a, live_alloc, blk) != 0) {
		CHECK(0, "pthread_create failed");
		return;
	}
	pthread_join(th, NULL);
	for (unsigned i = 0; i < NLIVE; i++)
		if (!blk[i]) {
			CHECK(0, "CPU 0 could not allocate");
			return;
		}
	CPU_ZERO(&set);
	CPU_SET(1, &set);
	pthread_attr_setaffinity_np(&a, sizeof(set), &set);
	if (pthread_create(&th, &a, live_run, &j) != 0) {
		CHECK(0, "pthread_create failed");
		return;
	}
	pthread_join(th, NULL);
	pthread_attr_destroy(&a);
	printf("a live CPU 1 thread freed %u blocks of node %u: %llu went home while it lived; "
	       "%u of its %u allocations were those blocks\n", NLIVE, home,
	       (unsigned long long)j.remote_alive, j.reused, NLIVE);
	CHECK(j.got_cpu == 1, "the thread pinned to CPU 1 ran on CPU %d", j.got_cpu);
	CHECK(j.remote_alive + 32 >= NLIVE, "only %llu of %u remote frees went home while the thread lived",
	      (unsigned long long)j.remote_alive, NLIVE);
	CHECK(j.reused == 0, "%u blocks of node %u were reused on the other node", j.reused, home);
}

/* 6: a second free of a block waiting to go home is a double free. */
static void *df_run(void *arg)
{
	void *p = arg;
	ebb_free(ebb_malloc(SMALL));
	ebb_free(p);
	ebb_free(p);
	return NULL;
}

static void remote_double_free(void)
{
	void *p = NULL;
	pthread_attr_t a;
	cpu_set_t set;
	pthread_t th;
	int pfd[2];
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	pthread_attr_init(&a);
	pthread_attr_setaffinity_np(&a, sizeof(set), &set);
	pthread_create(&th, &a, one_alloc, &p);
	pthread_join(th, NULL);
	if (!p || pipe(pfd) != 0) {
		CHECK(0, "set-up failed");
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 2);
		CPU_ZERO(&set);
		CPU_SET(1, &set);
		pthread_attr_setaffinity_np(&a, sizeof(set), &set);
		pthread_create(&th, &a, df_run, p);
		pthread_join(th, NULL);
		_exit(0);
	}
	close(pfd[1]);
	char msg[256] = "";
	ssize_t k = read(pfd[0], msg, sizeof(msg) - 1);
	msg[k > 0 ? k : 0] = 0;
	close(pfd[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	pthread_attr_destroy(&a);
	printf("double free of a block waiting to go home: %s%s", WIFSIGNALED(st) ? "aborted: " : "not aborted", msg);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(msg, "double free"),
	      "a double free of a block in the remote stack was not caught (status %#x)", st);
}

int main(int argc, char **argv)
{
	int off = argc > 1 && strcmp(argv[1], "off") == 0;
	cpu_set_t set;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sched_getaffinity(0, sizeof(set), &set) != 0 || !CPU_ISSET(0, &set) || !CPU_ISSET(1, &set)) {
		printf("needs CPUs 0 and 1 (this machine or cgroup does not give both)\n");
		return 77;
	}
	static void *a_blk[NBLK], *b_blk[NBLK], *b_blk2[NBLK];
	const int64_t bytes = (int64_t)NBIG * BIG + (int64_t)NSMALL_BLK * SMALL;
	struct ebb_stats s0, s1, s2, s3, s4;
	ebb_free(ebb_malloc(1));	/* init */
	rt_stats(&s0);
	printf("nnodes %u (EBB_NUMA=%s, EBB_NUMA_FAKE=%s)\n", s0.nnodes,
	       getenv("EBB_NUMA") ? getenv("EBB_NUMA") : "default",
	       getenv("EBB_NUMA_FAKE") ? getenv("EBB_NUMA_FAKE") : "unset");
	CHECK(s0.nnodes == (off ? 1u : 2u), "nnodes %u, want %u", s0.nnodes, off ? 1u : 2u);
	if (s0.nnodes < 1 || s0.nnodes > EBB_STATS_MAX_NODES)
		return rt_result("numa_fake");

	if (on_cpu(0, a_blk)) {
		printf("FAIL: allocation on CPU 0 failed\n");
		return 1;
	}
	rt_stats(&s1);
	if (on_cpu(1, b_blk)) {
		printf("FAIL: allocation on CPU 1 failed\n");
		return 1;
	}
	rt_stats(&s2);
	unsigned na = 0, nb = 0;
	for (unsigned n = 1; n < s0.nnodes; n++) {
		if (d_alloc(&s0, &s1, n) > d_alloc(&s0, &s1, na))
			na = n;
		if (d_alloc(&s1, &s2, n) > d_alloc(&s1, &s2, nb))
			nb = n;
	}
	printf("CPU 0 thread: node %u +%lld bytes; CPU 1 thread: node %u +%lld bytes\n", na,
	       (long long)d_alloc(&s0, &s1, na), nb, (long long)d_alloc(&s1, &s2, nb));
	CHECK(d_alloc(&s0, &s1, na) >= bytes, "node %u grew by %lld bytes for %lld allocated on CPU 0",
	      na, (long long)d_alloc(&s0, &s1, na), (long long)bytes);
	CHECK(d_alloc(&s1, &s2, nb) >= bytes, "node %u grew by %lld bytes for %lld allocated on CPU 1",
	      nb, (long long)d_alloc(&s1, &s2, nb), (long long)bytes);
	if (off) {
		CHECK(na == 0 && nb == 0, "EBB_NUMA=off: memory came from nodes %u and %u", na, nb);
	} else {
		CHECK(na != nb, "threads on CPU 0 and CPU 1 both got memory from node %u", na);
		for (unsigned n = 0; n < s0.nnodes; n++)
			if (n != na)
				CHECK(d_alloc(&s0, &s1, n) < (int64_t)MiB,
				      "node %u grew by %lld bytes while only CPU 0 allocated", n,
				      (long long)d_alloc(&s0, &s1, n));
	}

	/* 3: CPU 1 frees what CPU 0 allocated: first a thread that has
	 * allocated before (its cache is set up), then a fresh thread whose
	 * first call is a free (a pure consumer) */
	const unsigned half = NBLK / 2;
	const int64_t bytes_a = (int64_t)NBIG * BIG + (int64_t)(half - NBIG) * SMALL;
	const int64_t bytes_b = bytes - bytes_a;
	if (on_cpu_free(1, NULL, a_blk, half, 1) || (rt_stats(&s3), 0) ||
	    on_cpu_free(1, NULL, a_blk + half, NBLK - half, 0)) {
		printf("FAIL: CPU 1 thread failed\n");
		return 1;
	}
	struct ebb_stats s3b;
	rt_stats(&s3b);
	const struct ebb_stats *st_before[2] = { &s2, &s3 }, *st_after[2] = { &s3, &s3b };
	const int64_t want_bytes[2] = { bytes_a, bytes_b };
	const unsigned want_n[2] = { half, NBLK - half };
	const char *who[2] = { "a CPU 1 thread that allocated before", "a fresh CPU 1 thread (first call: free)" };
	for (int k = 0; k < 2; k++) {
		int64_t fell = -d_alloc(st_before[k], st_after[k], na);
		uint64_t remote = st_after[k]->node[na].remote_frees - st_before[k]->node[na].remote_frees;
		printf("%s freed %u blocks of CPU 0: node %u remote_frees +%llu, allocated -%lld bytes; "
		       "node %u allocated %+lld\n", who[k], want_n[k], na, (unsigned long long)remote,
		       (long long)fell, nb, (long long)d_alloc(st_before[k], st_after[k], nb));
		if (off) {
			CHECK(remote == 0, "EBB_NUMA=off: %llu remote frees counted", (unsigned long long)remote);
			/* one node: the freeing thread's cache may keep them */
			continue;
		}
		CHECK(remote >= want_n[k], "%s: node %u remote_frees grew by %llu for %u remote frees",
		      who[k], na, (unsigned long long)remote, want_n[k]);
		CHECK(fell >= want_bytes[k], "%s: node %u allocated fell by %lld bytes after %lld bytes of its "
		      "blocks were freed on the other node: they did not go home", who[k], na,
		      (long long)fell, (long long)want_bytes[k]);
		CHECK(d_alloc(st_before[k], st_after[k], nb) <= 64,
		      "%s: node %u grew by %lld bytes from frees of node %u blocks", who[k], nb,
		      (long long)d_alloc(st_before[k], st_after[k], nb), na);
	}
	s3 = s3b;

	/* 4: CPU 1 allocates again: still local */
	if (on_cpu(1, b_blk2)) {
		printf("FAIL: CPU 1 thread failed\n");
		return 1;
	}
	rt_stats(&s4);
	printf("CPU 1 allocates again: node %u %+lld bytes, node %u %+lld bytes\n", nb,
	       (long long)d_alloc(&s3, &s4, nb), na, (long long)d_alloc(&s3, &s4, na));
	CHECK(d_alloc(&s3, &s4, nb) >= bytes, "node %u grew by %lld bytes only", nb,
	      (long long)d_alloc(&s3, &s4, nb));
	if (!off)
		CHECK(d_alloc(&s3, &s4, na) < (int64_t)MiB, "node %u grew by %lld bytes for CPU 1's allocations",
		      na, (long long)d_alloc(&s3, &s4, na));
	if (!off) {
		live_consumer(na);
		remote_double_free();
	}
	check_sums(&s0, "start");
	check_sums(&s4, "end");
	/* 7: purges are counted per node: node nb's memory is freed here
	 * (this thread's cache flushed too) and purged, by ebb_reclaim now or
	 * by the reclaim thread if its decay passed first */
	struct ebb_stats p0, p1;
	rt_stats(&p0);
	for (unsigned i = 0; i < nwarm; i++)
		ebb_free(warm_blk[i]);
	for (unsigned i = 0; i < NBLK; i++) {
		ebb_free(b_blk[i]);
		ebb_free(b_blk2[i]);
	}
	ebb_thread_idle();
	ebb_reclaim(0);
	rt_stats(&p1);
	size_t purged = (size_t)(p1.purged_bytes - p0.purged_bytes);
	uint64_t db = 0, ds = 0;
	for (unsigned n = 0; n < p1.nnodes && n < EBB_STATS_MAX_NODES; n++) {
		db += p1.node_purge[n].batches - p0.node_purge[n].batches;
		ds += p1.node_purge[n].syscalls - p0.node_purge[n].syscalls;
	}
	printf("freed and purged %zu bytes: node %u purge batches +%llu, all nodes +%llu (total +%llu), "
	       "syscalls +%llu (total +%llu)\n", purged, nb,
	       (unsigned long long)(p1.node_purge[nb].batches - p0.node_purge[nb].batches),
	       (unsigned long long)db, (unsigned long long)(p1.purge_batches - p0.purge_batches),
	       (unsigned long long)ds, (unsigned long long)(p1.purge_syscalls - p0.purge_syscalls));
	CHECK(purged >= (size_t)MiB, "%zu bytes purged after %lld bytes were freed", purged,
	      (long long)(2 * bytes));
	CHECK(p1.node_purge[nb].batches > p0.node_purge[nb].batches,
	      "node %u's memory was purged but its purge batches did not grow", nb);
	CHECK(db <= p1.purge_batches - p0.purge_batches && ds <= p1.purge_syscalls - p0.purge_syscalls,
	      "the nodes count more purges than the totals");
	return rt_result(off ? "numa_fake (numa off)" : "numa_fake");
}
