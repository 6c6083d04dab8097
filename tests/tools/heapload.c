/*
 * heapload.c - the real processes the tools tests look at.
 *
 *   heapload arenas NTHREADS KIB [KEEP]
 *                                  NTHREADS threads each malloc KIB KiB in
 *                                  256-byte pieces and touch them, all at
 *                                  once (a barrier keeps them alive, so
 *                                  glibc gives them separate arenas); with
 *                                  KEEP, each then frees all but every
 *                                  KEEP-th block; then prints "ready heaps=K
 *                                  in_arenas=T freed=F" and waits for stdin
 *                                  to close (or 120 s)
 *   heapload touch MIB [PIECE]     prints "start", sleeps 300 ms, mallocs and
 *                                  touches MIB MiB (in PIECE-byte blocks, or
 *                                  one block), prints "touched", holds 600 ms,
 *                                  frees it, waits 300 ms and exits 0
 *   heapload hold MIB [PIECE]      mallocs and touches MIB MiB, prints
 *                                  "ready", waits for stdin to close
 *   heapload swing MIB ROUNDS      ROUNDS times: mallocs and touches MIB MiB
 *                                  in 1 MiB blocks, frees them all, waits
 *                                  200 ms (a heap whose active memory
 *                                  swings: under ebbmalloc with a long
 *                                  decay, the dirty cap purges each fall);
 *                                  then prints "ready" and waits for stdin
 *   heapload named MIB             mmaps and touches MIB MiB and names the
 *                                  mapping "ebb-tools-test" (PR_SET_VMA_ANON_NAME);
 *                                  prints "ready named=1", or "ready named=0
 *                                  REASON" where the kernel cannot name it
 *
 * heaps=K is the oracle for ebb-doctor: the number of distinct 64 MiB-aligned
 * bases of the threads' first blocks that lie outside the brk heap, i.e. the
 * glibc arena heaps this program caused, computed from its own pointers
 * rather than from /proc. in_arenas=T counts the threads whose blocks are
 * in such heaps (each holds at least KIB KiB resident there), and F the
 * glibc chunk bytes those threads freed (malloc_usable_size + the 8-byte
 * header): what ebb-doctor's walk of the arenas' free lists must find,
 * less what the threads' tcaches keep (7 chunks of a size per thread).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA		0x53564d41
#define PR_SET_VMA_ANON_NAME	0
#endif

#define PIECE	256
#define HEAP	(64UL << 20)

static pthread_barrier_t barrier;
static size_t per_thread_bytes;

struct slot {
	void **blocks;
	size_t n;
	size_t freed_bytes;	/* glibc chunk bytes freed (usable size + header) */
};

static size_t keep_every;

static void *worker(void *arg)
{
	struct slot *s = arg;
	size_t i;

	s->n = per_thread_bytes / PIECE;
	s->blocks = malloc(s->n * sizeof(void *));
	if (!s->blocks)
		abort();
	for (i = 0; i < s->n; i++) {
		s->blocks[i] = malloc(PIECE);
		if (!s->blocks[i])
			abort();
		memset(s->blocks[i], (int)(i & 0xff), PIECE);
		__asm__ volatile("" : : "r"(s->blocks[i]) : "memory");
	}
	pthread_barrier_wait(&barrier);	/* all allocated: nobody reuses a hole */
	if (keep_every) {
		/* free all but every keep_every-th block: holes between live blocks */
		for (i = 0; i < s->n; i++) {
			if (i % keep_every == 0)
				continue;
			s->freed_bytes += malloc_usable_size(s->blocks[i]) + sizeof(size_t);
			free(s->blocks[i]);
			s->blocks[i] = NULL;
		}
	}
	pthread_barrier_wait(&barrier);	/* all alive together */
	pthread_barrier_wait(&barrier);	/* main has looked */
	return NULL;
}

static void wait_stdin(int max_s)
{
	char buf[64];
	fd_set fds;
	struct timeval tv = { max_s, 0 };

	for (;;) {
		FD_ZERO(&fds);
		FD_SET(0, &fds);
		if (select(1, &fds, NULL, NULL, &tv) <= 0)
			return;
		if (read(0, buf, sizeof(buf)) <= 0)
			return;
	}
}

static int in_brk_heap(uintptr_t p)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int in = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (strstr(line, "[heap]") && sscanf(line, "%lx-%lx", &s, &e) == 2 &&
		    p >= s && p < e)
			in = 1;
	}
	fclose(f);
	return in;
}

