/*
 * ebbstat.c - live statistics of a process running ebbmalloc.
 *
 *   ebbstat [-n COUNT] PID [interval_ms]   refreshed like top
 *   ebbstat --once PID                     one text snapshot, no screen control
 *   ebbstat --json PID                     one JSON snapshot
 *
 * Reads the process's stats file (see statsfile.c): the library's reclaim
 * thread refreshes it at most every 100 ms, so intervals below that show
 * the same figures twice. Rates (purged MiB/s, batches/s) are computed
 * between two of our refreshes. The process's RSS (VmRSS) is shown beside
 * the allocator's own figures, since "RSS follows live memory" is the
 * promise being checked. Exits when the process does.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ebbstat [-n COUNT] PID [interval_ms]\n"
		"       ebbstat --once PID\n"
		"       ebbstat --json PID\n"
		"\n"
		"Live statistics of a process running ebbmalloc, read from the stats file\n"
		"the process keeps when started with EBB_STATS_FILE=/tmp/ebb.%%p\n"
		"(or: ebbrun -o stats_file=/tmp/ebb.%%p -- command...).\n"
		"\n"
		"  interval_ms   refresh period (default 1000); the screen is redrawn like top\n"
		"  -n COUNT      stop after COUNT refreshes\n"
		"  --once        print one snapshot as text and exit\n"
		"  --json        print one snapshot as JSON and exit\n"
		"  -h, --help    this text\n");
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static const char *const backend_names[EBB_STATS_BACKENDS] = { "uring", "vector", "madvise" };

/* A latency histogram as a JSON array. */
static void print_lat(const uint64_t *lat)
{
	printf("[");
	for (unsigned k = 0; k < EBB_STATS_LAT_BUCKETS; k++)
		printf("%s%llu", k ? ", " : "", (unsigned long long)lat[k]);
	printf("]");
}

