/*
 * stats.c - statistics: collected from the arenas (under their locks, one
 * at a time), the huge counters, the thread-cache registry and the reclaim
 * backend; printed as text or JSON without allocating; kept live in a
 * mmapped file (EBB_STATS_FILE) by the reclaim thread for tools/ebbstat.
 *
 * Figures are a consistent-enough snapshot: each arena is read atomically,
 * the whole is not (no stop-the-world).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stddef.h>

#include "internal.h"
#include "os.h"
#include "reclaim.h"

_Static_assert(EBB_MAX_NODES * EBB_MAX_ARENAS_PER_NODE <= EBB_STATS_MAX_ARENAS,
	       "struct ebb_stats has room for every arena");

/* One arena's figures, read under its lock; its pages taken for purging
 * by reason are added to taken[]. */
static void arena_figures_read(arena_t *a, struct ebb_arena_stats *f, uint64_t *taken)
{
	uint64_t now = 0;
	pthread_mutex_lock(&a->lock);
	arena_remote_drain_locked(a, &now);	/* pushed frees count as freed */
	f->xfer_bytes = arena_xfer_bytes(a);
	f->allocated_bytes = a->alloc_bytes - f->xfer_bytes;	/* blocks in the transfer caches are free */
	f->active_bytes = a->active_pages * PAGE_SIZE;
	f->dirty_bytes = a->dirty_pages * PAGE_SIZE;
	f->purging_bytes = a->purging_pages * PAGE_SIZE;
	f->purged_bytes = a->purged_bytes;
	f->chunks = a->nchunks;
	f->mapped_bytes = f->chunks * CHUNK_SIZE;
	f->remote_frees = atomic_load_explicit(&a->remote_frees, memory_order_relaxed);
	f->cache_flushes = atomic_load_explicit(&a->cache_flushes, memory_order_relaxed);
	for (unsigned k = 0; k < PURGE_REASONS; k++)
		taken[k] += a->purge_taken[k];
	pthread_mutex_unlock(&a->lock);
	f->node = a->node;
	f->threads = atomic_load_explicit(&a->nthreads, memory_order_relaxed);
}

/* The per-arena figures are read first; each node's are the sums of its
 * arenas' and the totals the sums of the nodes' (plus huge blocks), so a
 * snapshot always agrees with itself. */
void stats_collect(struct ebb_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->version = EBB_STATS_VERSION;
	if (atomic_load_explicit(&ebb_inited, memory_order_acquire) != 2) {
		memcpy(st->backend, "unprobed", 9);
		return;
	}
	st->nnodes = nnodes;
	st->narenas = narenas;
	uint64_t taken[PURGE_REASONS] = { 0 };
	for (unsigned i = 0; i < narenas; i++) {
		struct ebb_arena_stats *f = &st->arena[i];
		arena_figures_read(arenas[i], f, taken);
		struct ebb_node_stats *ns = &st->node[f->node < EBB_STATS_MAX_NODES ? f->node : 0];
		ns->allocated_bytes += f->allocated_bytes;
		ns->active_bytes += f->active_bytes;
		ns->dirty_bytes += f->dirty_bytes;
		ns->purging_bytes += f->purging_bytes;
		ns->purged_bytes += f->purged_bytes;
		ns->mapped_bytes += f->mapped_bytes;
		ns->chunks += f->chunks;
		ns->remote_frees += f->remote_frees;
		st->node_purge[f->node < EBB_STATS_MAX_NODES ? f->node : 0].cache_flushes += f->cache_flushes;
	}
	reclaim_purge_stats(st);	/* nodes' and arenas' purges, from one instant */
	st->purged_decay_bytes = taken[PURGE_DECAY] * PAGE_SIZE;
	st->purged_cap_bytes = taken[PURGE_CAP] * PAGE_SIZE;
	st->purged_forced_bytes = taken[PURGE_FORCED] * PAGE_SIZE;
	reclaim_cap_stats(&st->dirty_cap_bytes, &st->dirty_hold_bytes);
	for (unsigned n = 0; n < nnodes && n < EBB_STATS_MAX_NODES; n++) {
		struct ebb_node_stats *ns = &st->node[n];
		st->allocated_bytes += ns->allocated_bytes;
		st->active_bytes += ns->active_bytes;
		st->dirty_bytes += ns->dirty_bytes;
		st->purging_bytes += ns->purging_bytes;
		st->purged_bytes += ns->purged_bytes;
		st->mapped_bytes += ns->mapped_bytes;
		st->chunks += ns->chunks;
		st->remote_frees += ns->remote_frees;
	}
	st->huge_bytes = atomic_load_explicit(&huge_live_bytes, memory_order_relaxed);
	st->huge_count = atomic_load_explicit(&huge_live_count, memory_order_relaxed);
	st->allocated_bytes += st->huge_bytes;
	st->active_bytes += st->huge_bytes;
	st->mapped_bytes += atomic_load_explicit(&huge_mapped_bytes, memory_order_relaxed);
	st->tcache_bytes = tcache_stats_bytes(&st->threads);
	st->tcache_flushes = atomic_load_explicit(&tcache_flush_count, memory_order_relaxed);
	backend_stats_merge(st);
	uint64_t bb[EBB_STATS_BACKENDS], bs[EBB_STATS_BACKENDS];
	backend_stats_by(bb, bs);
	for (unsigned k = 0; k < EBB_STATS_BACKENDS; k++) {
		st->by_backend[k].batches = bb[k];
		st->by_backend[k].syscalls = bs[k];
	}
}

