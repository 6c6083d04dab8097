/*
 * rtest.h - helpers shared by the reclaim behaviour tests (tests/reclaim/).
 *
 * Header-only, static functions: each test is one executable. Helpers for
 * checks that count failures, RSS from /proc/self/statm, the ebbmalloc
 * entry points found with dlsym(RTLD_DEFAULT) in a preloaded process (so the
 * same binary fails clearly when the preload did not take), the threads of
 * this process by name, a log-uniform size picker and a byte pattern
 * unique to a block.
 *
 * Nothing here allocates behind the test's back except where it says so.
 */
#ifndef RTEST_H
#define RTEST_H

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ebbmalloc.h"

#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)

static int rt_failures;

/* A failed check is reported and counted; the test goes on so that one run
 * shows every broken property. */
#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		rt_failures++; \
		printf("FAIL %s:%d: ", __FILE__, __LINE__); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		fflush(stdout); \
	} \
} while (0)

static inline void rt_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Exit with the liburing-style code. */
static inline int rt_result(const char *name)
{
	if (rt_failures) {
		printf("%s: %d check(s) failed\n", name, rt_failures);
		return 1;
	}
	printf("%s: ok\n", name);
	return 0;
}

static inline pid_t rt_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Monotonic seconds: used only to bound waits, never asserted on. */
static inline double rt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void rt_sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Resident bytes of this process, from /proc/self/statm (no allocation). */
static inline size_t rt_rss_bytes(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long size = 0, res = 0;
	if (sscanf(buf, "%lu %lu", &size, &res) != 2)
		return 0;
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static inline double rt_mib(size_t b)
{
	return (double)b / (double)MiB;
}

/* ---- ebbmalloc, looked up at run time ------------------------------------ */
typedef int (*rt_stats_fn)(struct ebb_stats *, size_t);
typedef int (*rt_ctl_fn)(const char *, void *, size_t *, const void *, size_t);

#ifdef RT_LINKED
/* linked with libebbmalloc-ebb.a: call the ebb_* API directly */
static inline void *rt_sym(const char *name)
{
	if (strcmp(name, "ebb_stats_sized") == 0)
		return (void *)ebb_stats_sized;
	if (strcmp(name, "ebb_ctl") == 0)
		return (void *)ebb_ctl;
	printf("FAIL: rt_sym(%s): not linked\n", name);
	exit(1);
}
#else
static inline void *rt_sym(const char *name)
{
	void *p = dlsym(RTLD_DEFAULT, name);
	if (!p) {
		printf("FAIL: %s not found: this program must run with "
		       "LD_PRELOAD=build/libebbmalloc.so\n", name);
		exit(1);
	}
	return p;
}
#endif

static inline void rt_stats(struct ebb_stats *st)
{
	static rt_stats_fn fn;
	if (!fn)
		fn = (rt_stats_fn)rt_sym("ebb_stats_sized");
	memset(st, 0, sizeof(*st));
	fn(st, sizeof(*st));
}

/* An integer option through ebb_ctl; dflt if it cannot be read. */
static inline uint64_t rt_opt(const char *name, uint64_t dflt)
{
	static rt_ctl_fn fn;
	if (!fn)
		fn = (rt_ctl_fn)rt_sym("ebb_ctl");
	uint64_t v = 0;
	size_t len = sizeof(v);
	if (fn(name, &v, &len, NULL, 0) != 0)
		return dflt;
	return v;
}

/* ---- threads by name --------------------------------------------------------- */
/* Is task tid of this process an io_uring worker (PF_IO_WORKER)? The
 * kernel creates them as threads of the submitting task, with its comm
 * ("ebb-reclaim") until they rename themselves "iou-wrk-N": a name count
 * must not mistake one for a second reclaim thread. */
#define RT_PF_IO_WORKER 0x10u
static int rt_io_workers_skipped;	/* named like the thread sought, but io workers */
static inline int rt_is_io_worker(const char *tid)
{
	char path[320], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%s/stat", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (k <= 0)
		return 0;
	buf[k] = 0;
	char *s = strrchr(buf, ')');	/* comm may hold spaces */
	unsigned long flags = 0;
	char state;
	int ppid, pgrp, session, tty, tpgid;
	if (!s || sscanf(s + 1, " %c %d %d %d %d %d %lu", &state, &ppid, &pgrp, &session, &tty,
			 &tpgid, &flags) != 7)
		return 0;
	return (flags & RT_PF_IO_WORKER) != 0;
}

/* Fill tids[] with the threads of this process whose comm is name (io_uring
 * workers excluded); returns how many (at most max). Uses opendir (which
 * mallocs). */
static inline int rt_threads_named(const char *name, pid_t *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[320], comm[64];
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t k = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (k <= 0)
			continue;
		comm[k] = 0;
		if (comm[k - 1] == '\n')
			comm[k - 1] = 0;
		if (strcmp(comm, name) == 0 && rt_is_io_worker(e->d_name)) {
			rt_io_workers_skipped++;
		} else if (strcmp(comm, name) == 0) {
			if (n < max)
				tids[n] = (pid_t)atoi(e->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* Wait (bounded) until a thread named name exists; returns its count. */
static inline int rt_wait_thread_named(const char *name, unsigned max_ms)
{
	pid_t t[4];
	double end = rt_now() + max_ms / 1000.0;
	for (;;) {
		int n = rt_threads_named(name, t, 4);
		if (n > 0 || rt_now() > end)
			return n;
		rt_sleep_ms(10);
	}
}

/* ---- workload helpers ----------------------------------------------------------- */
static inline uint64_t rt_rand(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* log-uniform size in [lo, hi]: every size class gets its share */
static inline size_t rt_size(uint64_t *s, size_t lo, size_t hi)
{
	unsigned lg_lo = 63 - (unsigned)__builtin_clzll(lo);
	unsigned lg_hi = 63 - (unsigned)__builtin_clzll(hi);
	unsigned lg = lg_lo + (unsigned)(rt_rand(s) % (lg_hi - lg_lo + 1));
	size_t base = (size_t)1 << lg;
	size_t sz = base + (size_t)(rt_rand(s) % base);
	if (sz < lo)
		sz = lo;
	if (sz > hi)
		sz = hi;
	return sz;
}

/* Fill a block with a pattern derived from tag, or check it. Whole block:
 * catches purged (zeroed) pages, overlapping blocks and stray writes. */
static inline void rt_fill(void *p, size_t n, uint64_t tag)
{
	uint64_t *w = p;
	size_t nw = n / 8;
	for (size_t i = 0; i < nw; i++)
		w[i] = tag ^ (i * 0x9e3779b97f4a7c15ULL);
	unsigned char *b = p;
	for (size_t i = nw * 8; i < n; i++)
		b[i] = (unsigned char)(tag + i);
}

/* Returns the offset of the first wrong byte, or (size_t)-1. */
static inline size_t rt_check(const void *p, size_t n, uint64_t tag)
{
	const uint64_t *w = p;
	size_t nw = n / 8;
	for (size_t i = 0; i < nw; i++)
		if (w[i] != (tag ^ (i * 0x9e3779b97f4a7c15ULL)))
			return i * 8;
	const unsigned char *b = p;
	for (size_t i = nw * 8; i < n; i++)
		if (b[i] != (unsigned char)(tag + i))
			return i;
	return (size_t)-1;
}

/* Touch every page of a block (so it is resident). */
static inline void rt_touch(void *p, size_t n)
{
	volatile unsigned char *b = p;
	for (size_t i = 0; i < n; i += 4096)
		b[i] = 1;
	if (n)
		b[n - 1] = 1;
}

#endif /* RTEST_H */
