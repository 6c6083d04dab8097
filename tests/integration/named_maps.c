/*
 * named_maps.c - ebbmalloc's named mappings (issue 7, point 4), run by named.sh
 * under LD_PRELOAD. Allocates 40 MiB of small blocks (ten chunks and more
 * of node 0) and a huge block (its own mapping), then asks the kernel itself whether it names
 * anonymous mappings (PR_SET_VMA_ANON_NAME on a page of its own) and
 * counts ebbmalloc's names in /proc/self/maps:
 *
 *   kernel names anonymous mappings: ebbmalloc:node0 and ebbmalloc:huge
 *     must be listed;
 *   kernel refuses (EINVAL, as this machine's 6.18 does): none is listed,
 *     and errno is what the program left in it across the allocations.
 *
 * Prints "named: kernel=yes|no node=N huge=N" and exits 0, or FAIL and 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA		0x53564d41
#define PR_SET_VMA_ANON_NAME	0
#endif

static int count_in_maps(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, name))
			n++;
	fclose(f);
	return n;
}

int main(void)
{
	enum { NSMALL = 40 * 1024 };
	static void *small[NSMALL];
	void *huge;
	errno = 4242;
	for (int i = 0; i < NSMALL; i++) {
		small[i] = malloc(1000);
		if (!small[i]) {
			printf("FAIL: malloc\n");
			return 1;
		}
		memset(small[i], 1, 1000);
	}
	huge = malloc(8 << 20);
	if (!huge) {
		printf("FAIL: malloc 8 MiB\n");
		return 1;
	}
	memset(huge, 2, 8 << 20);
	int err = errno;

	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int kernel = page != MAP_FAILED &&
		     prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)page, 4096UL,
			   (unsigned long)"ebb-named-probe") == 0;
	int node = count_in_maps("[anon:ebbmalloc:node0]");
	int hugen = count_in_maps("[anon:ebbmalloc:huge]");
	printf("named: kernel=%s node=%d huge=%d errno=%d\n", kernel ? "yes" : "no", node, hugen, err);
	int bad = 0;
	if (err != 4242) {
		printf("FAIL: errno %d after the allocations, the program left 4242\n", err);
		bad = 1;
	}
	if (kernel && (node < 1 || hugen < 1)) {
		printf("FAIL: the kernel names mappings, but ebbmalloc's chunk (%d) or huge block (%d) has no name\n",
		       node, hugen);
		bad = 1;
	}
	if (!kernel && (node || hugen)) {
		printf("FAIL: the kernel refuses names, yet maps lists some\n");
		bad = 1;
	}
	for (int i = 0; i < NSMALL; i++)
		free(small[i]);
	free(huge);
	return bad;
}
