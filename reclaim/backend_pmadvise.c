/*
 * backend_pmadvise.c - the "vector" reclaim backend: process_madvise(2) on
 * a pidfd of the process itself, up to IOV_MAX (1024) ranges per syscall.
 *
 * The kernel walks the whole iovec under one mmap-lock acquisition, so a
 * batch of 1024 ranges costs one syscall instead of 1024. Before Linux 6.13
 * process_madvise accepted only the "cold" advices (MADV_COLD, _PAGEOUT,
 * _WILLNEED, _COLLAPSE) and answers EINVAL for MADV_DONTNEED/MADV_FREE;
 * seccomp filters may answer ENOSYS or EPERM. init() therefore probes for
 * real, on a scratch page it maps and touches itself, and checks that the
 * page reads back as zero: a kernel that refuses makes init fail and
 * backend.c falls back.
 *
 * Partial progress: the syscall returns the bytes advised so far; it stops
 * early at an error and at MAX_RW_COUNT (~2 GiB per call, the iovec import
 * limit). We continue from where it stopped; an error with nothing done
 * returns -errno.
 *
 * fork: the pidfd names the process that opened it. A child that used the
 * inherited one would purge its PARENT's memory, so atfork_child closes
 * the child's copy and the next init opens the child's own.
 *
 * Threads: called with backend.c's lock held. Never allocates.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fault.h"
#include "reclaim.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

#define VEC_IOV_MAX 1024	/* UIO_MAXIOV: the kernel refuses more */

static int vec_pidfd = -1;

static long vec_call(const struct iovec *v, size_t n, int advice)
{
	int f = fault_should_fail(FAULT_PMADVISE);
	if (ebb_fault_unlikely(f)) {
		errno = -f;
		return -1;
	}
	return syscall(SYS_process_madvise, vec_pidfd, v, n, advice, 0U);
}

static int vec_open(void)
{
	long fd = syscall(SYS_pidfd_open, (long)getpid(), 0L);

	if (fd < 0)
		return -errno;
	vec_pidfd = (int)fd;
	return 0;
}

static void vec_close(void)
{
	if (vec_pidfd >= 0)
		close(vec_pidfd);
	vec_pidfd = -1;
}

static ssize_t vec_purge(const struct iovec *v, size_t n, int advice,
			 uint64_t *syscalls)
{
	size_t total_bytes = 0;
	size_t i = 0, off = 0;	/* next byte: v[i].iov_base + off */
	int reopened = 0, retries = 0;

	if (vec_pidfd < 0) {
		int err = vec_open();

		if (err)
			return err;
	}
	while (i < n) {
		struct iovec part;
		const struct iovec *p;
		size_t cnt;
		long ret;

		if (v[i].iov_len == off) {	/* also skips empty ranges */
			i++;
			off = 0;
			continue;
		}
		if (off) {
			/* stopped inside a range: send its remainder alone */
			part.iov_base = (char *)v[i].iov_base + off;
			part.iov_len = v[i].iov_len - off;
			p = &part;
			cnt = 1;
		} else {
			p = &v[i];
			cnt = n - i < VEC_IOV_MAX ? n - i : VEC_IOV_MAX;
		}
		(*syscalls)++;
		ret = vec_call(p, cnt, advice);
		if (ret < 0) {
			int err = errno;

			if ((err == EINTR || err == EAGAIN) && ++retries < 8)
				continue;
			if (err == EBADF && !reopened) {
				/* someone closed our fd (a daemon closing all
				 * its fds): the number may belong to another
				 * file now, so do not close it; open anew */
				reopened = 1;
				vec_pidfd = -1;
				err = vec_open();
				if (err)
					return err;
				continue;
			}
			return -err;
		}
		if (ret == 0)
			return -EIO;	/* no progress and no error: give up */
		total_bytes += (size_t)ret;
		/* advance past ret bytes */
		while (ret > 0 && i < n) {
			size_t left = v[i].iov_len - off;

			if ((size_t)ret < left) {
				off += (size_t)ret;
				ret = 0;
			} else {
				ret -= (long)left;
				i++;
				off = 0;
			}
		}
	}
	return (ssize_t)total_bytes;
}

static int vec_init(void)
{
	int err;

	if (vec_pidfd < 0) {
		err = vec_open();
		if (err)
			return err;
	}
	/* probe: MADV_DONTNEED on a page of our own must zero it */
	err = backend_probe(vec_purge);
	if (err)
		vec_close();
	return err;
}

static void vec_fini(void)
{
	vec_close();
}

static void vec_atfork_child(void)
{
	/* the inherited pidfd names the parent: drop the child's copy */
	vec_close();
}

const struct reclaim_backend reclaim_backend_vector = {
	.name = "vector",
	.init = vec_init,
	.purge = vec_purge,
	.fini = vec_fini,
	.atfork_child = vec_atfork_child,
};
