/*
 * topology.c - NUMA nodes and the CPU -> node map, read once at init.
 *
 * Read straight from sysfs (/sys/devices/system/node/online and each
 * node's cpulist), the same files libnuma reads, because this runs inside
 * the first malloc call and libnuma's topology functions allocate bitmasks
 * with malloc. Nodes are numbered densely (0..n-1); the kernel's ids are
 * kept for mbind.
 *
 * EBB_NUMA=off: one node. EBB_NUMA_FAKE=N: the online CPUs are split into
 * N contiguous groups that act as nodes, so every per-node path runs on a
 * one-node machine; placement syscalls are skipped for them.
 */
#include <string.h>

#include "internal.h"
#include "os.h"

static unsigned n_nodes = 1;
static int fake;
static uint16_t cpu_node[EBB_MAX_CPUS];
static uint16_t cpu_rank[EBB_MAX_CPUS];	/* the CPU's index among its node's */
static unsigned node_cpus[EBB_MAX_NODES];
static unsigned node_kernel_id[EBB_MAX_NODES];
static char describe[160];

/* Parse "0-3,8,10-11" calling fn for each id. Returns the count. */
static unsigned parse_list(const char *s, void (*fn)(unsigned id, void *arg), void *arg)
{
	unsigned count = 0;
	while (*s && *s != '\n') {
		unsigned a = 0, b;
		if (*s < '0' || *s > '9')
			break;
		while (*s >= '0' && *s <= '9')
			a = a * 10 + (unsigned)(*s++ - '0');
		b = a;
		if (*s == '-') {
			s++;
			b = 0;
			while (*s >= '0' && *s <= '9')
				b = b * 10 + (unsigned)(*s++ - '0');
		}
		for (unsigned i = a; i <= b && i < 65536; i++) {
			if (fn)
				fn(i, arg);
			count++;
		}
		if (*s == ',')
			s++;
	}
	return count;
}

struct cpu_arg {
	unsigned node;
};

static void set_cpu(unsigned cpu, void *arg)
{
	struct cpu_arg *ca = arg;
	if (cpu < EBB_MAX_CPUS) {
		cpu_node[cpu] = (uint16_t)ca->node;
		node_cpus[ca->node]++;
	}
}

static unsigned node_ids[EBB_MAX_NODES];
static unsigned n_ids;

static void add_node(unsigned id, void *arg)
{
	(void)arg;
	if (n_ids < EBB_MAX_NODES)
		node_ids[n_ids++] = id;
}

static unsigned online_cpus[EBB_MAX_CPUS];
static unsigned n_online;

static void add_cpu(unsigned id, void *arg)
{
	(void)arg;
	if (n_online < EBB_MAX_CPUS)
		online_cpus[n_online++] = id;
}

static void topo_map(void)
{
	char buf[4096];
	memset(cpu_node, 0, sizeof(cpu_node));
	memset(node_cpus, 0, sizeof(node_cpus));
	n_nodes = 1;
	fake = 0;
	n_online = 0;
	if (os_read_file("/sys/devices/system/cpu/online", buf, sizeof(buf)) > 0)
		parse_list(buf, add_cpu, NULL);
	if (n_online == 0)
		online_cpus[n_online++] = 0;
	unsigned want_fake = (unsigned)opt(OPT_numa_fake);
	if (!opt(OPT_numa)) {
		node_cpus[0] = n_online;
		ebb_snprintf(describe, sizeof(describe), "NUMA off, %u cpus", n_online);
		return;
	}
	if (want_fake > 1) {
		if (want_fake > n_online)
			want_fake = n_online;
		fake = 1;
		n_nodes = want_fake;
		for (unsigned i = 0; i < n_online; i++) {
			unsigned node = i * want_fake / n_online;
			if (online_cpus[i] < EBB_MAX_CPUS)
				cpu_node[online_cpus[i]] = (uint16_t)node;
			node_cpus[node]++;
		}
		ebb_snprintf(describe, sizeof(describe), "%u fake NUMA nodes over %u cpus", n_nodes, n_online);
		return;
	}
	n_ids = 0;
	if (os_read_file("/sys/devices/system/node/online", buf, sizeof(buf)) > 0)
		parse_list(buf, add_node, NULL);
	if (n_ids <= 1) {
		node_cpus[0] = n_online;
		node_kernel_id[0] = n_ids ? node_ids[0] : 0;
		ebb_snprintf(describe, sizeof(describe), "1 NUMA node, %u cpus", n_online);
		return;
	}
	n_nodes = n_ids;
	for (unsigned i = 0; i < n_ids; i++) {
		char path[96];
		node_kernel_id[i] = node_ids[i];
		ebb_snprintf(path, sizeof(path), "/sys/devices/system/node/node%u/cpulist", node_ids[i]);
		struct cpu_arg ca = { i };
		if (os_read_file(path, buf, sizeof(buf)) > 0)
			parse_list(buf, set_cpu, &ca);
	}
	ebb_snprintf(describe, sizeof(describe), "%u NUMA nodes, %u cpus", n_nodes, n_online);
}

/* Ranks: 0, 1, 2, ... over each node's online CPUs in id order, so that
 * CPUs of a node spread evenly over its arenas whatever their ids. */
void topo_init(void)
{
	unsigned seen[EBB_MAX_NODES] = { 0 };

	topo_map();
	memset(cpu_rank, 0, sizeof(cpu_rank));
	for (unsigned i = 0; i < n_online; i++) {
		unsigned cpu = online_cpus[i];
		if (cpu < EBB_MAX_CPUS && cpu_node[cpu] < EBB_MAX_NODES)
			cpu_rank[cpu] = (uint16_t)seen[cpu_node[cpu]]++;
	}
}

unsigned topo_rank_of_cpu(unsigned cpu)
{
	return cpu < EBB_MAX_CPUS ? cpu_rank[cpu] : 0;
}

unsigned topo_nnodes(void)
{
	return n_nodes;
}

unsigned topo_node_of_cpu(unsigned cpu)
{
	return cpu < EBB_MAX_CPUS ? cpu_node[cpu] : 0;
}

unsigned topo_cpus_of_node(unsigned node)
{
	return node < EBB_MAX_NODES && node_cpus[node] ? node_cpus[node] : 1;
}

int topo_node_is_real(unsigned node)
{
	return !fake && n_nodes > 1 && node < n_nodes;
}

unsigned topo_kernel_node(unsigned node)
{
	return node < EBB_MAX_NODES ? node_kernel_id[node] : 0;
}

const char *topo_describe(void)
{
	return describe;
}
