/*
 * ctl_live.c - ebb_ctl on a running process (issue 7, points 1 and 5), run
 * by ctl.sh under LD_PRELOAD with EBB_DECAY_MS=3600000 and
 * EBB_CONF=purge=free,tcache_idle_ms=5000. ebb_ctl and ebb_stats are found
 * with dlsym, as a JVM agent or a daemon would reach them.
 *
 *   ctl_live read    the options read back as the environment set them,
 *                    every name of the table is readable, unknown names,
 *                    bad values, short buffers and non-live options are
 *                    refused without changing anything
 *   ctl_live decay   8 MiB of 64 KiB blocks freed stay dirty under a 1 h
 *                    decay; decay_ms=0 set live purges them within 3 s
 *   ctl_live off     with the reclaim thread purging (decay 100 ms),
 *                    reclaim=off set live: 8 MiB freed afterwards stay
 *                    dirty for 1 s, and malloc_trim still purges them
 *   ctl_live stats N sets the stats option to N live, then exits
 *                    (ctl.sh checks whether the exit report was printed)
 *
 * Prints "ctl_live MODE: ok" and exits 0, or prints FAIL lines and exits 1.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ebbmalloc.h"

typedef int (*ctl_fn)(const char *, void *, size_t *, const void *, size_t);
typedef int (*stats_fn)(struct ebb_stats *, size_t);

static int failures;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		printf("FAIL %s:%d: ", __FILE__, __LINE__); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		failures++; \
	} \
} while (0)

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static uint64_t get_u64(ctl_fn ctl, const char *name)
{
	uint64_t v = UINT64_MAX;
	size_t len = sizeof(v);
	int r = ctl(name, &v, &len, NULL, 0);
	CHECK(r == 0 && len == sizeof(v), "ebb_ctl(\"%s\") read: %d, len %zu", name, r, len);
	return v;
}

static void get_str(ctl_fn ctl, const char *name, char *buf, size_t size)
{
	size_t len = size;
	int r = ctl(name, buf, &len, NULL, 0);
	CHECK(r == 0 && len == strlen(buf) + 1, "ebb_ctl(\"%s\") read: %d", name, r);
	if (r)
		buf[0] = '\0';
}

static void mode_read(ctl_fn ctl)
{
	static const char *const names[] = {
		"verbose", "decay_ms", "dirty_cap_pct", "dirty_hold_ms", "purge", "reclaim", "reclaim_backend",
		"huge_cache_bytes", "arenas_per_node", "numa", "numa_fake", "tcache_max_bytes",
		"tcache_total_bytes", "tcache_adaptive", "tcache_idle_ms", "stats", "stats_file",
		"abort_on_bad_conf",
	};
	char s[300];
	/* every option of the table (README) answers */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t len = sizeof(s);
		int r = ctl(names[i], s, &len, NULL, 0);
		CHECK(r == 0, "ebb_ctl(\"%s\") cannot be read: %d", names[i], r);
	}
	/* the environment's values: EBB_DECAY_MS, and EBB_CONF's keys */
	CHECK(get_u64(ctl, "decay_ms") == 3600000, "decay_ms %llu, EBB_DECAY_MS=3600000",
	      (unsigned long long)get_u64(ctl, "decay_ms"));
	CHECK(get_u64(ctl, "tcache_idle_ms") == 5000, "tcache_idle_ms %llu, EBB_CONF says 5000",
	      (unsigned long long)get_u64(ctl, "tcache_idle_ms"));
	get_str(ctl, "purge", s, sizeof(s));
	CHECK(!strcmp(s, "free"), "purge '%s', EBB_CONF says free", s);
	get_str(ctl, "reclaim", s, sizeof(s));
	CHECK(!strcmp(s, "thread"), "reclaim '%s', default thread", s);
	get_str(ctl, "stats_file", s, sizeof(s));
	CHECK(!strcmp(s, "(off)"), "stats_file '%s', default off", s);

	/* live changes, read back; old value returned on the same call */
	uint64_t old = 0, nv = 250;
	size_t len = sizeof(old);
	CHECK(ctl("dirty_cap_pct", &old, &len, &nv, sizeof(nv)) == 0 && old == 25,
	      "dirty_cap_pct: set 250, old %llu (want 25)", (unsigned long long)old);
	CHECK(get_u64(ctl, "dirty_cap_pct") == 250, "dirty_cap_pct not 250 after the set");
	len = sizeof(s);
	CHECK(ctl("reclaim", s, &len, "inline", 7) == 0 && !strcmp(s, "thread"), "reclaim=inline: old '%s'", s);
	get_str(ctl, "reclaim", s, sizeof(s));
	CHECK(!strcmp(s, "inline"), "reclaim '%s' after setting inline", s);
	CHECK(ctl("reclaim", NULL, NULL, "thread", 7) == 0, "reclaim back to thread");

	/* refusals change nothing */
	nv = 2;
	CHECK(ctl("numa", NULL, NULL, &nv, sizeof(nv)) == -EPERM, "numa is not live: want -EPERM");
	CHECK(ctl("reclaim_backend", NULL, NULL, "madvise", 8) == -EPERM, "reclaim_backend: want -EPERM");
	CHECK(ctl("no_such_option", &old, &len, NULL, 0) == -ENOENT, "unknown name: want -ENOENT");
	CHECK(ctl("purge", NULL, NULL, "sometimes", 10) == -EINVAL, "purge=sometimes: want -EINVAL");
	get_str(ctl, "purge", s, sizeof(s));
	CHECK(!strcmp(s, "free"), "purge '%s' after a refused set", s);
	nv = 3600001;
	CHECK(ctl("decay_ms", NULL, NULL, &nv, sizeof(nv)) == -EINVAL, "decay_ms out of range: want -EINVAL");
	nv = 2;
	CHECK(ctl("stats", NULL, NULL, &nv, sizeof(nv)) == -EINVAL, "stats=2: want -EINVAL");
	uint32_t small = 1;
	CHECK(ctl("decay_ms", NULL, NULL, &small, sizeof(small)) == -EINVAL, "4-byte value: want -EINVAL");
	CHECK(get_u64(ctl, "decay_ms") == 3600000, "decay_ms changed by refused sets");
	len = 4;
	CHECK(ctl("decay_ms", &old, &len, NULL, 0) == -EINVAL, "4-byte buffer: want -EINVAL");
	len = 3;
	CHECK(ctl("purge", s, &len, NULL, 0) == -EINVAL, "3-byte buffer for 'free': want -EINVAL");
}

