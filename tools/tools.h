/*
 * tools.h - what the operators' programs in tools/ share.
 *
 * The tools (ebbrun, ebbstat, ebb-doctor, rsswatch) look at *other*
 * processes through /proc and never link the allocator: they use libc's
 * malloc like any other program, so a bug in ebbmalloc cannot hide itself
 * from the tool that is meant to show it. The helpers below are grouped by
 * the file that defines them:
 *
 *   fmt.c        human-readable sizes
 *   proc.c       reading /proc/PID/{environ,status,maps,cmdline}; which
 *                allocator a process has mapped
 *   statsfile.c  finding and reading ebbmalloc's live stats file
 *                (struct ebb_stats_file, a seqlock)
 */
#ifndef EBB_TOOLS_H
#define EBB_TOOLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ebbmalloc.h"

#define KIB	1024ULL
#define MIB	(1024ULL * KIB)
#define GIB	(1024ULL * MIB)

// fmt.c
/* "512 B", "200.0 KiB", "1.1 GiB" into buf (>= 16 bytes); returns buf. */
char *fmt_bytes(uint64_t bytes, char *buf, size_t len);
/* Parses a pid argument: > 0, digits only. Returns the pid or -1. */
pid_t fmt_parse_pid(const char *s);

// proc.c
/* Reads /proc/PID/NAME (pid 0 = self) whole, NUL-terminated; *lenp gets
 * the length without the NUL. Returns a malloc'd buffer, or NULL with
 * errno set. */
char *proc_read(pid_t pid, const char *name, size_t *lenp);
/* Value of NAME in an environ block (NUL-separated "K=V"), or NULL. The
 * last occurrence wins, as with getenv after putenv. */
const char *proc_environ_get(const char *env, size_t len, const char *name);
/* A "Field:   123 kB" line of /proc/PID/status in KiB, or -1. */
long long proc_status_kib(pid_t pid, const char *field);
/* The command line with spaces between arguments, truncated to len. */
void proc_cmdline(pid_t pid, char *buf, size_t len);
/* 1 if /proc/PID exists. */
int proc_alive(pid_t pid);

enum proc_alloc {
	PROC_ALLOC_UNKNOWN = 0,
	PROC_ALLOC_GLIBC,
	PROC_ALLOC_EBBMALLOC,
	PROC_ALLOC_JEMALLOC,
	PROC_ALLOC_TCMALLOC,
	PROC_ALLOC_MIMALLOC,
	PROC_ALLOC_MUSL,
	PROC_ALLOC_COUNT
};

struct proc_allocs {
	enum proc_alloc active;		/* the one that serves malloc */
	unsigned mapped_mask;		/* 1 << enum proc_alloc, per mapped library */
	int preloaded;			/* active one came from LD_PRELOAD */
	int linked;			/* the program itself defines malloc */
	int jvm;			/* libjvm.so is mapped */
	char path[PROC_ALLOC_COUNT][256];	/* mapped file of each */
};

const char *proc_alloc_name(enum proc_alloc a);
/* Fills *out from the text of /proc/PID/maps and the LD_PRELOAD value of
 * the process (may be NULL). */
void proc_allocs_from_maps(const char *maps, const char *ld_preload,
			   struct proc_allocs *out);
/* Same, reading /proc/PID/maps and /proc/PID/environ, and the program's
 * own symbols for an allocator linked in. Returns 0 or -errno. */
int proc_allocs(pid_t pid, struct proc_allocs *out);
/* 1 if a thread of pid has this comm (name). */
int proc_thread_named(pid_t pid, const char *name);
/* 1 if the executable of pid defines function sym (.dynsym or .symtab). */
int proc_exe_defines(pid_t pid, const char *sym);

// statsfile.c
/* Finds the stats file of pid from its environment (EBB_STATS_FILE, or
 * stats_file= in EBB_CONF; "%p" is the pid, relative paths are taken from
 * the process's cwd). Returns 0 with the path in path[], -ENOENT if the
 * process was not started with a stats file, -EACCES/-ESRCH if its
 * environment cannot be read. */
int statsfile_path(pid_t pid, char *path, size_t len);
/* Same, from an environ block we already have (for rsswatch's child). */
int statsfile_path_env(const char *env, size_t envlen, pid_t pid,
		       const char *cwd, char *path, size_t len);
/* Copies a consistent snapshot out of the file (seqlock: retried while seq
 * is odd or changes under the copy). Returns 0, -ENOENT (no file yet),
 * -EPROTO (wrong magic or version; the file is not ebbmalloc's or not yet
 * initialised), -EAGAIN (the writer never let go), or another -errno. */
int statsfile_read(const char *path, struct ebb_stats_file *out);
/* Explains a statsfile_* error for pid on stderr, with what to do. */
void statsfile_explain(const char *prog, pid_t pid, const char *path, int err);

#endif /* EBB_TOOLS_H */