/* A snapshot for the entry points an application thread calls
 * (ebb_stats_print, malloc_stats, mallinfo2, malloc_info): struct
 * ebb_stats is ~11 KiB with the per-arena table, too much for a thread's
 * stack, so it is mapped for the call (not taken from the heap whose
 * figures it reads). NULL if that fails. */
struct ebb_stats *stats_snapshot(void)
{
	void *p;
	if (os_map(ALIGN_UP(sizeof(struct ebb_stats), PAGE_SIZE), PAGE_SIZE, &p))
		return NULL;
	stats_collect(p);
	return p;
}

void stats_snapshot_free(struct ebb_stats *st)
{
	os_unmap(st, ALIGN_UP(sizeof(struct ebb_stats), PAGE_SIZE));
}

/* Version 1's struct: everything up to the per-node figures. */
#define STATS_V1_SIZE offsetof(struct ebb_stats, by_backend)
#define STATS_V2_SIZE offsetof(struct ebb_stats, purged_decay_bytes)

EBB_EXPORT int ebb_stats_sized(struct ebb_stats *out, size_t size)
{
	if (!out || size < STATS_V1_SIZE)
		return -1;
	if (size >= sizeof(*out)) {
		stats_collect(out);	/* a newer caller's fields beyond ours: zero */
		memset((char *)out + sizeof(*out), 0, size - sizeof(*out));
		return 0;
	}
	struct ebb_stats *st = stats_snapshot();
	if (!st)
		return -1;
	memcpy(out, st, size);
	/* an older caller: the newest version whose fields all fit */
	out->version = size >= STATS_V2_SIZE ? 2 : 1;
	stats_snapshot_free(st);
	return 0;
}

/* For programs built against version 1 of the header (no size passed). */
EBB_EXPORT int (ebb_stats)(struct ebb_stats *out)
{
	return ebb_stats_sized(out, STATS_V1_SIZE);
}

/* ---- printing ------------------------------------------------------------------- */
struct out {
	int fd;
	char buf[4096];
	size_t n;
};

static void out_flush(struct out *o)
{
	os_write_fd(o->fd, o->buf, o->n);
	o->n = 0;
}

#define OUT(o, ...) do { \
	if ((o)->n + 512 > sizeof((o)->buf)) out_flush(o); \
	(o)->n += (size_t)ebb_snprintf((o)->buf + (o)->n, sizeof((o)->buf) - (o)->n, __VA_ARGS__); \
} while (0)

#define U(x) ((unsigned long long)(x))

static const char *const backend_names[EBB_STATS_BACKENDS] = { "uring", "vector", "madvise" };

