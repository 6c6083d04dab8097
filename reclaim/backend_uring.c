/*
 * backend_uring.c - the "uring" reclaim backend: one IORING_OP_MADVISE SQE
 * per range, one io_uring_submit_and_wait() per batch (liburing >= 2.3).
 *
 * A batch larger than the ring goes in ring-sized parts, one submit each.
 * Contiguous ranges are merged into one SQE and a range longer than
 * URING_SQE_MAX_BYTES is split (the SQE length field is 32 bits wide).
 *
 * Safety (DESIGN.md invariant 1): purge() returns only after every SQE the
 * kernel consumed has completed, success or error, because the caller
 * hands the ranges out again as soon as we return. An SQE we queued but
 * the kernel did not consume would be submitted by a later call, long
 * after its range was reused; so whenever a submit leaves SQEs behind,
 * the ring is thrown away (its unsubmitted SQEs die with it) and the next
 * purge builds a new one.
 *
 * init() probes for real: no io_uring_get_probe() (it calls malloc), but
 * one MADV_DONTNEED on a scratch page we map and touch, which must read
 * back as zero. io_uring disabled by sysctl (kernel.io_uring_disabled) or
 * seccomp fails io_uring_setup with EPERM/ENOSYS; a kernel without
 * IORING_OP_MADVISE completes the probe with EINVAL/EOPNOTSUPP. Either way
 * init returns the error and backend.c falls back.
 *
 * fork: the ring's memory is MAP_SHARED with the kernel and the parent; a
 * child must never submit to it. atfork_child calls io_uring_queue_exit(),
 * which in liburing 2.3 only munmaps the three ring mappings (the child's
 * copies) and closes the child's copy of the fd: it never enters the ring,
 * so the parent's ring is untouched (we never register the ring fd, the
 * one case where queue_exit would call io_uring_register). The child gets
 * its own ring at its next init.
 *
 * Threads: called with backend.c's lock held. Never allocates: liburing's
 * setup, submit and wait paths use mmap and raw syscalls only.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "fault.h"
#include "reclaim.h"

/*
 * Ring size 1024 = RECLAIM_BATCH_MAX: a full batch is one submit. A ring of
 * 256 cost the same CPU per GiB in bench/purge_backends.c (178 vs 181 ms
 * for 4..64 KiB ranges) but four submits per full batch; the ring of 1024
 * maps ~100 KiB (SQEs 64 KiB, CQ ring 32 KiB) against ~25 KiB.
 */
#define URING_SQE_MAX_BYTES	(1UL << 30)	/* < 4 GiB: 32-bit length */
#define URING_REAP_BATCH	64

static struct io_uring uring_ring;
static int uring_ready;			/* uring_ring is set up */
static unsigned uring_entries = RECLAIM_BATCH_MAX;
static unsigned uring_max_workers;	/* 0: the kernel's default */

/* Bench and test knobs (called before init; not part of reclaim.h). */
void backend_uring_configure(unsigned entries, unsigned max_workers);
void backend_uring_configure(unsigned entries, unsigned max_workers)
{
	if (entries)
		uring_entries = entries;
	uring_max_workers = max_workers;
}

static void uring_destroy(void)
{
	if (uring_ready)
		io_uring_queue_exit(&uring_ring);
	uring_ready = 0;
	memset(&uring_ring, 0, sizeof(uring_ring));
}

static int uring_create(void)
{
	struct io_uring_params p;
	int ret;

	memset(&p, 0, sizeof(p));
	/* SUBMIT_ALL (5.18): a bad SQE does not stop the rest of the batch,
	 * so one submit consumes every SQE; COOP_TASKRUN (5.19): no IPI to
	 * post completions. Older kernels refuse the flags: retry bare. */
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
	ret = io_uring_queue_init_params(uring_entries, &uring_ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(uring_entries, &uring_ring, &p);
	}
	if (ret < 0) {
		memset(&uring_ring, 0, sizeof(uring_ring));
		return ret;
	}
	uring_ready = 1;
	if (uring_max_workers) {
		unsigned vals[2] = { uring_max_workers, uring_max_workers };

		(void)io_uring_register_iowq_max_workers(&uring_ring, vals);
	}
	return 0;
}

/*
 * Reap exactly `expected` CQEs. *bytes gets the lengths of the successful
 * ones (user_data). Returns the first CQE error (0 if none); *ring_err
 * gets the error of io_uring_wait_cqe itself when the ring broke (EBADF:
 * the application closed our fd). Even then we do not return before every
 * consumed SQE has completed: the CQ ring stays mapped (the mapping holds
 * the ring alive) so we poll it, sleeping 20 us between looks, for up to
 * ~30 s; past that nothing more can be done.
 */
