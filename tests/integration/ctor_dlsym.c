/*
 * ctor_dlsym.c - start-up without recursion (DESIGN.md invariant 3).
 *
 * Constructors that run before main (one at the highest priority, before
 * most of libc's users) call malloc, calloc, realloc, strdup, free; call
 * dlsym with RTLD_NEXT and RTLD_DEFAULT, for symbols that exist and for one
 * that does not (glibc then allocates the dlerror buffer); dlopen a library;
 * create a thread that allocates. main repeats a few of these and prints
 * "ok". Run under LD_PRELOAD by tests/integration/startup.sh, with a
 * timeout: a recursion shows as a crash (stack overflow), a deadlock as the
 * timeout.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *early[8];
static int early_ok;

static void *thread_alloc(void *arg)
{
	char *p = malloc(1000);

	if (!p)
		return NULL;
	memset(p, 1, 1000);
	free(p);
	return calloc(1, 64);	/* freed by the creator: a cross-thread free */
}

static int exercise(const char *when)
{
	void *(*next_malloc)(size_t);
	void (*dflt_free)(void *);
	void *lib, *missing;
	char *s, *r;
	pthread_t th;
	void *from_thread = NULL;

	s = strdup(when);
	r = realloc(malloc(10), 5000);
	if (!s || !r)
		return 0;
	free(s);
	free(r);
	next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	dflt_free = (void (*)(void *))dlsym(RTLD_DEFAULT, "free");
	if (!next_malloc || !dflt_free) {
		fprintf(stderr, "%s: dlsym(malloc/free) failed: %s\n", when, dlerror());
		return 0;
	}
	missing = dlsym(RTLD_NEXT, "ebb_no_such_symbol_at_all");
	if (missing || !dlerror()) {
		fprintf(stderr, "%s: dlsym of a missing symbol did not fail\n", when);
		return 0;
	}
	lib = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
	if (!lib || !dlsym(lib, "cos")) {
		fprintf(stderr, "%s: dlopen(libm.so.6): %s\n", when, dlerror());
		return 0;
	}
	dlclose(lib);
	if (!dlopen("libebb-does-not-exist.so", RTLD_NOW) && !dlerror())
		return 0;
	if (pthread_create(&th, NULL, thread_alloc, NULL) || pthread_join(th, &from_thread) || !from_thread)
		return 0;
	free(from_thread);
	return 1;
}

__attribute__((constructor(101))) static void first_ctor(void)
{
	for (int i = 0; i < 8; i++)
		early[i] = malloc((size_t)16 << i);
	early[7] = realloc(early[7], 100000);
	early_ok = exercise("constructor");
}

__attribute__((constructor)) static void later_ctor(void)
{
	void *p = calloc(100, 100);

	free(p);
}

int main(void)
{
	for (int i = 0; i < 8; i++) {
		if (!early[i]) {
			printf("malloc in the constructor returned NULL\n");
			return 1;
		}
		free(early[i]);
	}
	if (!early_ok) {
		printf("the constructor's dlsym/dlopen/thread checks failed\n");
		return 1;
	}
	if (!exercise("main"))
		return 1;
	printf("ok\n");
	return 0;
}
