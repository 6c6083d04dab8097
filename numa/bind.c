/*
 * bind.c - binding a chunk's pages to its node before first touch.
 *
 * mbind(MPOL_PREFERRED) on the whole chunk right after it is mapped: pages
 * fault in on the preferred node, and fall back to another node rather
 * than fail when that node is full (MPOL_BIND would turn a full node into
 * SIGBUS/OOM inside malloc). Fake nodes (EBB_NUMA_FAKE) are not bound.
 * Failure is advisory: warned once, counted, and the chunk is used anyway.
 * The syscall is made directly, so the library does not link libnuma.
 */
#include <errno.h>
#include <numaif.h>		/* MPOL_* from libnuma-dev; the call is a raw syscall */
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "fault.h"

static _Atomic int warned;
_Atomic uint64_t bind_failures;

int bind_range(void *addr, size_t len, unsigned node)
{
	/* before the fake-node test: an injected failure (EBB_FAULT=mbind=..)
	 * exercises the advisory path with EBB_NUMA_FAKE on one node */
	int f = fault_should_fail(FAULT_MBIND);
	if (ebb_fault_unlikely(f)) {
		atomic_fetch_add_explicit(&bind_failures, 1, memory_order_relaxed);
		if (!atomic_exchange_explicit(&warned, 1, memory_order_relaxed))
			ebb_message("mbind to node %u failed (errno %d); chunks stay unbound", node, -f);
		return f;
	}
	if (!topo_node_is_real(node))
		return 0;
	unsigned kid = topo_kernel_node(node);
	unsigned long mask[EBB_MAX_NODES / (8 * sizeof(unsigned long)) + 2] = { 0 };
	if (kid >= 8 * sizeof(mask))
		return -EINVAL;
	mask[kid / (8 * sizeof(unsigned long))] = 1ul << (kid % (8 * sizeof(unsigned long)));
	int saved = errno;
	/* not libnuma's mbind(): linking libnuma puts its constructor, which
	 * mallocs and exit(1)s when that fails, into every preloaded
	 * process (tests/hardening/startup_oom.sh) */
	long r = syscall(SYS_mbind, addr, len, MPOL_PREFERRED, mask, 8 * sizeof(mask), 0);
	int e = r ? errno : 0;
	errno = saved;
	if (e) {
		atomic_fetch_add_explicit(&bind_failures, 1, memory_order_relaxed);
		if (!atomic_exchange_explicit(&warned, 1, memory_order_relaxed))
			ebb_message("mbind to node %u failed (errno %d); chunks stay unbound", kid, e);
		return -e;
	}
	return 0;
}
