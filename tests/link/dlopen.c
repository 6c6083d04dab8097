/* dlopen.c - the seventh way: a program that does not link ebbmalloc
 * dlopen()s it (as a plugin, a JNI or Python extension linked against it
 * would) and calls the ebb_* API through dlsym. The library's static TLS
 * (a thread's tcache_t without its bins, 248 bytes) must fit the room
 * glibc keeps for libraries loaded later (it did not at 2176 bytes), and
 * the library must serve threads that existed before it was loaded and
 * threads created after, blocks freed by another thread included, and
 * leave libc's malloc alone. Usage: dlopen LIBRARY. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ebbmalloc.h"

static void *(*p_malloc)(size_t);
static void (*p_free)(void *);
static size_t (*p_usable)(void *);
static int (*p_stats)(struct ebb_stats *, size_t);

#define NBLK 512
#define ROUNDS 200

struct job {
	unsigned seed;
	void *handoff[NBLK];	/* allocated by this job, freed by the next */
	long bad;
};

static unsigned next(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Fill blocks with a pattern tied to their address and size, check it
 * before freeing; the last round's blocks are left for another thread. */
static void work(struct job *j)
{
	void *blk[NBLK] = { 0 };
	size_t sz[NBLK] = { 0 };
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < NBLK; i++) {
			if (blk[i]) {
				unsigned char *b = blk[i];
				for (size_t k = 0; k < sz[i]; k += 61)
					if (b[k] != (unsigned char)((uintptr_t)b + k + sz[i]))
						j->bad++;
				p_free(b);
			}
			sz[i] = 1 + next(&j->seed) % (i % 8 == 7 ? 70000 : 600);
			unsigned char *b = p_malloc(sz[i]);
			if (!b || p_usable(b) < sz[i]) {
				j->bad++;
				blk[i] = NULL;
				continue;
			}
			for (size_t k = 0; k < sz[i]; k += 61)
				b[k] = (unsigned char)((uintptr_t)b + k + sz[i]);
			blk[i] = b;
		}
	}
	memcpy(j->handoff, blk, sizeof(blk));
}

static void *thread_main(void *arg)
{
	work(arg);
	return NULL;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int loaded;
static struct job early_job = { .seed = 99 };

/* A thread that exists before the library is loaded, and uses it after. */
static void *early_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!loaded)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	work(&early_job);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: dlopen LIBRARY\n");
		return 2;
	}
	pthread_t early;
	if (pthread_create(&early, NULL, early_thread, NULL) != 0)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "FAIL: dlopen: %s\n", dlerror());
		return 1;
	}
	p_malloc = (void *(*)(size_t))dlsym(h, "ebb_malloc");
	p_free = (void (*)(void *))dlsym(h, "ebb_free");
	p_usable = (size_t (*)(void *))dlsym(h, "ebb_malloc_usable_size");
	p_stats = (int (*)(struct ebb_stats *, size_t))dlsym(h, "ebb_stats_sized");
	if (!p_malloc || !p_free || !p_usable || !p_stats) {
		fprintf(stderr, "FAIL: dlsym: %s\n", dlerror());
		return 1;
	}
	/* the library serves ebb_malloc: a large block shows in its stats */
	struct ebb_stats before, after;
	if (p_stats(&before, sizeof(before)) != 0)
		return 1;
	void *big = p_malloc(1 << 20);
	if (p_stats(&after, sizeof(after)) != 0 || !big ||
	    after.allocated_bytes < before.allocated_bytes + (1 << 20)) {
		fprintf(stderr, "FAIL: ebb_malloc(1 MiB) not counted by ebb_stats\n");
		return 1;
	}
	p_free(big);
	/* ... and only ebb_malloc: libc's malloc is not counted */
	if (p_stats(&before, sizeof(before)) != 0)
		return 1;
	void *libc_block = malloc(1 << 20);
	if (p_stats(&after, sizeof(after)) != 0 || after.allocated_bytes >= before.allocated_bytes + (1 << 20)) {
		fprintf(stderr, "FAIL: libc's malloc went to the dlopen()ed library\n");
		return 1;
	}
	free(libc_block);

	pthread_mutex_lock(&mu);
	loaded = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);

	enum { N = 4 };
	static struct job jobs[N];
	pthread_t th[N];
	for (int i = 0; i < N; i++) {
		jobs[i].seed = (unsigned)i + 1;
		if (pthread_create(&th[i], NULL, thread_main, &jobs[i]) != 0)
			return 2;
	}
	work(&(struct job){ .seed = 7 });	/* the main thread too (its blocks leak) */
	long bad = 0;
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_join(early, NULL);
	/* each job's last blocks are freed here, by another thread */
	for (int i = 0; i < N; i++) {
		bad += jobs[i].bad;
		for (int k = 0; k < NBLK; k++)
			p_free(jobs[i].handoff[k]);
	}
	bad += early_job.bad;
	for (int k = 0; k < NBLK; k++)
		p_free(early_job.handoff[k]);
	if (bad) {
		fprintf(stderr, "FAIL: %ld blocks too small or with a broken pattern\n", bad);
		return 1;
	}
	printf("ok: dlopen()ed, %d threads (one older than the library)\n", N + 2);
	return 0;
}