static void print_json(const struct ebb_stats_file *f, long long rss_kib)
{
	const struct ebb_stats *s = &f->stats;
	uint64_t now = now_ns();
	unsigned i;

	printf("{\n");
	printf("  \"pid\": %llu,\n", (unsigned long long)f->pid);
	printf("  \"seq\": %llu,\n", (unsigned long long)f->seq);
	printf("  \"age_ms\": %llu,\n", (unsigned long long)
	       (now > f->updated_ns ? (now - f->updated_ns) / 1000000 : 0));
	printf("  \"rss_bytes\": %lld,\n", rss_kib < 0 ? -1LL : rss_kib * 1024);
	printf("  \"version\": %u,\n", s->version);
	printf("  \"nnodes\": %u,\n", s->nnodes);
#define F(name) printf("  \"" #name "\": %llu,\n", (unsigned long long)s->name)
	F(allocated_bytes);
	F(active_bytes);
	F(dirty_bytes);
	F(purging_bytes);
	F(purged_bytes);
	F(mapped_bytes);
	F(huge_bytes);
	F(huge_count);
	F(tcache_bytes);
	F(chunks);
	F(threads);
	F(tcache_flushes);
	F(remote_frees);
	F(purge_batches);
	F(purge_syscalls);
	F(purge_ranges);
	F(backend_fallbacks);
	F(purged_decay_bytes);
	F(purged_cap_bytes);
	F(purged_forced_bytes);
	F(dirty_cap_bytes);
	F(dirty_hold_bytes);
#undef F
	printf("  \"backend\": \"");
	for (i = 0; i < sizeof(s->backend) && s->backend[i]; i++) {
		unsigned char c = (unsigned char)s->backend[i];

		putchar(c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? c : '?');
	}
	printf("\",\n");
	printf("  \"purge_batch_lat_us_lt_pow2\": ");
	print_lat(s->purge_batch_lat);
	printf(",\n");
	printf("  \"nodes\": [");
	for (i = 0; i < s->nnodes; i++) {
		const struct ebb_node_stats *n = &s->node[i];

		printf("%s\n    {\"node\": %u, \"allocated_bytes\": %llu, \"active_bytes\": %llu, "
		       "\"dirty_bytes\": %llu, \"purging_bytes\": %llu, \"purged_bytes\": %llu, "
		       "\"mapped_bytes\": %llu, \"chunks\": %llu, \"remote_frees\": %llu, "
		       "\"cache_flushes\": %llu, \"purge_batches\": %llu, \"purge_syscalls\": %llu, "
		       "\"purge_batch_lat_us_lt_pow2\": ",
		       i ? "," : "", i,
		       (unsigned long long)n->allocated_bytes, (unsigned long long)n->active_bytes,
		       (unsigned long long)n->dirty_bytes, (unsigned long long)n->purging_bytes,
		       (unsigned long long)n->purged_bytes, (unsigned long long)n->mapped_bytes,
		       (unsigned long long)n->chunks, (unsigned long long)n->remote_frees,
		       (unsigned long long)s->node_purge[i].cache_flushes,
		       (unsigned long long)s->node_purge[i].batches,
		       (unsigned long long)s->node_purge[i].syscalls);
		print_lat(s->node_purge[i].batch_lat);
		printf("}");
	}
	printf("%s],\n", s->nnodes ? "\n  " : "");
	printf("  \"arenas\": [");
	for (i = 0; i < s->narenas; i++) {
		const struct ebb_arena_stats *a = &s->arena[i];

		printf("%s\n    {\"arena\": %u, \"node\": %u, \"threads\": %u, \"allocated_bytes\": %llu, "
		       "\"active_bytes\": %llu, \"dirty_bytes\": %llu, \"purging_bytes\": %llu, "
		       "\"purged_bytes\": %llu, \"mapped_bytes\": %llu, \"chunks\": %llu, "
		       "\"remote_frees\": %llu, \"xfer_bytes\": %llu, \"cache_flushes\": %llu, "
		       "\"purge_batches\": %llu, \"purge_ranges\": %llu, \"purge_batch_lat_us_lt_pow2\": ",
		       i ? "," : "", i, a->node, a->threads,
		       (unsigned long long)a->allocated_bytes, (unsigned long long)a->active_bytes,
		       (unsigned long long)a->dirty_bytes, (unsigned long long)a->purging_bytes,
		       (unsigned long long)a->purged_bytes, (unsigned long long)a->mapped_bytes,
		       (unsigned long long)a->chunks, (unsigned long long)a->remote_frees,
		       (unsigned long long)a->xfer_bytes, (unsigned long long)a->cache_flushes,
		       (unsigned long long)a->purge_batches, (unsigned long long)a->purge_ranges);
		print_lat(a->purge_batch_lat);
		printf("}");
	}
	printf("%s],\n", s->narenas ? "\n  " : "");
	printf("  \"purge_by_backend\": {");
	for (i = 0; i < EBB_STATS_BACKENDS; i++)
		printf("%s\"%s\": {\"batches\": %llu, \"syscalls\": %llu}", i ? ", " : "",
		       backend_names[i], (unsigned long long)s->by_backend[i].batches,
		       (unsigned long long)s->by_backend[i].syscalls);
	printf("}\n}\n");
}

#define B(i, v) fmt_bytes((v), b[i], sizeof(b[0]))

