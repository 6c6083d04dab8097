/*
 * callgrind_pair.c - instructions per cached malloc+free pair.
 *
 * A loop of `pairs` (default 1,000,000) free(malloc(48)), meant to run under
 * `valgrind --tool=callgrind --toggle-collect=pair_loop` with the allocator
 * preloaded (callgrind does not replace malloc, so LD_PRELOAD measures the
 * real allocator). A warm-up pair outside pair_loop pays for the
 * allocator's first-use initialisation, so the count is the steady state:
 * instructions collected / pairs, call overhead and loop included.
 * Built with -fno-builtin-malloc -fno-builtin-free so the compiler keeps
 * the pair.
 */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void pair_loop(long n);

__attribute__((noinline)) void pair_loop(long n)
{
	for (long i = 0; i < n; i++)
		free(malloc(48));
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 0) : 1000000;

	free(malloc(48));	/* warm-up: init and first refill */
	pair_loop(n);
	printf("RESULT ops=%ld secs=0 cpu_secs=0\n", n);
	return 0;
}
