/*
 * replay.c - runs fuzz_ebb.c's LLVMFuzzerTestOneInput on each file named,
 * REPLAY_ROUNDS times over (default 1), without libFuzzer: for builds
 * libFuzzer cannot make, such as the TSan replay of the corpus
 * (tests/fuzz/fuzz.mk, `make fuzz-tsan`). A finding aborts (the harness's
 * oracle) or makes the sanitizer exit non-zero; the file being run is
 * named first on stderr when REPLAY_SAY is set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	const char *r = getenv("REPLAY_ROUNDS");
	int rounds = r ? atoi(r) : 1, say = getenv("REPLAY_SAY") != NULL;
	unsigned long runs = 0;
	for (int k = 0; k < rounds; k++) {
		for (int i = 1; i < argc; i++) {
			FILE *f = fopen(argv[i], "rb");
			if (!f) {
				fprintf(stderr, "replay: cannot open %s\n", argv[i]);
				return 2;
			}
			uint8_t *buf = NULL;
			size_t n = 0, cap = 0, got;
			do {
				if (n == cap) {
					cap = cap ? cap * 2 : 4096;
					uint8_t *nb = realloc(buf, cap);
					if (!nb) {
						fprintf(stderr, "replay: out of memory\n");
						return 2;
					}
					buf = nb;
				}
				got = fread(buf + n, 1, cap - n, f);
				n += got;
			} while (got);
			fclose(f);
			if (say)
				fprintf(stderr, "replay: %s\n", argv[i]);
			LLVMFuzzerTestOneInput(buf, n);
			free(buf);
			runs++;
		}
	}
	fprintf(stderr, "replay: %lu runs (%d rounds of %d inputs) clean\n", runs, rounds, argc - 1);
	return 0;
}