static void print_text(pid_t pid, const char *path, const char *cmd,
		       const struct ebb_stats_file *f, const struct ebb_stats_file *prev,
		       double dt_s, long long rss_kib)
{
	const struct ebb_stats *s = &f->stats;
	char b[8][24];
	unsigned i, top = 0, low = EBB_STATS_LAT_BUCKETS;
	uint64_t now = now_ns(), maxlat = 0;

	printf("ebbstat  pid %d  %.60s\n", (int)pid, cmd);
	printf("file %s   updated %llu ms ago   backend %s   threads %llu\n\n", path,
	       (unsigned long long)(now > f->updated_ns ? (now - f->updated_ns) / 1000000 : 0),
	       s->backend[0] ? s->backend : "?", (unsigned long long)s->threads);
	printf("RSS %-11s  allocated %-11s  active %-11s  dirty %-11s\n",
	       rss_kib >= 0 ? B(0, (uint64_t)rss_kib * 1024) : "?", B(1, s->allocated_bytes),
	       B(2, s->active_bytes), B(3, s->dirty_bytes));
	printf("purging %-11s  purged %-11s  mapped %-11s\n", B(0, s->purging_bytes),
	       B(1, s->purged_bytes), B(2, s->mapped_bytes));
	printf("tcache %-11s  huge %-11s in %llu allocations   chunks %llu\n\n",
	       B(0, s->tcache_bytes), B(1, s->huge_bytes), (unsigned long long)s->huge_count,
	       (unsigned long long)s->chunks);

	printf("%-6s %11s %11s %11s %11s %11s %11s %7s %10s\n", "node", "allocated",
	       "active", "dirty", "purging", "purged", "mapped", "chunks", "remote-fr");
	for (i = 0; i < s->nnodes; i++) {
		const struct ebb_node_stats *n = &s->node[i];

		printf("%-6u %11s %11s %11s %11s %11s %11s %7llu %10llu\n", i,
		       B(0, n->allocated_bytes), B(1, n->active_bytes), B(2, n->dirty_bytes),
		       B(3, n->purging_bytes), B(4, n->purged_bytes), B(5, n->mapped_bytes),
		       (unsigned long long)n->chunks, (unsigned long long)n->remote_frees);
	}
	printf("\n%-6s %4s %11s %11s %11s %11s %11s %7s %10s %9s %8s\n", "arena", "thr", "allocated",
	       "active", "dirty", "purging", "purged", "chunks", "remote-fr", "flushes", "batches");
	for (i = 0; i < s->narenas; i++) {
		const struct ebb_arena_stats *a = &s->arena[i];
		char id[16];

		snprintf(id, sizeof(id), "%u/n%u", i, a->node);
		printf("%-6s %4u %11s %11s %11s %11s %11s %7llu %10llu %9llu %8llu\n", id, a->threads,
		       B(0, a->allocated_bytes), B(1, a->active_bytes), B(2, a->dirty_bytes),
		       B(3, a->purging_bytes), B(4, a->purged_bytes),
		       (unsigned long long)a->chunks, (unsigned long long)a->remote_frees,
		       (unsigned long long)a->cache_flushes, (unsigned long long)a->purge_batches);
	}
	printf("\npurge  batches %llu   syscalls %llu   ranges %llu   backend fallbacks %llu\n",
	       (unsigned long long)s->purge_batches, (unsigned long long)s->purge_syscalls,
	       (unsigned long long)s->purge_ranges, (unsigned long long)s->backend_fallbacks);
	printf("       by backend:");
	for (i = 0; i < EBB_STATS_BACKENDS; i++)
		printf("%s %s %llu/%llu", i ? "," : "", backend_names[i],
		       (unsigned long long)s->by_backend[i].batches,
		       (unsigned long long)s->by_backend[i].syscalls);
	printf(" (batches/syscalls)\n");
	printf("       why: decay %s   over the cap %s   forced (trim, pressure) %s\n",
	       B(0, s->purged_decay_bytes), B(1, s->purged_cap_bytes), B(2, s->purged_forced_bytes));
	printf("       dirty cap %s, of which %s from the hold (a recent fall of active memory)\n",
	       B(0, s->dirty_cap_bytes), B(1, s->dirty_hold_bytes));
	printf("       by node:");
	for (i = 0; i < s->nnodes; i++)
		printf("%s %u %llu/%llu", i ? "," : "", i, (unsigned long long)s->node_purge[i].batches,
		       (unsigned long long)s->node_purge[i].syscalls);
	printf(" (batches/syscalls; parked threads' stacks only in the totals)\n");
	if (prev && dt_s > 0) {
		printf("       rate: %.1f batches/s  %.1f syscalls/s  %s/s purged\n",
		       (double)(s->purge_batches - prev->stats.purge_batches) / dt_s,
		       (double)(s->purge_syscalls - prev->stats.purge_syscalls) / dt_s,
		       B(0, (uint64_t)((double)(s->purged_bytes >= prev->stats.purged_bytes ?
					    s->purged_bytes - prev->stats.purged_bytes : 0) / dt_s)));
	}
	printf("cache  flushes %llu   remote frees %llu\n\n",
	       (unsigned long long)s->tcache_flushes, (unsigned long long)s->remote_frees);

	for (i = 0; i < EBB_STATS_LAT_BUCKETS; i++) {
		if (s->purge_batch_lat[i] > maxlat)
			maxlat = s->purge_batch_lat[i];
		if (s->purge_batch_lat[i]) {
			top = i + 1;
			if (low == EBB_STATS_LAT_BUCKETS)
				low = i;
		}
	}
	printf("purge batch latency (batches per bucket)\n");
	if (!maxlat)
		printf("  (no purge batches yet)\n");
	for (i = low; i < top; i++) {
		char label[32];
		int bar = (int)((double)s->purge_batch_lat[i] * 40.0 / (double)maxlat + 0.5);

		if (i == 0)
			snprintf(label, sizeof(label), "< 1 us");
		else
			snprintf(label, sizeof(label), "< %llu us", 1ULL << i);
		printf("  %10s %10llu %.*s\n", label, (unsigned long long)s->purge_batch_lat[i],
		       bar, "########################################");
	}
}