/* A latency histogram as a JSON array. */
static void out_lat(struct out *o, const uint64_t *lat)
{
	OUT(o, "[");
	for (int i = 0; i < EBB_STATS_LAT_BUCKETS; i++)
		OUT(o, "%s%llu", i ? "," : "", U(lat[i]));
	OUT(o, "]");
}

EBB_EXPORT void ebb_stats_print(int fd, int format)
{
	struct ebb_stats *st = stats_snapshot();
	struct out o = { .fd = fd };
	if (!st)
		return;
	if (format == 1) {
		OUT(&o, "{\"version\":%u,\"nnodes\":%u,\"narenas\":%u,\"allocated_bytes\":%llu,\"active_bytes\":%llu,"
			"\"dirty_bytes\":%llu,\"purging_bytes\":%llu,\"purged_bytes\":%llu,\"mapped_bytes\":%llu,",
		    st->version, st->nnodes, st->narenas, U(st->allocated_bytes), U(st->active_bytes),
		    U(st->dirty_bytes), U(st->purging_bytes), U(st->purged_bytes), U(st->mapped_bytes));
		OUT(&o, "\"huge_bytes\":%llu,\"huge_count\":%llu,\"tcache_bytes\":%llu,\"chunks\":%llu,"
			"\"threads\":%llu,\"tcache_flushes\":%llu,\"remote_frees\":%llu,",
		    U(st->huge_bytes), U(st->huge_count), U(st->tcache_bytes), U(st->chunks), U(st->threads),
		    U(st->tcache_flushes), U(st->remote_frees));
		OUT(&o, "\"purge_batches\":%llu,\"purge_syscalls\":%llu,\"purge_ranges\":%llu,"
			"\"backend\":\"%s\",\"backend_fallbacks\":%llu,\"purge_batch_lat_us_log2\":",
		    U(st->purge_batches), U(st->purge_syscalls), U(st->purge_ranges), st->backend,
		    U(st->backend_fallbacks));
		out_lat(&o, st->purge_batch_lat);
		OUT(&o, ",\"purged_decay_bytes\":%llu,\"purged_cap_bytes\":%llu,\"purged_forced_bytes\":%llu,"
			"\"dirty_cap_bytes\":%llu,\"dirty_hold_bytes\":%llu",
		    U(st->purged_decay_bytes), U(st->purged_cap_bytes), U(st->purged_forced_bytes),
		    U(st->dirty_cap_bytes), U(st->dirty_hold_bytes));
		OUT(&o, ",\"nodes\":[");
		for (unsigned n = 0; n < st->nnodes && n < EBB_STATS_MAX_NODES; n++) {
			const struct ebb_node_stats *ns = &st->node[n];
			const struct ebb_node_purge_stats *np = &st->node_purge[n];
			OUT(&o, "%s{\"node\":%u,\"allocated_bytes\":%llu,\"active_bytes\":%llu,\"dirty_bytes\":%llu,"
				"\"purging_bytes\":%llu,\"purged_bytes\":%llu,\"mapped_bytes\":%llu,\"chunks\":%llu,"
				"\"remote_frees\":%llu,\"cache_flushes\":%llu,\"purge_batches\":%llu,"
				"\"purge_syscalls\":%llu,\"purge_batch_lat_us_log2\":",
			    n ? "," : "", n, U(ns->allocated_bytes), U(ns->active_bytes), U(ns->dirty_bytes),
			    U(ns->purging_bytes), U(ns->purged_bytes), U(ns->mapped_bytes), U(ns->chunks),
			    U(ns->remote_frees), U(np->cache_flushes), U(np->batches), U(np->syscalls));
			out_lat(&o, np->batch_lat);
			OUT(&o, "}");
		}
		OUT(&o, "],\"arenas\":[");
		for (unsigned i = 0; i < st->narenas; i++) {
			const struct ebb_arena_stats *f = &st->arena[i];
			OUT(&o, "%s{\"arena\":%u,\"node\":%u,\"threads\":%u,\"allocated_bytes\":%llu,"
				"\"active_bytes\":%llu,\"dirty_bytes\":%llu,\"purging_bytes\":%llu,"
				"\"purged_bytes\":%llu,\"mapped_bytes\":%llu,\"chunks\":%llu,\"remote_frees\":%llu,"
				"\"xfer_bytes\":%llu,\"cache_flushes\":%llu,\"purge_batches\":%llu,\"purge_ranges\":%llu,"
				"\"purge_batch_lat_us_log2\":",
			    i ? "," : "", i, f->node, f->threads, U(f->allocated_bytes), U(f->active_bytes),
			    U(f->dirty_bytes), U(f->purging_bytes), U(f->purged_bytes), U(f->mapped_bytes),
			    U(f->chunks), U(f->remote_frees), U(f->xfer_bytes), U(f->cache_flushes),
			    U(f->purge_batches), U(f->purge_ranges));
			out_lat(&o, f->purge_batch_lat);
			OUT(&o, "}");
		}
		OUT(&o, "],\"purge_by_backend\":{");
		for (unsigned k = 0; k < EBB_STATS_BACKENDS; k++)
			OUT(&o, "%s\"%s\":{\"batches\":%llu,\"syscalls\":%llu}", k ? "," : "",
			    backend_names[k], U(st->by_backend[k].batches), U(st->by_backend[k].syscalls));
		OUT(&o, "}}\n");
	} else {
		OUT(&o, "ebbmalloc stats (%u node(s), %u arena(s), backend %s)\n", st->nnodes, st->narenas,
		    st->backend);
		OUT(&o, "  allocated %12llu  active %12llu  mapped %12llu\n", U(st->allocated_bytes),
		    U(st->active_bytes), U(st->mapped_bytes));
		OUT(&o, "  dirty     %12llu  purging %11llu  purged %12llu\n", U(st->dirty_bytes),
		    U(st->purging_bytes), U(st->purged_bytes));
		OUT(&o, "  dirty cap %12llu  (held %llu)  purged by decay %llu, by the cap %llu, forced %llu\n",
		    U(st->dirty_cap_bytes), U(st->dirty_hold_bytes), U(st->purged_decay_bytes),
		    U(st->purged_cap_bytes), U(st->purged_forced_bytes));
		OUT(&o, "  tcache    %12llu  threads %11llu  huge   %12llu (%llu)\n", U(st->tcache_bytes),
		    U(st->threads), U(st->huge_bytes), U(st->huge_count));
		OUT(&o, "  purge batches %llu, syscalls %llu, ranges %llu, fallbacks %llu\n",
		    U(st->purge_batches), U(st->purge_syscalls), U(st->purge_ranges), U(st->backend_fallbacks));
		OUT(&o, "  purges by backend:");
		for (unsigned k = 0; k < EBB_STATS_BACKENDS; k++)
			OUT(&o, "%s %s %llu batches / %llu syscalls", k ? "," : "", backend_names[k],
			    U(st->by_backend[k].batches), U(st->by_backend[k].syscalls));
		OUT(&o, "\n  purge batch latency (batches taking < 2^i us, i = 0..%d):", EBB_STATS_LAT_BUCKETS - 1);
		for (int i = 0; i < EBB_STATS_LAT_BUCKETS; i++)
			OUT(&o, " %llu", U(st->purge_batch_lat[i]));
		OUT(&o, "\n  cache flushes %llu, remote frees %llu, chunks %llu\n", U(st->tcache_flushes),
		    U(st->remote_frees), U(st->chunks));
		for (unsigned n = 0; n < st->nnodes && n < EBB_STATS_MAX_NODES; n++) {
			const struct ebb_node_stats *ns = &st->node[n];
			const struct ebb_node_purge_stats *np = &st->node_purge[n];
			OUT(&o, "  node %u: allocated %llu active %llu dirty %llu purging %llu purged %llu chunks %llu remote_frees %llu cache_flushes %llu\n",
			    n, U(ns->allocated_bytes), U(ns->active_bytes), U(ns->dirty_bytes),
			    U(ns->purging_bytes), U(ns->purged_bytes), U(ns->chunks), U(ns->remote_frees),
			    U(np->cache_flushes));
			OUT(&o, "  node %u: purge batches %llu, syscalls %llu, batch latency (< 2^i us):", n,
			    U(np->batches), U(np->syscalls));
			for (int i = 0; i < EBB_STATS_LAT_BUCKETS; i++)
				OUT(&o, " %llu", U(np->batch_lat[i]));
			OUT(&o, "\n");
		}
		for (unsigned i = 0; i < st->narenas; i++) {
			const struct ebb_arena_stats *f = &st->arena[i];
			OUT(&o, "  arena %u (node %u, %u threads): allocated %llu active %llu dirty %llu purging %llu purged %llu chunks %llu remote_frees %llu xfer %llu cache_flushes %llu purge_batches %llu purge_ranges %llu\n",
			    i, f->node, f->threads, U(f->allocated_bytes), U(f->active_bytes), U(f->dirty_bytes),
			    U(f->purging_bytes), U(f->purged_bytes), U(f->chunks), U(f->remote_frees),
			    U(f->xfer_bytes), U(f->cache_flushes), U(f->purge_batches), U(f->purge_ranges));
		}
	}
	out_flush(&o);
	stats_snapshot_free(st);
}

