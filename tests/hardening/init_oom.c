/*
 * init_oom.c - regression test "first malloc aborts when the init mapping
 * fails": run under LD_PRELOAD with EBB_FAULT=mmap=1 (the first os_map of
 * the process fails; test-hardening-pending).
 *
 * Before the fix, ebbmalloc's init took its arena array from the metadata
 * allocator and trapped (ebb_check, "internal error: mem != NULL") when that
 * first mapping failed: a process whose very first malloc met a transient
 * ENOMEM died instead of getting NULL. Now: the first allocations may fail
 * (NULL, errno ENOMEM), nothing aborts, and once the OS gives memory again
 * every allocation succeeds and keeps its contents.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	void *p = NULL;
	int nulls = 0;
	for (int i = 0; i < 100 && !p; i++) {
		errno = 0;
		p = malloc(100);
		if (!p) {
			if (errno != ENOMEM) {
				fprintf(stderr, "FAIL: malloc NULL with errno %d\n", errno);
				return 1;
			}
			nulls++;
		}
	}
	if (!p) {
		fprintf(stderr, "FAIL: no recovery: 100 mallocs failed after one injected failure\n");
		return 1;
	}
	memset(p, 0xab, 100);
	char *q[200];
	for (int i = 0; i < 200; i++) {
		size_t n = (size_t)(i % 5 == 0 ? (3 << 20) : 64 * (i + 1));
		q[i] = malloc(n);
		if (!q[i]) {
			fprintf(stderr, "FAIL: malloc(%zu) failed after recovery\n", n);
			return 1;
		}
		memset(q[i], i, n);
	}
	for (int i = 0; i < 200; i++) {
		if (q[i][0] != (char)i) {
			fprintf(stderr, "FAIL: block %d corrupt\n", i);
			return 1;
		}
		free(q[i]);
	}
	free(p);
	printf("init_oom: %d clean failure(s) at start, then recovery: ok\n", nulls);
	return 0;
}