/* 8 MiB of 64 KiB blocks (page runs, under the 16 MiB dirty cap floor),
 * touched and freed */
static void churn_8mib(void)
{
	enum { N = 128, SZ = 64 * 1024 };
	static void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = malloc(SZ);
		if (p[i])
			memset(p[i], 1, SZ);
	}
	for (int i = 0; i < N; i++)
		free(p[i]);
}

static void mode_decay(ctl_fn ctl, stats_fn stats)
{
	struct ebb_stats st;
	churn_8mib();
	sleep_ms(300);
	stats(&st, sizeof(st));
	uint64_t purged0 = st.purged_bytes;
	printf("decay_ms=3600000, 300 ms after freeing 8 MiB: dirty %llu, purged %llu\n",
	       (unsigned long long)st.dirty_bytes, (unsigned long long)st.purged_bytes);
	CHECK(st.dirty_bytes >= 4u << 20, "only %llu bytes dirty after freeing 8 MiB with a 1 h decay",
	      (unsigned long long)st.dirty_bytes);
	uint64_t zero = 0;
	CHECK(ctl("decay_ms", NULL, NULL, &zero, sizeof(zero)) == 0, "decay_ms=0 refused");
	int done = 0;
	for (int i = 0; i < 300 && !done; i++) {	/* 3 s */
		sleep_ms(10);
		stats(&st, sizeof(st));
		done = st.dirty_bytes == 0 && st.purging_bytes == 0;
	}
	printf("decay_ms=0 set live: dirty %llu, purged %llu (+%llu)\n", (unsigned long long)st.dirty_bytes,
	       (unsigned long long)st.purged_bytes, (unsigned long long)(st.purged_bytes - purged0));
	CHECK(done, "decay_ms=0 set live: still %llu bytes dirty after 3 s", (unsigned long long)st.dirty_bytes);
	CHECK(st.purged_bytes >= purged0 + (4u << 20), "decay_ms=0 set live: only %llu more bytes purged",
	      (unsigned long long)(st.purged_bytes - purged0));
}

static void mode_off(ctl_fn ctl, stats_fn stats)
{
	struct ebb_stats st;
	churn_8mib();
	int purged = 0;
	for (int i = 0; i < 300 && !purged; i++) {	/* the thread purges: decay 100 ms */
		sleep_ms(10);
		stats(&st, sizeof(st));
		purged = st.dirty_bytes == 0 && st.purged_bytes >= 4u << 20;
	}
	CHECK(purged, "reclaim=thread, decay 100 ms: %llu bytes still dirty after 3 s",
	      (unsigned long long)st.dirty_bytes);
	CHECK(ctl("reclaim", NULL, NULL, "off", 4) == 0, "reclaim=off refused");
	uint64_t purged0 = st.purged_bytes;
	churn_8mib();
	sleep_ms(1000);
	stats(&st, sizeof(st));
	printf("reclaim=off set live, 1 s after freeing 8 MiB: dirty %llu, purged +%llu\n",
	       (unsigned long long)st.dirty_bytes, (unsigned long long)(st.purged_bytes - purged0));
	CHECK(st.dirty_bytes >= 4u << 20 && st.purged_bytes == purged0,
	      "reclaim=off set live: the thread still purged (dirty %llu, purged +%llu)",
	      (unsigned long long)st.dirty_bytes, (unsigned long long)(st.purged_bytes - purged0));
	int r = malloc_trim(0);
	stats(&st, sizeof(st));
	CHECK(r == 1 && st.dirty_bytes == 0, "reclaim=off: malloc_trim returned %d, dirty %llu", r,
	      (unsigned long long)st.dirty_bytes);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	ctl_fn ctl = (ctl_fn)dlsym(RTLD_DEFAULT, "ebb_ctl");
	stats_fn stats = (stats_fn)dlsym(RTLD_DEFAULT, "ebb_stats_sized");
	if (!ctl || !stats) {
		printf("FAIL: ebb_ctl/ebb_stats not found: is ebbmalloc preloaded?\n");
		return 1;
	}
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "read")) {
		mode_read(ctl);
	} else if (!strcmp(mode, "decay")) {
		mode_decay(ctl, stats);
	} else if (!strcmp(mode, "off")) {
		mode_off(ctl, stats);
	} else if (!strcmp(mode, "stats") && argc > 2) {
		uint64_t v = (uint64_t)atoi(argv[2]);
		CHECK(ctl("stats", NULL, NULL, &v, sizeof(v)) == 0, "stats=%s refused", argv[2]);
		free(malloc(100));
	} else {
		printf("usage: ctl_live read|decay|off|stats 0|1\n");
		return 1;
	}
	if (failures)
		return 1;
	printf("ctl_live %s: ok\n", mode);
	return 0;
}