/* stats=1 at start or set later through ebb_ctl: print at exit, unless
 * stats was set back to 0 by then */
static void stats_print_at_exit(void)
{
	if (opt(OPT_stats))
		ebb_stats_print(2, 0);
}

void stats_at_exit_arm(void)
{
	static _Atomic int armed;
	if (!atomic_exchange_explicit(&armed, 1, memory_order_relaxed))
		atexit(stats_print_at_exit);
}

/* ---- the live stats file ------------------------------------------------------- */
static struct ebb_stats_file *sfile;
static uint64_t sfile_last_ns;
static int sfile_failed;

void stats_file_refresh(void)
{
	if (!opt_stats_file[0] || sfile_failed)
		return;
	uint64_t now = os_now_ns();
	if (sfile && now - sfile_last_ns < 100000000ull)
		return;
	sfile_last_ns = now;
	if (!sfile) {
		char path[300];
		size_t k = 0;
		for (const char *s = opt_stats_file; *s && k + 24 < sizeof(path); s++) {
			if (s[0] == '%' && s[1] == 'p') {
				k += (size_t)ebb_snprintf(path + k, sizeof(path) - k, "%d", (int)getpid());
				s++;
			} else {
				path[k++] = *s;
			}
		}
		path[k] = 0;
		void *p;
		int r = os_map_file(path, sizeof(struct ebb_stats_file), &p);
		if (r == -EBUSY) {
			ebb_message("stats file %s is kept by another process (put %%p in the path); "
				    "live stats off", path);
			sfile_failed = 1;
			return;
		}
		if (r) {
			ebb_message("cannot create stats file %s (errno %d); live stats off", path, -r);
			sfile_failed = 1;
			return;
		}
		/* the file may hold an earlier process's snapshot: mark it
		 * as being written before it says it is ours */
		_Atomic uint64_t *seq = (_Atomic uint64_t *)&((struct ebb_stats_file *)p)->seq;
		atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) | 1,
				      memory_order_relaxed);
		atomic_thread_fence(memory_order_release);
		sfile = p;
		sfile->pid = (uint64_t)getpid();
		atomic_store_explicit((_Atomic uint64_t *)&sfile->magic, EBB_STATS_FILE_MAGIC,
				      memory_order_release);
	}
	struct ebb_stats st;
	stats_collect(&st);
	_Atomic uint64_t *seq = (_Atomic uint64_t *)&sfile->seq;
	/* even, except on the first write over an earlier process's file */
	uint64_t s0 = atomic_load_explicit(seq, memory_order_relaxed) & ~1ull;
	atomic_store_explicit(seq, s0 + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(&sfile->stats, &st, sizeof(st));
	sfile->updated_ns = now;
	atomic_store_explicit(seq, s0 + 2, memory_order_release);
}

void stats_file_atfork_child(void)
{
	/* the parent's file is shared with us: leave it to the parent. A
	 * path without %p would name the parent's file again (and truncate
	 * it): such a child keeps no file of its own. */
	sfile = NULL;
	sfile_failed = !strstr(opt_stats_file, "%p");
}
