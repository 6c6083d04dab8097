/*
 * fork_busy.c - fork while the reclaim thread is busy (DESIGN.md invariant
 * 4, issue 4 point 7).
 *
 * Parent: two threads churn (allocate ~16 MiB in sizes 16 B .. 1 MiB with a
 * pattern, check it, free it all: dirty memory crosses the cap every round
 * and the reclaim thread purges; one of them also calls malloc_trim(0)
 * every third round). Meanwhile the main thread forks NFORKS times. Each
 * child, at once:
 *   - mallocs, then allocates and touches 32 MiB and frees it;
 *   - must get a reclaim thread of its own (a thread named ebb-reclaim in
 *     /proc/self/task, waited for at most 3 s);
 *   - calls malloc_trim(0) and its RSS must fall by >= 32 MiB - 8 MiB:
 *     the purge acted on the child's memory (a ring or pidfd inherited
 *     from the parent would purge the parent's pages instead, which the
 *     parent's pattern checks would also catch);
 *   - with the uring backend, holds exactly one io_uring fd (the copy of
 *     the parent's ring is closed at fork, its own ring was created);
 *   - exits 0. alarm(20) turns a deadlock in the child into SIGALRM.
 * The parent waits for each child with a 30 s bound (a child that does not
 * finish is a deadlock: its stacks are printed with gdb when available,
 * then it is killed), and its churners must go on making progress during
 * the forks. Exit 0 when every child exited 0 and no check failed.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "rtest.h"

#define NFORKS		16
#define NCHURN		2
#define CHURN_BYTES	(16 * MiB)
#define NSLOTS		4096
#define CHILD_BYTES	(32 * MiB)

static _Atomic int stop, churn_bad;
static _Atomic unsigned long rounds;

static void *churn(void *arg)
{
	unsigned idx = (unsigned)(uintptr_t)arg;
	uint64_t seed = 77 + idx;
	static __thread void *slot[NSLOTS];
	static __thread size_t size[NSLOTS];
	unsigned r = 0;
	while (!stop) {
		size_t total = 0;
		unsigned n = 0;
		while (total < CHURN_BYTES && n < NSLOTS) {
			size_t sz = rt_size(&seed, 16, MiB);
			unsigned char *p = malloc(sz);
			if (!p) {
				churn_bad = 1;
				return NULL;
			}
			rt_fill(p, sz - 1 < 256 ? sz - 1 : 256, (uint64_t)(uintptr_t)p);
			p[sz - 1] = (unsigned char)sz;
			slot[n] = p;
			size[n] = sz;
			total += sz;
			n++;
		}
		for (unsigned i = 0; i < n; i++) {
			unsigned char *p = slot[i];
			if (rt_check(p, size[i] - 1 < 256 ? size[i] - 1 : 256, (uint64_t)(uintptr_t)p) != (size_t)-1 ||
			    p[size[i] - 1] != (unsigned char)size[i]) {
				printf("FAIL: parent block %p (%zu bytes) corrupted\n", (void *)p, size[i]);
				churn_bad = 1;
			}
			free(p);
		}
		if (idx == 0 && ++r % 3 == 0)
			malloc_trim(0);
		rounds++;
	}
	return NULL;
}

/* io_uring instances this process holds an fd of */
static int count_uring_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[320], link[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		if (k <= 0)
			continue;
		link[k] = 0;
		if (strcmp(link, "anon_inode:[io_uring]") == 0)
			n++;
	}
	closedir(d);
	return n;
}

