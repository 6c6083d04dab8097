/*
 * thread_churn.c - thousands of short threads that allocate and free.
 *
 * CHURN_THREADS (5000) threads in total, at most CHURN_CONCURRENT (16)
 * alive at once; one in four is detached. Each thread (seed = its index):
 * allocates 16..144 blocks (1 B..64 KiB, one in 32 up to 1 MiB) with a
 * pattern; frees a few hundred small blocks in a tight loop (so its cache
 * holds something when it exits); adopts up to 16 blocks that threads which
 * have already exited left in a shared pool, checks and frees them (frees
 * of blocks whose owning thread is gone); frees half of its own blocks and
 * leaves up to 16 in the pool; frees the rest and exits. At the end the
 * main thread drains the pool. Exit 0 when every pattern was intact.
 */
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include "stress.h"

#define POOL_CAP 4096

struct orphan {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct orphan pool[POOL_CAP];
static size_t pool_n;
static sem_t alive;
static atomic_ulong adopted, allocated;

static void check_free(struct orphan *o, const char *who)
{
	size_t off = pat_check(o->p, o->n, o->tag);

	if (off != (size_t)-1)
		FAIL("%s: block %p (%zu bytes, tag %#" PRIx64 ") corrupt at %zu", who, (void *)o->p, o->n, o->tag, off);
	free(o->p);
	o->p = NULL;
}

static void *churn_thread(void *arg)
{
	unsigned idx = (unsigned)(uintptr_t)arg;
	uint64_t r = rng_seed(42, idx);
	unsigned n = 16 + (unsigned)rng_below(&r, 129);
	struct orphan mine[144];
	struct orphan take[16];
	size_t nt = 0;

	for (unsigned i = 0; i < n; i++) {
		size_t sz = rng_below(&r, 32) ? rng_size_log(&r, 1, 64 << 10) : rng_size_log(&r, 64 << 10, 1 << 20);
		mine[i].p = malloc(sz);
		mine[i].n = sz;
		mine[i].tag = ((uint64_t)idx << 32) | i;
		if (!mine[i].p) {
			FAIL("thread %u: malloc(%zu) = NULL", idx, sz);
			n = i;
			break;
		}
		pat_fill(mine[i].p, sz, mine[i].tag);
	}
	atomic_fetch_add_explicit(&allocated, n, memory_order_relaxed);
	/* fill the thread cache with recently freed small blocks */
	for (unsigned i = 0; i < 300; i++) {
		void *v[8];
		for (unsigned k = 0; k < 8; k++)
			v[k] = malloc(16 + 16 * (i % 16) + k);
		for (unsigned k = 0; k < 8; k++)
			free(v[k]);
	}
	pthread_mutex_lock(&pool_lock);
	while (nt < 16 && pool_n > 0)
		take[nt++] = pool[--pool_n];
	pthread_mutex_unlock(&pool_lock);
	for (size_t i = 0; i < nt; i++)
		check_free(&take[i], "adopted block of an exited thread");
	atomic_fetch_add_explicit(&adopted, nt, memory_order_relaxed);

	for (unsigned i = 0; i < n; i += 2)
		check_free(&mine[i], "own block");
	pthread_mutex_lock(&pool_lock);
	for (unsigned i = 1, left = 0; i < n && left < 16; i += 2, left++)
		if (pool_n < POOL_CAP) {
			pool[pool_n++] = mine[i];
			mine[i].p = NULL;
		}
	pthread_mutex_unlock(&pool_lock);
	for (unsigned i = 1; i < n; i += 2)
		if (mine[i].p)
			check_free(&mine[i], "own block");
	if (idx % 4 == 3)
		sem_post(&alive);	/* detached: nobody joins us */
	return NULL;
}

int main(void)
{
	unsigned total = (unsigned)env_long("CHURN_THREADS", 5000);
	unsigned conc = (unsigned)env_long("CHURN_CONCURRENT", 16);
	pthread_t *ring;
	unsigned head = 0, count = 0, created = 0;

	if (stress_banner("thread_churn"))
		return 1;
	if (conc < 1)
		conc = 1;
	ring = calloc(conc, sizeof(*ring));
	sem_init(&alive, 0, conc);
	for (unsigned i = 0; i < total; i++) {
		pthread_attr_t attr;
		pthread_t th;
		int detach = i % 4 == 3;

		/* joinable threads occupy ring slots; detached ones a semaphore unit */
		if (!detach && count == conc) {
			pthread_join(ring[head], NULL);
			head = (head + 1) % conc;
			count--;
		}
		if (detach)
			sem_wait(&alive);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, detach ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
		if (pthread_create(&th, &attr, churn_thread, (void *)(uintptr_t)i)) {
			FAIL("pthread_create #%u: %s", i, strerror(errno));
			break;
		}
		pthread_attr_destroy(&attr);
		created++;
		if (!detach) {
			ring[(head + count) % conc] = th;
			count++;
		}
		if (stress_failed() > 10)
			break;
	}
	while (count) {
		pthread_join(ring[head], NULL);
		head = (head + 1) % conc;
		count--;
	}
	for (unsigned k = 0; k < conc; k++)	/* every detached thread has posted */
		sem_wait(&alive);
	for (size_t i = 0; i < pool_n; i++)
		check_free(&pool[i], "pool block at the end");
	printf("thread_churn: %u threads, %lu blocks allocated, %lu freed by a later thread, %lu failures\n",
	       created, atomic_load(&allocated), atomic_load(&adopted), stress_failed());
	free(ring);
	if (atomic_load(&adopted) == 0)
		FAIL("no block was ever freed by another thread");
	return (stress_failed() || created != total) ? 1 : 0;
}
