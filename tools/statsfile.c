/*
 * statsfile.c - finding and reading ebbmalloc's live stats file.
 *
 * A process running ebbmalloc with EBB_STATS_FILE=path (or stats_file=path
 * in EBB_CONF; "%p" stands for its pid) keeps a struct ebb_stats_file there,
 * refreshed by its reclaim thread. We map the file read-only and copy it
 * out under its seqlock: read seq (must be even), copy every word, read seq
 * again; a changed or odd seq means the writer was in the middle of an
 * update and we copy again. The copy is made with relaxed 64-bit atomic
 * loads (the struct is all 8-byte words), so a torn word is impossible and
 * a torn snapshot is caught by the seq check.
 *
 * The path comes from the target's *initial* environment
 * (/proc/PID/environ): if the program changed its environment before
 * ebbmalloc read it, we look in the wrong place, and say so.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tools.h"

_Static_assert(sizeof(struct ebb_stats_file) % 8 == 0,
	       "the stats file is copied in 64-bit words");

/* Expands %p (the pid; nothing else, like the library) in a path template;
 * relative paths are made relative to cwd (the target's /proc/PID/cwd). */
static int statsfile_expand(const char *tmpl, size_t tlen, pid_t pid,
			    const char *cwd, char *path, size_t len)
{
	size_t o = 0, i;
	int n;

	if (tlen == 0)
		return -ENOENT;
	if (tmpl[0] != '/' && cwd) {
		n = snprintf(path, len, "%s/", cwd);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		o = (size_t)n;
	}
	for (i = 0; i < tlen; i++) {
		if (tmpl[i] == '%' && i + 1 < tlen && tmpl[i + 1] == 'p') {
			n = snprintf(path + o, len - o, "%d", (int)pid);
			if (n < 0 || (size_t)n >= len - o)
				return -ENAMETOOLONG;
			o += (size_t)n;
			i++;
			continue;
		}
		if (o + 1 >= len)
			return -ENAMETOOLONG;
		path[o++] = tmpl[i];
	}
	path[o] = '\0';
	return 0;
}

int statsfile_path_env(const char *env, size_t envlen, pid_t pid,
		       const char *cwd, char *path, size_t len)
{
	const char *v, *conf, *p;
	const char *tmpl = NULL;
	size_t tlen = 0;

	/* as the library reads them: EBB_CONF first, then EBB_STATS_FILE,
	 * the more specific variable, wins */
	v = proc_environ_get(env, envlen, "EBB_STATS_FILE");
	if (v && *v) {
		tmpl = v;
		tlen = strlen(v);
	}
	conf = tmpl ? NULL : proc_environ_get(env, envlen, "EBB_CONF");
	for (p = conf; p && *p;) {
		const char *end = strchr(p, ',');
		size_t l = end ? (size_t)(end - p) : strlen(p);

		if (l > 11 && !strncmp(p, "stats_file=", 11)) {
			tmpl = p + 11;	/* the last one in the string wins */
			tlen = l - 11;
		}
		p = end ? end + 1 : NULL;
	}
	if (!tmpl)
		return -ENOENT;
	return statsfile_expand(tmpl, tlen, pid, cwd, path, len);
}

int statsfile_path(pid_t pid, char *path, size_t len)
{
	char cwd[64];
	size_t envlen = 0;
	char *env;
	int ret;

	env = proc_read(pid, "environ", &envlen);
	if (!env)
		return errno == ENOENT ? -ESRCH : -errno;
	snprintf(cwd, sizeof(cwd), "/proc/%d/cwd", (int)pid);
	ret = statsfile_path_env(env, envlen, pid, cwd, path, len);
	free(env);
	return ret;
}