static int child(void)
{
	alarm(20);
	void *first = malloc(100);
	if (!first) {
		printf("FAIL: child %d: malloc right after fork returned NULL\n", (int)getpid());
		return 1;
	}
	memset(first, 1, 100);
	uint64_t seed = (uint64_t)getpid();
	static void *slot[NSLOTS];
	unsigned n = 0;
	size_t total = 0;
	size_t c0 = rt_rss_bytes();
	while (total < CHILD_BYTES && n < NSLOTS) {
		size_t sz = rt_size(&seed, 16, MiB);
		void *p = malloc(sz);
		if (!p) {
			printf("FAIL: child: malloc(%zu)\n", sz);
			return 1;
		}
		memset(p, 0x77, sz);
		slot[n++] = p;
		total += sz;
	}
	size_t c1 = rt_rss_bytes();
	for (unsigned i = 0; i < n; i++)
		free(slot[i]);
	free(first);
	int nrec = rt_wait_thread_named("ebb-reclaim", 3000);
	int t = malloc_trim(0);
	size_t c2 = rt_rss_bytes();
	int bad = 0;
	if (nrec != 1) {
		printf("FAIL: child %d: %d threads named ebb-reclaim after it freed %.1f MiB (want 1)\n",
		       (int)getpid(), nrec, rt_mib(total));
		bad = 1;
	}
	if (c2 + total > c1 + 8 * MiB) {
		printf("FAIL: child %d: RSS %.1f -> %.1f MiB after freeing %.1f MiB and malloc_trim (-> %d)\n",
		       (int)getpid(), rt_mib(c1), rt_mib(c2), rt_mib(total), t);
		bad = 1;
	}
	struct ebb_stats st;
	rt_stats(&st);
	if (strcmp(st.backend, "uring") == 0) {
		/* the parent's ring was dropped at fork; the child made one */
		int nfd = count_uring_fds();
		if (nfd != 1) {
			printf("FAIL: child %d: %d io_uring fds after its purges (want 1: its own ring)\n",
			       (int)getpid(), nfd);
			bad = 1;
		}
	}
	printf("child %d: RSS start %.1f, peak %.1f, after trim %.1f MiB; trim -> %d; reclaim threads %d; backend %s%s\n",
	       (int)getpid(), rt_mib(c0), rt_mib(c1), rt_mib(c2), t, nrec, st.backend,
	       rt_io_workers_skipped ? " (an io_uring worker still named ebb-reclaim was not counted)" : "");
	fflush(stdout);
	return bad;
}

static void dump_and_kill(pid_t pid)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd),
		 "command -v gdb >/dev/null && timeout 30 gdb -batch -p %d -ex 'thread apply all bt' 2>&1 | tail -60",
		 (int)pid);
	if (system(cmd) != 0)
		printf("(no backtrace: gdb missing or failed)\n");
	kill(pid, SIGKILL);
}

int main(void)
{
	pthread_t th[NCHURN];
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned i = 0; i < NCHURN; i++)
		if (pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)i) != 0) {
			printf("FAIL: pthread_create\n");
			return 1;
		}
	while (rounds < 4)
		rt_sleep_ms(5);
	int nrec = rt_wait_thread_named("ebb-reclaim", 3000);
	CHECK(nrec == 1, "parent: %d threads named ebb-reclaim while churning (want 1)", nrec);
	int children_ok = 0;
	unsigned long rounds_at_first_fork = rounds;
	for (int k = 0; k < NFORKS; k++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			CHECK(0, "fork: %s", strerror(errno));
			break;
		}
		if (pid == 0) {
			int r = child();
			exit(r);
		}
		int status = 0;
		double end = rt_now() + 30;
		pid_t w;
		while ((w = waitpid(pid, &status, WNOHANG)) == 0 && rt_now() < end)
			rt_sleep_ms(5);
		if (w == 0) {
			CHECK(0, "child %d (fork %d) did not finish in 30 s: deadlock", (int)pid, k);
			dump_and_kill(pid);
			waitpid(pid, &status, 0);
			continue;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			children_ok++;
		else if (WIFSIGNALED(status))
			CHECK(0, "child %d (fork %d) killed by signal %d%s", (int)pid, k, WTERMSIG(status),
			      WTERMSIG(status) == SIGALRM ? " (its 20 s alarm: deadlock)" : "");
		else
			CHECK(0, "child %d (fork %d) exited %d", (int)pid, k, WEXITSTATUS(status));
		rt_sleep_ms(20);
	}
	unsigned long progress = rounds - rounds_at_first_fork;
	stop = 1;
	for (unsigned i = 0; i < NCHURN; i++)
		pthread_join(th[i], NULL);
	CHECK(!churn_bad, "the parent's churn found corrupted blocks or failed to allocate");
	CHECK(progress > 0, "the parent's churn made no progress while it forked");
	int t = malloc_trim(0);
	struct ebb_stats st;
	rt_stats(&st);
	printf("forks %d, children ok %d, parent churn rounds during the forks %lu, parent trim -> %d, "
	       "backend %s, purged %.1f MiB\n", NFORKS, children_ok, progress, t, st.backend,
	       rt_mib(st.purged_bytes));
	CHECK(children_ok == NFORKS, "%d of %d children failed", NFORKS - children_ok, NFORKS);
	return rt_result("fork_busy");
}