static int uring_reap(unsigned expected, size_t *bytes, uint64_t *syscalls,
		      int *ring_err)
{
	struct io_uring_cqe *cqes[URING_REAP_BATCH];
	unsigned got = 0, polls = 0;
	int first_err = 0;

	while (got < expected) {
		unsigned want = expected - got, k, j;

		if (want > URING_REAP_BATCH)
			want = URING_REAP_BATCH;
		k = io_uring_peek_batch_cqe(&uring_ring, cqes, want);
		if (k == 0 && !*ring_err) {
			struct io_uring_cqe *cqe;
			int ret;

			(*syscalls)++;
			ret = io_uring_wait_cqe(&uring_ring, &cqe);
			if (ret < 0 && ret != -EINTR && ret != -EAGAIN)
				*ring_err = ret;
			continue;
		}
		if (k == 0) {
			struct timespec ts = { 0, 20000 };

			if (++polls > 1500000)
				return first_err ? first_err : *ring_err;
			nanosleep(&ts, NULL);
			continue;
		}
		for (j = 0; j < k; j++) {
			if (cqes[j]->res < 0) {
				if (!first_err)
					first_err = cqes[j]->res;
			} else {
				*bytes += (size_t)cqes[j]->user_data;
			}
		}
		io_uring_cq_advance(&uring_ring, k);
		got += k;
	}
	return first_err;
}

/* The fd number may not be ours any more: drop the ring without closing
 * what may now be someone else's file. */
static void uring_destroy_after(int err)
{
	if (err == -EBADF || err == -EOPNOTSUPP)
		uring_ring.ring_fd = -1;	/* queue_exit's close fails */
	uring_destroy();
}

/* Submit the `queued` SQEs waiting in the ring and reap them all. */
static int uring_run(unsigned queued, size_t *bytes, uint64_t *syscalls)
{
	unsigned head0 = io_uring_smp_load_acquire(uring_ring.sq.khead);
	unsigned consumed;
	int ret, tries = 0, err, ring_err = 0;

	do {
		int f = fault_should_fail(FAULT_URING);
		(*syscalls)++;
		/* an injected failure submits nothing, as a refused
		 * io_uring_enter would */
		ret = ebb_fault_unlikely(f) ? f : io_uring_submit_and_wait(&uring_ring, queued);
		consumed = io_uring_smp_load_acquire(uring_ring.sq.khead) - head0;
	} while ((ret == -EINTR || ret == -EAGAIN || ret == -EBUSY) &&
		 consumed < queued && ++tries < 8);

	err = uring_reap(consumed, bytes, syscalls, &ring_err);
	if (ring_err) {
		uring_destroy_after(ring_err);
		if (!err)
			err = ring_err;
	} else if (consumed < queued) {
		/* leftovers must never be submitted later: drop the ring */
		uring_destroy_after(ret);
		if (!err)
			err = ret < 0 ? ret : -EIO;
	}
	return err;
}

static ssize_t uring_purge(const struct iovec *v, size_t n, int advice,
			   uint64_t *syscalls)
{
	size_t total_bytes = 0;
	size_t i = 0, off = 0;	/* next byte: v[i].iov_base + off */
	int rebuilt = 0;

	while (i < n) {
		size_t part_i = i, part_off = off, part_bytes = 0;
		unsigned queued = 0;
		int err;

		if (!uring_ready) {
			err = uring_create();
			if (err)
				return err;
		}
		while (i < n && queued < uring_entries) {
			struct io_uring_sqe *sqe;
			char *addr;
			size_t len = 0;

			/* one piece: contiguous ranges merged, at most
			 * URING_SQE_MAX_BYTES */
			while (i < n && v[i].iov_len == off) {
				i++;
				off = 0;
			}
			if (i == n)
				break;
			addr = (char *)v[i].iov_base + off;
			while (i < n && len < URING_SQE_MAX_BYTES) {
				size_t left = v[i].iov_len - off, take;

				if (left && (char *)v[i].iov_base + off != addr + len)
					break;
				take = URING_SQE_MAX_BYTES - len;
				if (take > left)
					take = left;
				len += take;
				off += take;
				if (off == v[i].iov_len) {
					i++;
					off = 0;
				}
			}
			sqe = io_uring_get_sqe(&uring_ring);
			if (!sqe)	/* cannot happen: the ring is drained */
				return -EBUSY;
			io_uring_prep_madvise(sqe, addr, (off_t)len, advice);
			io_uring_sqe_set_data64(sqe, len);
			queued++;
		}
		if (queued == 0)
			break;
		err = uring_run(queued, &part_bytes, syscalls);
		if (err == -EBADF && !rebuilt) {
			/* the application closed our ring fd (daemons close
			 * every fd): uring_run dropped the ring; build a new
			 * one and send this part again */
			rebuilt = 1;
			i = part_i;
			off = part_off;
			continue;
		}
		if (err)
			return err;
		total_bytes += part_bytes;
	}
	return (ssize_t)total_bytes;
}

static int uring_init(void)
{
	if (!uring_ready) {
		int err = uring_create();

		if (err)
			return err;
	}
	/* probe: one IORING_OP_MADVISE on a page of our own must zero it
	 * (-EINVAL in the CQE: the kernel lacks the op) */
	int err = backend_probe(uring_purge);
	if (err)
		uring_destroy();
	return err;
}

static void uring_fini(void)
{
	uring_destroy();
}

static void uring_atfork_child(void)
{
	/* munmap the child's copies of the ring and close the child's fd;
	 * the parent's ring is not entered (see the banner) */
	uring_destroy();
}

const struct reclaim_backend reclaim_backend_uring = {
	.name = "uring",
	.init = uring_init,
	.purge = uring_purge,
	.fini = uring_fini,
	.atfork_child = uring_atfork_child,
};