static uint64_t load_relaxed(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

int statsfile_read(const char *path, struct ebb_stats_file *out)
{
	const size_t words = sizeof(*out) / sizeof(uint64_t);
	const struct timespec pause = { 0, 200 * 1000 };	/* 10000 x 200 us = 2 s */
	const uint64_t *src;
	uint64_t *dst = (uint64_t *)out;
	struct stat st;
	void *map;
	int fd, tries, ret = -EAGAIN;
	size_t i;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if ((size_t)st.st_size < sizeof(*out)) {
		close(fd);
		return -EPROTO;
	}
	map = mmap(NULL, sizeof(*out), PROT_READ, MAP_SHARED, fd, 0);
	ret = map == MAP_FAILED ? -errno : -EAGAIN;
	close(fd);
	if (map == MAP_FAILED)
		return ret;
	src = map;

	/* the writer holds seq odd for microseconds: retry at once a few times,
	 * then with short sleeps, for about 2 s in all */
	for (tries = 0; tries < 10000 + 1000; tries++) {
		uint64_t s1 = __atomic_load_n(&((const struct ebb_stats_file *)map)->seq,
					      __ATOMIC_ACQUIRE);
		uint64_t s2;

		if (s1 & 1) {
			if (tries < 1000)
				sched_yield();
			else
				nanosleep(&pause, NULL);
			continue;
		}
		for (i = 0; i < words; i++)
			dst[i] = load_relaxed(src + i);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = load_relaxed(&((const struct ebb_stats_file *)map)->seq);
		if (s1 == s2) {
			ret = 0;
			break;
		}
	}
	munmap(map, sizeof(*out));
	if (ret)
		return ret;
	if (out->magic != EBB_STATS_FILE_MAGIC || out->stats.version != EBB_STATS_VERSION)
		return -EPROTO;
	if (out->stats.nnodes > EBB_STATS_MAX_NODES)
		out->stats.nnodes = EBB_STATS_MAX_NODES;
	if (out->stats.narenas > EBB_STATS_MAX_ARENAS)
		out->stats.narenas = EBB_STATS_MAX_ARENAS;
	out->stats.backend[sizeof(out->stats.backend) - 1] = '\0';
	return 0;
}

void statsfile_explain(const char *prog, pid_t pid, const char *path, int err)
{
	struct proc_allocs al;
	int have = proc_allocs(pid, &al) == 0;

	switch (err) {
	case -ESRCH:
		fprintf(stderr, "%s: no process %d\n", prog, (int)pid);
		return;
	case -EACCES:
	case -EPERM:
		fprintf(stderr, "%s: cannot read /proc/%d/environ (permission denied): "
			"run as the process's user or as root\n", prog, (int)pid);
		return;
	case -ENOENT:
		if (!path || !*path) {
			if (have && al.active != PROC_ALLOC_EBBMALLOC)
				fprintf(stderr, "%s: process %d does not run ebbmalloc "
					"(its allocator: %s); `ebb-doctor %d` diagnoses any heap\n",
					prog, (int)pid, proc_alloc_name(al.active), (int)pid);
			fprintf(stderr, "%s: process %d has no stats file: ebbmalloc writes live "
				"stats only when the process runs with EBB_STATS_FILE=/tmp/ebb.%%p "
				"(or: ebbrun -o stats_file=/tmp/ebb.%%p -- command...)\n",
				prog, (int)pid);
		} else {
			fprintf(stderr, "%s: %s does not exist (yet): ebbmalloc creates it from "
				"its reclaim thread, which starts once the process has made some "
				"allocations; is ebbmalloc loaded in %d%s?\n",
				prog, path, (int)pid,
				have && al.active != PROC_ALLOC_EBBMALLOC ?
				" (it is not: its allocator is not ebbmalloc)" : "");
		}
		return;
	case -EPROTO:
		fprintf(stderr, "%s: %s is not an ebbmalloc stats file of version %d "
			"(not written yet, or from another version)\n",
			prog, path, EBB_STATS_VERSION);
		return;
	case -EAGAIN:
		fprintf(stderr, "%s: %s: the writer kept the snapshot busy; try again\n",
			prog, path);
		return;
	default:
		fprintf(stderr, "%s: %s: %s\n", prog, path ? path : "stats file", strerror(-err));
	}
}
