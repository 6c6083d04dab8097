/*
 * fault.h - fault injection for the OS layer (issue 8).
 *
 * EBB_FAULT names the calls that should fail, e.g.
 *
 *   EBB_FAULT="mmap=5,mremap=rand:0.1,madvise=3-,seed=42"
 *
 * fails the 5th os_map, 10% of the mremaps (drawn from the seed, so a run
 * is reproducible), and every madvise from the 3rd on. The wrappers in
 * alloc/os_linux.c, reclaim/backend_*.c and numa/bind.c ask
 * fault_should_fail(op) before the real call and return its -errno instead
 * of calling the kernel. The full syntax is in fault.c.
 *
 * Cost when EBB_FAULT is unset: one load of a global and one predictable
 * branch per wrapped call (the wrapped calls are syscalls anyway). The
 * variable is read once, at the first wrapped call, with os_getenv: no
 * allocation, no stdio.
 *
 * Self-contained on purpose: the backends include it without internal.h.
 */
#ifndef EBB_FAULT_H
#define EBB_FAULT_H

#include <stdint.h>

enum fault_op {
	FAULT_MMAP = 0,		/* os_map */
	FAULT_MREMAP,		/* os_remap_inplace, os_remap_move */
	FAULT_MAPFILE,		/* os_map_file (EBB_STATS_FILE) */
	FAULT_MADVISE,		/* reclaim/backend_madvise.c: madvise(2) */
	FAULT_PMADVISE,		/* reclaim/backend_pmadvise.c: process_madvise(2) */
	FAULT_URING,		/* reclaim/backend_uring.c: io_uring_submit_and_wait */
	FAULT_MBIND,		/* numa/bind.c: mbind(2) */
	FAULT_NOPS
};

#define ebb_fault_unlikely(x)	__builtin_expect(!!(x), 0)

/* 0 not read yet, 1 off, 2 armed. Written by fault.c only. */
enum { FAULT_UNREAD = 0, FAULT_OFF = 1, FAULT_ARMED = 2 };
extern int fault_state __attribute__((visibility("hidden")));

__attribute__((visibility("hidden"))) int fault_should_fail_slow(enum fault_op op);

/* 0: make the real call. Else the -errno the caller returns instead. */
static inline __attribute__((always_inline)) int fault_should_fail(enum fault_op op)
{
	if (__builtin_expect(__atomic_load_n(&fault_state, __ATOMIC_RELAXED) == FAULT_OFF, 1))
		return 0;
	return fault_should_fail_slow(op);
}

/*
 * For tests linked with libebbmalloc-ebb.a (hidden symbols, not exported by
 * the shared library):
 *  fault_configure(spec)  replace the configuration (same syntax as
 *                         EBB_FAULT; NULL or "" disarms) and reset every
 *                         call count: "mmap=1-" then means "every os_map
 *                         from now on". 0, or -EINVAL for a bad spec (then
 *                         nothing is armed).
 *  fault_calls(op)        calls of op seen since the last configure
 *                         (counted only while armed).
 *  fault_injected(op)     failures injected into op since then.
 */
__attribute__((visibility("hidden"))) int fault_configure(const char *spec);
__attribute__((visibility("hidden"))) uint64_t fault_calls(enum fault_op op);
__attribute__((visibility("hidden"))) uint64_t fault_injected(enum fault_op op);

#endif /* EBB_FAULT_H */