static int arenas(int nthreads, size_t kib)
{
	pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
	struct slot *s = calloc((size_t)nthreads, sizeof(*s));
	uintptr_t *bases = calloc((size_t)nthreads, sizeof(*bases));
	int i, j, nb = 0, inarena = 0;
	size_t freed = 0;

	if (!t || !s || !bases)
		return 1;
	per_thread_bytes = kib * 1024;
	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1);
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, worker, &s[i]) != 0) {
			perror("pthread_create");
			return 1;
		}
	pthread_barrier_wait(&barrier);	/* allocated */
	pthread_barrier_wait(&barrier);	/* freed */
	for (i = 0; i < nthreads; i++) {
		uintptr_t p = (uintptr_t)s[i].blocks[0];
		uintptr_t b = p & ~(HEAP - 1);

		if (in_brk_heap(p))
			continue;
		inarena++;
		freed += s[i].freed_bytes;
		for (j = 0; j < nb; j++)
			if (bases[j] == b)
				break;
		if (j == nb)
			bases[nb++] = b;
	}
	printf("ready heaps=%d in_arenas=%d freed=%zu\n", nb, inarena, freed);
	fflush(stdout);
	wait_stdin(120);
	pthread_barrier_wait(&barrier);
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* MIB MiB in blocks of piece bytes (0: one block), each touched; the
 * blocks escape through an empty asm so the compiler cannot drop them. */
static void **alloc_touch(size_t bytes, size_t piece, size_t *nout)
{
	size_t n = piece ? bytes / piece : 1, i;
	void **b = malloc(n * sizeof(*b));

	if (!b)
		return NULL;
	for (i = 0; i < n; i++) {
		b[i] = malloc(piece ? piece : bytes);
		if (!b[i])
			return NULL;
		memset(b[i], 0x5a, piece ? piece : bytes);
		__asm__ volatile("" : : "r"(b[i]) : "memory");
	}
	*nout = n;
	return b;
}

static void free_all(void **b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(b[i]);
	free(b);
}

int main(int argc, char **argv)
{
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "arenas")) {
		keep_every = argc == 5 ? (size_t)atol(argv[4]) : 0;
		return arenas(atoi(argv[2]), (size_t)atol(argv[3]));
	}
	if ((argc == 3 || argc == 4) && (!strcmp(argv[1], "touch") || !strcmp(argv[1], "hold"))) {
		size_t bytes = (size_t)atol(argv[2]) << 20;
		size_t piece = argc == 4 ? (size_t)atol(argv[3]) : 0;
		int hold = !strcmp(argv[1], "hold");
		void **b;
		size_t n = 0;

		if (!hold) {
			printf("start\n");
			fflush(stdout);
			sleep_ms(300);
		}
		b = alloc_touch(bytes, piece, &n);
		if (!b)
			return 1;
		printf(hold ? "ready\n" : "touched\n");
		fflush(stdout);
		if (hold)
			wait_stdin(120);
		else
			sleep_ms(600);
		free_all(b, n);
		if (!hold)
			sleep_ms(300);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "swing")) {
		size_t bytes = (size_t)atol(argv[2]) << 20;
		int rounds = atoi(argv[3]);

		for (int r = 0; r < rounds; r++) {
			size_t n = 0;
			void **b = alloc_touch(bytes, (size_t)1 << 20, &n);

			if (!b)
				return 1;
			free_all(b, n);
			sleep_ms(200);
		}
		printf("ready\n");
		fflush(stdout);
		wait_stdin(120);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "named")) {
		size_t bytes = (size_t)atol(argv[2]) << 20;
		char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int r;

		if (p == MAP_FAILED)
			return 1;
		memset(p, 0x5a, bytes);
		r = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, bytes,
			  (unsigned long)"ebb-tools-test");
		printf("ready named=%d%s%s\n", r == 0, r ? " " : "", r ? strerror(errno) : "");
		fflush(stdout);
		wait_stdin(120);
		munmap(p, bytes);
		return 0;
	}
	fprintf(stderr, "usage: heapload arenas NTHREADS KIB [KEEP] | named MIB | touch MIB [PIECE] | "
		"hold MIB [PIECE] | swing MIB ROUNDS\n");
	return 2;
}
