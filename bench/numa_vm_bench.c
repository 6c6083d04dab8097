/*
 * numa_vm_bench.c - allocation throughput with NUMA on against NUMA off,
 * inside the multi-node VM of tests/numa_vm (issue 5, point 5).
 *
 * A static program (linked with build/libebbmalloc.a) that tests/numa_vm/
 * run.sh boots as a driver: `make bench-numa-vm`. As a driver (argv: the
 * node count) it runs itself `rounds` times in each mode, alternating,
 * with EBB_NUMA=1 and EBB_NUMA=0 in the child's environment (the option is
 * read at start), and prints one `numavm: bench` line per run and a
 * summary with the medians and their ratio.
 *
 * The workload (argv: NODES child SECS): one thread per online CPU, each
 * pinned to its CPU, so the threads span every node. Each keeps a window
 * of 512 blocks of 16..1024 B (log-uniform), replacing a random one per
 * step and writing its first bytes; every 16th step it swaps a block with a
 * shared exchange array instead, so some frees are of blocks another
 * thread (often on another node) allocated, which NUMA on sends home.
 * ops = steps; CPU seconds from getrusage. Under TCG the absolute numbers
 * mean little: the ratio is the figure.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WINDOW	512
#define XCHG	1024

static _Atomic(void *) xchg[XCHG];
static atomic_int stop;
static double secs = 3.0;

static uint64_t rng(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static size_t size_of(uint64_t *s)
{
	unsigned lg = 4 + (unsigned)(rng(s) % 7);	/* 16 .. 1024 */
	size_t lo = (size_t)1 << lg;
	return lo + (size_t)(rng(s) % lo);
}

struct worker {
	pthread_t t;
	int cpu;
	long ops;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	uint64_t s = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->cpu + 1);
	void *win[WINDOW];
	for (int i = 0; i < WINDOW; i++) {
		size_t n = size_of(&s);
		win[i] = malloc(n);
		memset(win[i], 1, 16);
	}
	long ops = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (int k = 0; k < 256; k++, ops++) {
			unsigned i = (unsigned)(rng(&s) % WINDOW);
			if ((ops & 15) == 0) {
				win[i] = atomic_exchange(&xchg[rng(&s) % XCHG], win[i]);
				if (!win[i]) {
					win[i] = malloc(size_of(&s));
					memset(win[i], 2, 16);
				}
				continue;
			}
			free(win[i]);
			size_t n = size_of(&s);
			win[i] = malloc(n);
			memset(win[i], 3, 16);
		}
	}
	for (int i = 0; i < WINDOW; i++)
		free(win[i]);
	w->ops = ops;
	return NULL;
}

static int child(void)
{
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct worker *w = calloc((size_t)ncpu, sizeof(*w));
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	for (int i = 0; i < ncpu; i++) {
		w[i].cpu = i;
		pthread_create(&w[i].t, NULL, work, &w[i]);
	}
	struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	long ops = 0;
	for (int i = 0; i < ncpu; i++) {
		pthread_join(w[i].t, NULL);
		ops += w[i].ops;
	}
	getrusage(RUSAGE_SELF, &r1);
	double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec +
			      r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
		     (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec +
			      r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) * 1e-6;
	for (int i = 0; i < XCHG; i++)
		free(atomic_exchange(&xchg[i], NULL));
	printf("ops=%ld cpu=%.3f threads=%d\n", ops, cpu, ncpu);
	return 0;
}

static double run_mode(const char *self, const char *nodes, const char *mode, int round)
{
	int fd[2];
	if (pipe(fd))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		setenv("EBB_NUMA", mode, 1);
		char s[32];
		snprintf(s, sizeof(s), "%g", secs);
		execl(self, self, nodes, "child", s, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	char buf[256] = { 0 };
	ssize_t n = read(fd[0], buf, sizeof(buf) - 1);
	close(fd[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	long ops = 0;
	double cpu = 0;
	int threads = 0;
	if (n <= 0 || sscanf(buf, "ops=%ld cpu=%lf threads=%d", &ops, &cpu, &threads) != 3 || cpu <= 0) {
		printf("numavm: bench FAIL: EBB_NUMA=%s run %d printed nothing usable (status %d)\n", mode, round, st);
		return -1;
	}
	double r = (double)ops / cpu;
	printf("numavm: bench EBB_NUMA=%s run %d ops %ld cpu %.2f s threads %d ops/cpu-s %.0f\n", mode, round, ops,
	       cpu, threads, r);
	fflush(stdout);
	return r;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc > 3 && strcmp(argv[2], "child") == 0) {
		secs = atof(argv[3]);
		return child();
	}
	const char *nodes = argc > 1 ? argv[1] : "0";
	int rounds = 5;
	const char *e = getenv("NUMA_BENCH_ROUNDS");
	if (e && atoi(e) > 0)
		rounds = atoi(e);
	e = getenv("NUMA_BENCH_SECS");
	if (e && atof(e) > 0)
		secs = atof(e);
	double on[64], off[64];
	if (rounds > 64)
		rounds = 64;
	printf("numavm: bench %s nodes, %d rounds of %g s per mode, /proc/self/exe\n", nodes, rounds, secs);
	fflush(stdout);
	int bad = 0;
	for (int r = 0; r < rounds; r++) {
		/* alternate which mode goes first */
		const char *first = r % 2 ? "0" : "1", *second = r % 2 ? "1" : "0";
		double a = run_mode("/proc/self/exe", nodes, first, r + 1);
		double b = run_mode("/proc/self/exe", nodes, second, r + 1);
		if (a < 0 || b < 0)
			bad = 1;
		on[r] = r % 2 ? b : a;
		off[r] = r % 2 ? a : b;
	}
	if (bad)
		return 1;
	qsort(on, (size_t)rounds, sizeof(double), cmp);
	qsort(off, (size_t)rounds, sizeof(double), cmp);
	double mon = on[rounds / 2], moff = off[rounds / 2];
	printf("numavm: bench RESULT %s nodes: NUMA on %.0f, off %.0f ops/cpu-s (medians of %d): on / off = %.3f\n",
	       nodes, mon, moff, rounds, mon / moff);
	return 0;
}
