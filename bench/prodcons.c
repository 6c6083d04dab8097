/*
 * prodcons.c - producer/consumer: every block is freed by another thread.
 *
 * `pairs` producer threads each feed one consumer through a single-producer
 * single-consumer ring of `ring` slots. The producer mallocs blocks of
 * `min`..`max` bytes (log-uniform), writes a tag into them and pushes them;
 * the consumer checks the tag and frees them. So every free is a remote
 * free, as in a pipeline of request parsers and handlers. Runs for `secs`
 * seconds; ops = blocks transferred (one malloc plus one remote free).
 *
 * `pin` places the threads: 0 (default) leaves it to the scheduler; 1 puts
 * a pair's producer and consumer on one CPU (pair i on the i-th allowed
 * CPU, modulo their number), so they take turns and hand blocks over a
 * ring-full at a time; 2 puts them on two CPUs (i-th and (i+1)-th), so
 * frees are remote while the producer runs. With more threads than CPUs
 * (the default 2 pairs on this 2-CPU machine) an unpinned run is a mix of
 * both regimes in proportions the scheduler picks: mimalloc gave 7.5M to
 * 108M blocks/s over runs of one binary, so the runner also runs both
 * pinned regimes on their own. Each thread notes its CPU (sched_getcpu)
 * once per batch and the main thread looks every millisecond:
 * same_cpu_pct in the RESULT line is how often a pair's two threads were
 * last seen on one CPU (averaged over pairs), i.e. which regime a run
 * was in; prod_same_cpu_pct how often neighbouring pairs' producers were
 * (with 2 pairs on 2 CPUs and each pair split, whether the producers
 * share one CPU and the consumers the other, or each CPU runs a producer
 * and the other pair's consumer).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include "bench.h"

struct pair {
	_Alignas(64) atomic_int cpu[2];	/* producer's, consumer's last CPU */
	_Alignas(64) atomic_ulong head;	/* written by the producer */
	_Alignas(64) atomic_ulong tail;	/* written by the consumer */
	_Alignas(64) void **ring;
	unsigned long mask;
	size_t min, max;
	unsigned idx;
	long produced, consumed, bad;
};

static atomic_int stop;

static void *producer(void *arg)
{
	struct pair *p = arg;
	uint64_t seed = 0x9c0d0000u + p->idx;
	unsigned long head = 0;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned long tail = atomic_load_explicit(&p->tail, memory_order_acquire);
		unsigned long room = p->mask + 1 - (head - tail);

		if (room == 0) {
			sched_yield();
			continue;
		}
		atomic_store_explicit(&p->cpu[0], sched_getcpu(), memory_order_relaxed);
		for (unsigned long k = 0; k < room && k < 256; k++) {
			size_t sz = rng_logsize(&seed, p->min, p->max);
			unsigned char *b = bench_xmalloc(sz);

			b[0] = (unsigned char)head;
			b[sz - 1] = 0x5a;
			p->ring[head & p->mask] = b;
			head++;
		}
		atomic_store_explicit(&p->head, head, memory_order_release);
	}
	p->produced = (long)head;
	return NULL;
}

static void *consumer(void *arg)
{
	struct pair *p = arg;
	unsigned long tail = 0;

	for (;;) {
		unsigned long head = atomic_load_explicit(&p->head, memory_order_acquire);

		if (head == tail) {
			if (atomic_load_explicit(&stop, memory_order_acquire) &&
			    atomic_load_explicit(&p->head, memory_order_acquire) == tail &&
			    p->produced == (long)tail)
				break;
			sched_yield();
			continue;
		}
		atomic_store_explicit(&p->cpu[1], sched_getcpu(), memory_order_relaxed);
		while (tail != head) {
			unsigned char *b = p->ring[tail & p->mask];

			if (b[0] != (unsigned char)tail)
				p->bad++;
			free(b);
			tail++;
		}
		atomic_store_explicit(&p->tail, tail, memory_order_release);
	}
	p->consumed = (long)tail;
	return NULL;
}

