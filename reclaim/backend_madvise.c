/*
 * backend_madvise.c - the reclaim backend that always works: madvise(2) in
 * a loop.
 *
 * One madvise per run of contiguous ranges (neighbours in the batch that
 * touch are merged into one call, so a batch that the queue did not
 * coalesce still costs one syscall per hole, not per range). There is
 * nothing to set up, nothing to inherit across fork, and every Linux
 * kernel has it, so backend.c ends every fallback chain here.
 *
 * Stops at the first failing call and returns its -errno: the ranges
 * already advised are harmless (they held no live byte), and backend.c
 * treats the whole batch as not purged.
 *
 * Threads: called with backend.c's lock held. Never allocates.
 */
#include <errno.h>
#include <sys/mman.h>

#include "fault.h"
#include "reclaim.h"

static int madv_init(void)
{
	return 0;
}

static ssize_t madv_purge(const struct iovec *v, size_t n, int advice,
			  uint64_t *syscalls)
{
	size_t total_bytes = 0;
	size_t i = 0;

	while (i < n) {
		char *addr = v[i].iov_base;
		size_t len = v[i].iov_len;

		/* merge the following ranges that start where this one ends */
		for (i++; i < n; i++) {
			if (v[i].iov_len == 0)
				continue;
			if ((char *)v[i].iov_base != addr + len)
				break;
			len += v[i].iov_len;
		}
		if (len == 0)
			continue;
		int f = fault_should_fail(FAULT_MADVISE);
		if (ebb_fault_unlikely(f))
			return f;
		(*syscalls)++;
		if (madvise(addr, len, advice) != 0)
			return -errno;
		total_bytes += len;
	}
	return (ssize_t)total_bytes;
}

static void madv_fini(void)
{
}

static void madv_atfork_child(void)
{
}

const struct reclaim_backend reclaim_backend_madvise = {
	.name = "madvise",
	.init = madv_init,
	.purge = madv_purge,
	.fini = madv_fini,
	.atfork_child = madv_atfork_child,
};
