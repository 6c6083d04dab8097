/*
 * os.h - the only door to the kernel for alloc/ and numa/ policy code.
 *
 * Contract: every function returns 0 or -errno (or a value, where named),
 * never allocates, and preserves errno. Addresses and sizes are page-aligned
 * and non-zero unless said otherwise. Implemented in os_linux.c.
 */
#ifndef EBB_OS_H
#define EBB_OS_H

#include <stddef.h>
#include <stdint.h>

/* Map size bytes of fresh zeroed read-write memory aligned to align (a power
 * of two >= the page size). */
int      os_map(size_t size, size_t align, void **out);
int      os_unmap(void *addr, size_t size);
/* Resize a mapping in place (no move). */
int      os_remap_inplace(void *addr, size_t old_size, size_t new_size);
/* Move a mapping onto [dst, dst + new_size), replacing what is there. */
int      os_remap_move(void *addr, size_t old_size, size_t new_size, void *dst);
/* Name an anonymous range for /proc/PID/maps (PR_SET_VMA_ANON_NAME); a
 * kernel without it answers -EINVAL, which callers ignore. */
int      os_name(void *addr, size_t size, const char *name);
/* Current CPU (sched_getcpu: rseq/vDSO, no syscall on current glibc). */
int      os_getcpu(unsigned *cpu);
/* Copy the environment variable into buf: 1 found, 0 absent. */
int      os_getenv(const char *name, char *buf, size_t len);
void     os_write_stderr(const char *msg, size_t len);
void     os_write_fd(int fd, const char *msg, size_t len);
uint64_t os_now_ns(void);	/* CLOCK_MONOTONIC */
/* now - then, 0 when then is later: a pass reads the clock once, and a
 * free on another thread may stamp a later time before the pass gets the
 * lock (unsigned, now - then would then count as ages old) */
static inline uint64_t os_ns_since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}
uint64_t os_random(void);	/* for the tcache key */
/* Read a small file (sysfs) into buf, NUL-terminated: bytes read or -errno. */
long     os_read_file(const char *path, char *buf, size_t len);
unsigned os_gettid(void);
/* Create (or reuse) a file of at least size bytes, lock it for this
 * process and map it shared read-write; -EBUSY if another process holds it.
 * The file is never shrunk (another process or a reader may map it). */
int      os_map_file(const char *path, size_t size, void **out);
/* membarrier(2): register for, and issue, private expedited barriers. */
int      os_membarrier_register(void);
int      os_membarrier(void);

#endif