/* Restrict a thread to the k-th (modulo) CPU the process may run on. */
static void pin_attr(pthread_attr_t *attr, unsigned k)
{
	cpu_set_t allowed, one;
	unsigned n = 0;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return;
	k %= (unsigned)CPU_COUNT(&allowed);
	CPU_ZERO(&one);
	for (unsigned c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed) && n++ == k) {
			CPU_SET(c, &one);
			pthread_attr_setaffinity_np(attr, sizeof(one), &one);
			return;
		}
}

int main(int argc, char **argv)
{
	static const char *const keys[] = { "pairs", "ring", "min", "max", "secs", "pin", NULL };
	long npairs, secs, ring, pin, total = 0, bad = 0, same = 0, looks = 0;
	long psame = 0, plooks = 0;
	struct pair *pr;
	pthread_t *th;
	double t0, c0, t1, c1;

	bench_check_args(argc, argv, keys);
	npairs = bench_arg(argc, argv, "pairs", 2);
	secs = bench_arg(argc, argv, "secs", 3);
	ring = bench_arg(argc, argv, "ring", 4096);
	pin = bench_arg(argc, argv, "pin", 0);
	if (pin < 0 || pin > 2) {
		fprintf(stderr, "pin must be 0, 1 or 2\n");
		return 2;
	}
	if (ring & (ring - 1)) {
		fprintf(stderr, "ring must be a power of two\n");
		return 2;
	}
	pr = bench_map(sizeof(*pr) * (size_t)npairs);
	th = bench_map(sizeof(*th) * 2 * (size_t)npairs);
	bench_phase("start", 0);
	t0 = bench_now();
	c0 = bench_cpu();
	for (long i = 0; i < npairs; i++) {
		pr[i].ring = bench_map(sizeof(void *) * (size_t)ring);
		pr[i].mask = (unsigned long)ring - 1;
		pr[i].min = (size_t)bench_arg(argc, argv, "min", 16);
		pr[i].max = (size_t)bench_arg(argc, argv, "max", 512);
		pr[i].idx = (unsigned)i;
		atomic_init(&pr[i].cpu[0], -1);	/* not seen yet: not "same" */
		atomic_init(&pr[i].cpu[1], -2);
		pthread_attr_t pa, ca;

		pthread_attr_init(&pa);
		pthread_attr_init(&ca);
		if (pin) {
			pin_attr(&pa, (unsigned)i);
			pin_attr(&ca, (unsigned)(pin == 1 ? i : i + 1));
		}
		if (pthread_create(&th[2 * i], &pa, producer, &pr[i]) != 0 ||
		    pthread_create(&th[2 * i + 1], &ca, consumer, &pr[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			return 2;
		}
		pthread_attr_destroy(&pa);
		pthread_attr_destroy(&ca);
	}
	for (double end = t0 + (double)secs; bench_now() < end;) {
		bench_sleep_ms(1);
		for (long i = 0; i < npairs; i++, looks++)
			same += atomic_load_explicit(&pr[i].cpu[0], memory_order_relaxed) ==
				atomic_load_explicit(&pr[i].cpu[1], memory_order_relaxed);
		for (long i = 0; i + 1 < npairs; i++, plooks++) {
			int a = atomic_load_explicit(&pr[i].cpu[0], memory_order_relaxed);
			int b = atomic_load_explicit(&pr[i + 1].cpu[0], memory_order_relaxed);

			psame += a >= 0 && a == b;
		}
	}
	atomic_store(&stop, 1);
	for (long i = 0; i < 2 * npairs; i++)
		pthread_join(th[i], NULL);
	t1 = bench_now();
	c1 = bench_cpu();
	for (long i = 0; i < npairs; i++) {
		total += pr[i].consumed;
		bad += pr[i].bad;
	}
	bench_result((double)total, t1 - t0, c1 - c0,
		     "pairs=%ld pin=%ld same_cpu_pct=%.0f prod_same_cpu_pct=%.0f bad=%ld", npairs, pin,
		     looks ? 100.0 * (double)same / (double)looks : 0.0,
		     plooks ? 100.0 * (double)psame / (double)plooks : 0.0, bad);
	return bad != 0;
}
