/*
 * os_linux.c - the OS layer: mmap, mremap, prctl, getcpu, environment,
 * stderr, clocks. The only file of alloc/ that includes <sys/mman.h>.
 *
 * Every wrapper saves and restores errno (callers are inside malloc, whose
 * caller may be inspecting errno) and returns 0 or -errno. Nothing here
 * allocates. os_map, os_remap_* and os_map_file first ask fault.c whether
 * to fail (EBB_FAULT; one predictable branch when it is unset).
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/membarrier.h>

#include "os.h"
#include "fault.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA		0x53564d41
#define PR_SET_VMA_ANON_NAME	0
#endif

static _Atomic uintptr_t map_hint;	/* start of the last aligned mapping */

int os_map(size_t size, size_t align, void **out)
{
	int saved = errno;
	size_t page = 4096;
	int f = fault_should_fail(FAULT_MMAP);
	if (ebb_fault_unlikely(f))
		return f;
	if (align < page)
		align = page;
	if (size > SIZE_MAX - align)
		return -ENOMEM;
	if (align > page) {
		/* First try the range just below the last aligned mapping
		 * (mmap hands out addresses top-down): mostly it is free and
		 * aligned, and one mmap replaces mmap + two trimming munmaps. */
		uintptr_t h = atomic_load_explicit(&map_hint, memory_order_relaxed);
		if (h > size) {
			char *q = mmap((void *)(h - size), size, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (q != MAP_FAILED) {
				if (((uintptr_t)q & (align - 1)) == 0) {
					atomic_store_explicit(&map_hint, (uintptr_t)q, memory_order_relaxed);
					errno = saved;
					*out = q;
					return 0;
				}
				munmap(q, size);
			}
		}
	}
	size_t len = size + (align > page ? align - page : 0);
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		errno = saved;
		return -e;
	}
	uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	size_t lead = a - (uintptr_t)p;
	size_t trail = len - lead - size;
	if (lead)
		munmap(p, lead);
	if (trail)
		munmap((char *)a + size, trail);
	if (align > page)
		atomic_store_explicit(&map_hint, a, memory_order_relaxed);
	errno = saved;
	*out = (void *)a;
	return 0;
}

int os_unmap(void *addr, size_t size)
{
	int saved = errno;
	int r = munmap(addr, size) ? -errno : 0;
	errno = saved;
	return r;
}

int os_remap_inplace(void *addr, size_t old_size, size_t new_size)
{
	int f = fault_should_fail(FAULT_MREMAP);
	if (ebb_fault_unlikely(f))
		return f;
	int saved = errno;
	void *p = mremap(addr, old_size, new_size, 0);
	int r = p == MAP_FAILED ? -errno : 0;
	errno = saved;
	return r;
}

int os_remap_move(void *addr, size_t old_size, size_t new_size, void *dst)
{
	int f = fault_should_fail(FAULT_MREMAP);
	if (ebb_fault_unlikely(f))
		return f;
	int saved = errno;
	void *p = mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	int r = p == MAP_FAILED ? -errno : 0;
	errno = saved;
	return r;
}

static _Atomic int name_refused;	/* the kernel said EINVAL once: stop asking */

int os_name(void *addr, size_t size, const char *name)
{
	if (atomic_load_explicit(&name_refused, memory_order_relaxed))
		return -EINVAL;
	int saved = errno;
	int r = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)addr, size,
		      (unsigned long)name) ? -errno : 0;
	if (r == -EINVAL)
		atomic_store_explicit(&name_refused, 1, memory_order_relaxed);
	errno = saved;
	return r;
}

int os_getcpu(unsigned *cpu)
{
	int saved = errno;
	int c = sched_getcpu();
	int r = c < 0 ? -errno : 0;
	errno = saved;
	if (c >= 0)
		*cpu = (unsigned)c;
	return r;
}

int os_getenv(const char *name, char *buf, size_t len)
{
	/* getenv() does not allocate; secure_getenv would hide EBB_* from
	 * setuid programs, which is what we want there too. */
	const char *v = secure_getenv(name);
	if (!v)
		return 0;
	size_t n = strlen(v);
	if (n >= len)
		n = len - 1;
	memcpy(buf, v, n);
	buf[n] = 0;
	return 1;
}

void os_write_fd(int fd, const char *msg, size_t len)
{
	int saved = errno;
	while (len > 0) {
		ssize_t w = write(fd, msg, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		msg += w;
		len -= (size_t)w;
	}
	errno = saved;
}

void os_write_stderr(const char *msg, size_t len)
{
	os_write_fd(2, msg, len);
}

uint64_t os_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t os_random(void)
{
	int saved = errno;
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
		v = os_now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	errno = saved;
	return v | 1;
}

long os_read_file(const char *path, char *buf, size_t len)
{
	int saved = errno;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		long e = -errno;
		errno = saved;
		return e;
	}
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t r = read(fd, buf + got, len - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = 0;
	close(fd);
	errno = saved;
	return (long)got;
}

unsigned os_gettid(void)
{
	return (unsigned)syscall(SYS_gettid);
}

int os_map_file(const char *path, size_t size, void **out)
{
	int f = fault_should_fail(FAULT_MAPFILE);
	if (ebb_fault_unlikely(f))
		return f;
	int saved = errno;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = -errno;
		errno = saved;
		return e;
	}
	/* One writer per file. A program exec'd with the same path (no %p in
	 * it) used to truncate the file that its still-running parent had
	 * mapped, and the parent's next refresh died of SIGBUS. The lock
	 * belongs to this open file description: it goes with the descriptor
	 * kept below, at exit or exec (O_CLOEXEC). */
	int r = flock(fd, LOCK_EX | LOCK_NB) ? (errno == EWOULDBLOCK ? -EBUSY : -errno) : 0;
	struct stat st;
	if (!r && fstat(fd, &st))
		r = -errno;
	if (!r && (uint64_t)st.st_size < size && ftruncate(fd, (off_t)size))
		r = -errno;
	if (!r) {
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			r = -errno;
		else
			*out = p;
	}
	if (r)
		close(fd);	/* on success the descriptor stays open: it holds the lock */
	errno = saved;
	return r;
}

int os_membarrier_register(void)
{
	int saved = errno;
	int r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) ? -errno : 0;
	errno = saved;
	return r;
}

int os_membarrier(void)
{
	int saved = errno;
	int r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) ? -errno : 0;
	errno = saved;
	return r;
}
