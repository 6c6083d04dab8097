/* prog.c - linked three ways by link.sh: against libebbmalloc.so or
 * libebbmalloc.a (malloc is ebbmalloc's), or against libebbmalloc-ebb.a
 * (malloc stays libc's, ebb_malloc is ebbmalloc's). argv[1] says which
 * behaviour to expect; exit 0 when it holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ebbmalloc.h"

int main(int argc, char **argv)
{
	int replaced = argc > 1 && !strcmp(argv[1], "replaced");
	struct ebb_stats before, after;
	ebb_stats(&before);
	void *p = malloc(100000);	/* a large block: visible in allocated_bytes */
	memset(p, 1, 100000);
	ebb_stats(&after);
	int counted = after.allocated_bytes >= before.allocated_bytes + 100000;
	void *q = ebb_malloc(1000);
	int ebb_ok = q && ebb_malloc_usable_size(q) >= 1000;
	ebb_free(q);
	free(p);
	if (!ebb_ok) {
		fprintf(stderr, "ebb_malloc failed\n");
		return 1;
	}
	if (counted != replaced) {
		fprintf(stderr, "malloc %s ebbmalloc's, expected %s\n", counted ? "is" : "is not",
			replaced ? "replaced" : "libc's");
		return 1;
	}
	printf("ok: malloc is %s\n", counted ? "ebbmalloc" : "libc");
	return 0;
}