int main(int argc, char **argv)
{
	struct ebb_stats_file cur, prev;
	char path[4096], cmd[256];
	long interval_ms = 1000, count = -1, n;
	int json = 0, once = 0, have_prev = 0, ret, i, npos = 0;
	const char *pos[2] = { NULL, NULL };
	uint64_t prev_t = 0;
	pid_t pid;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--once")) {
			once = 1;
		} else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			count = atol(argv[++i]);
			if (count <= 0) {
				fprintf(stderr, "ebbstat: -n wants a positive count\n");
				return 2;
			}
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "ebbstat: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (npos < 2) {
			pos[npos++] = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!npos) {
		usage(stderr);
		return 2;
	}
	pid = fmt_parse_pid(pos[0]);
	if (pid < 0) {
		fprintf(stderr, "ebbstat: '%s' is not a pid\n", pos[0]);
		return 2;
	}
	if (pos[1]) {
		char *end;

		interval_ms = strtol(pos[1], &end, 10);
		if (*end || interval_ms <= 0) {
			fprintf(stderr, "ebbstat: interval '%s' is not a positive number of ms\n", pos[1]);
			return 2;
		}
	}

	ret = statsfile_path(pid, path, sizeof(path));
	if (ret) {
		statsfile_explain("ebbstat", pid, NULL, ret);
		return 1;
	}
	proc_cmdline(pid, cmd, sizeof(cmd));
	for (char *c = cmd; *c; c++)	/* an argument may hold a newline */
		if ((unsigned char)*c < 0x20)
			*c = ' ';

	if (json || once) {
		ret = statsfile_read(path, &cur);
		if (ret) {
			statsfile_explain("ebbstat", pid, path, ret);
			return 1;
		}
		if (cur.pid != (uint64_t)pid)
			fprintf(stderr, "ebbstat: warning: %s was written by pid %llu, not %d "
				"(a stale file?)\n", path, (unsigned long long)cur.pid, (int)pid);
		if (json)
			print_json(&cur, proc_status_kib(pid, "VmRSS"));
		else
			print_text(pid, path, cmd, &cur, NULL, 0, proc_status_kib(pid, "VmRSS"));
		return 0;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (n = 0; !stop && (count < 0 || n < count); n++) {
		struct timespec ts = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
		uint64_t t;

		if (n > 0)
			nanosleep(&ts, NULL);
		if (stop)
			break;
		if (!proc_alive(pid)) {
			printf("ebbstat: process %d has exited\n", (int)pid);
			return 0;
		}
		ret = statsfile_read(path, &cur);
		t = now_ns();
		if (ret) {
			/* the file appears when the reclaim thread starts: wait for it */
			if ((ret == -ENOENT || ret == -EPROTO) && n < 10 && count < 0)
				continue;
			statsfile_explain("ebbstat", pid, path, ret);
			return 1;
		}
		if (isatty(STDOUT_FILENO))
			printf("\033[H\033[2J");
		print_text(pid, path, cmd, &cur, have_prev ? &prev : NULL,
			   have_prev ? (double)(t - prev_t) / 1e9 : 0,
			   proc_status_kib(pid, "VmRSS"));
		if (isatty(STDOUT_FILENO))
			printf("\n(every %ld ms; Ctrl-C to quit)\n", interval_ms);
		else
			printf("\n");
		fflush(stdout);
		prev = cur;
		prev_t = t;
		have_prev = 1;
	}
	return 0;
}
