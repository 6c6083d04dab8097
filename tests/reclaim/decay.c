/*
 * decay.c - freed memory decays back to the kernel on its own (issue 4).
 *
 * Two threads build a 512 MiB heap (log-uniform sizes 16 B .. 1 MiB, every
 * page written), then free the oldest 90 % of their blocks (a fall of a
 * rising-then-falling live set: the survivors are the most recent 10 %).
 * Nothing calls malloc_trim. Then, polling /proc/self/statm:
 *
 *   mode "expect-low" (default options): within 2 x EBB_DECAY_MS + 500 ms
 *     RSS must be <= 2 x live bytes + C;
 *   mode "expect-high" (run with EBB_RECLAIM=off): after the same wait RSS
 *     must still be > 2 x live bytes + C - this proves the test can fail
 *     and that the drop above is the reclaim thread's work.
 *
 * C = RSS before the heap was built + 8 MiB (chunk headers of ~130 chunks,
 * the radix map, two thread stacks). The 500 ms over the decay cover the
 * reclaim thread's wake-up interval (decay/4) and a loaded 2-CPU machine.
 * The window is a bound on the wait; nothing is timed.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "rtest.h"

#define HEAP	(512 * MiB)
#define NTH	2
#define NSLOTS	(1u << 16)

struct th {
	unsigned idx;
	void **slot;
	size_t *size;
	unsigned n, first_live;
	size_t live;
	int bad;
};

static void *build(void *arg)
{
	struct th *t = arg;
	uint64_t seed = 1000 + t->idx;
	size_t total = 0;
	while (total < HEAP / NTH && t->n < NSLOTS) {
		size_t sz = rt_size(&seed, 16, MiB);
		void *p = malloc(sz);
		if (!p) {
			t->bad = 1;
			return NULL;
		}
		memset(p, 0x3c, sz);
		t->slot[t->n] = p;
		t->size[t->n] = sz;
		t->n++;
		total += sz;
	}
	/* free the oldest 90 % of the bytes */
	size_t freed = 0;
	unsigned i = 0;
	while (i < t->n && freed + t->size[i] <= total / 10 * 9) {
		freed += t->size[i];
		free(t->slot[i]);
		i++;
	}
	t->first_live = i;
	t->live = total - freed;
	return NULL;
}

int main(int argc, char **argv)
{
	int expect_high = argc > 1 && strcmp(argv[1], "expect-high") == 0;
	struct th t[NTH];
	pthread_t th[NTH];
	free(malloc(64));
	size_t r0 = rt_rss_bytes();
	uint64_t decay_ms = rt_opt("decay_ms", 500);
	for (unsigned i = 0; i < NTH; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].idx = i;
		t[i].slot = mmap(NULL, NSLOTS * sizeof(void *), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		t[i].size = mmap(NULL, NSLOTS * sizeof(size_t), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (t[i].slot == MAP_FAILED || t[i].size == MAP_FAILED ||
		    pthread_create(&th[i], NULL, build, &t[i]) != 0) {
			printf("FAIL: set-up\n");
			return 1;
		}
	}
	size_t live = 0;
	for (unsigned i = 0; i < NTH; i++) {
		pthread_join(th[i], NULL);
		if (t[i].bad) {
			printf("FAIL: malloc failed while building the heap\n");
			return 1;
		}
		live += t[i].live;
	}
	size_t r1 = rt_rss_bytes();
	size_t c = r0 + 8 * MiB;
	size_t limit = 2 * live + c;
	double start = rt_now(), window = 2.0 * (double)decay_ms / 1000.0 + 0.5;
	size_t r = r1;
	int reached = 0;
	while (rt_now() - start < window) {
		r = rt_rss_bytes();
		if (r <= limit) {
			reached = 1;
			if (!expect_high)
				break;
		}
		rt_sleep_ms(20);
	}
	struct ebb_stats st;
	rt_stats(&st);
	printf("decay_ms %llu, live %.1f MiB, RSS after the fall %.1f MiB, %s %.1f MiB "
	       "(limit 2 x live + %.1f MiB = %.1f MiB); dirty %.1f MiB, active %.1f MiB, purged %.1f MiB\n",
	       (unsigned long long)decay_ms, rt_mib(live), rt_mib(r1),
	       reached && !expect_high ? "reached" : "at the end of the window", rt_mib(r),
	       rt_mib(c), rt_mib(limit), rt_mib(st.dirty_bytes), rt_mib(st.active_bytes),
	       rt_mib(st.purged_bytes));
	/* informational: where it settles once everything has decayed */
	while (rt_now() - start < window)
		rt_sleep_ms(20);
	rt_stats(&st);
	printf("at %.2f s: RSS %.1f MiB, dirty %.1f MiB, active %.1f MiB, allocated %.1f MiB\n", window,
	       rt_mib(rt_rss_bytes()), rt_mib(st.dirty_bytes), rt_mib(st.active_bytes),
	       rt_mib(st.allocated_bytes));
	if (expect_high) {
		CHECK(!reached && r > limit,
		      "with EBB_RECLAIM=off RSS fell to %.1f MiB (<= %.1f MiB): the test cannot tell",
		      rt_mib(r), rt_mib(limit));
	} else {
		CHECK(reached, "RSS still %.1f MiB %.2f s after freeing 90 %% (live %.1f MiB, limit %.1f MiB)",
		      rt_mib(r), window, rt_mib(live), rt_mib(limit));
	}
	/* the survivors are intact */
	for (unsigned i = 0; i < NTH; i++)
		for (unsigned k = t[i].first_live; k < t[i].n; k++) {
			unsigned char *p = t[i].slot[k];
			if (p[0] != 0x3c || p[t[i].size[k] - 1] != 0x3c) {
				CHECK(0, "a live block %p lost its contents", (void *)p);
				i = NTH;
				break;
			}
		}
	return rt_result(expect_high ? "decay (reclaim off)" : "decay");
}
