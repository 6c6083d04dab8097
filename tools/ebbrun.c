/*
 * ebbrun.c - run a command with ebbmalloc preloaded and options set.
 *
 *   ebbrun [-o key=value]... [--lib PATH | --fastfree] [-v] -- command [args...]
 *
 * Sets LD_PRELOAD=<libebbmalloc.so>[:<existing LD_PRELOAD>] and appends each
 * -o key=value to EBB_CONF (after what the environment already has, so the
 * command line wins when the library reads the string left to right), then
 * execs the command: the command keeps ebbrun's pid. The library is found,
 * in this order: --lib PATH; $EBBRUN_LIB; ../libebbmalloc.so next to this
 * binary (build/tools/ebbrun -> build/libebbmalloc.so); ../lib/libebbmalloc.so
 * (PREFIX/bin/ebbrun -> PREFIX/lib/libebbmalloc.so); --fastfree looks for
 * libebbmalloc-fastfree.so in the same places. The path is made
 * absolute so the command may chdir. Option names and values are checked by
 * the library, which warns about the ones it does not know.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ebbrun [-o key=value]... [--lib PATH | --fastfree] [-v] -- command [args...]\n"
		"\n"
		"Runs command with ebbmalloc preloaded (LD_PRELOAD) and options set\n"
		"(each -o key=value is appended to EBB_CONF).\n"
		"\n"
		"  -o key=value   an ebbmalloc option, e.g. -o decay_ms=500 -o purge=free\n"
		"                 -o stats_file=/tmp/ebb.%%p (live stats for ebbstat)\n"
		"  --lib PATH     the libebbmalloc.so to preload (default: next to ebbrun,\n"
		"                 ../libebbmalloc.so or ../lib/libebbmalloc.so; or $EBBRUN_LIB)\n"
		"  --fastfree     preload libebbmalloc-fastfree.so from there instead (free\n"
		"                 does not read the block; a double free is caught by the\n"
		"                 next malloc of its size: README, \"Two builds\")\n"
		"  -v             print the LD_PRELOAD and EBB_CONF that are set\n"
		"  -h, --help     this text\n"
		"\n"
		"Example: ebbrun -o decay_ms=1000 -o stats_file=/tmp/ebb.%%p -- java -jar app.jar\n");
}

/* The library next to our own binary, or installed beside it. */
static int find_lib(char *out, size_t len, const char *name)
{
	static const char *const rel[] = { "..", "../lib", "." };
	char self[PATH_MAX], cand[PATH_MAX + 32];
	ssize_t n;
	char *slash;
	size_t i;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(cand, sizeof(cand), "%s/%s/%s", self, rel[i], name);
		if (access(cand, R_OK) == 0 && realpath(cand, out) && strlen(out) < len)
			return 0;
	}
	return -ENOENT;
}

int main(int argc, char **argv)
{
	const char *lib = NULL, *old;
	char libpath[PATH_MAX];
	char *conf = NULL, *preload;
	size_t conflen = 0;
	int verbose = 0, fastfree = 0, i;
	const char *name;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-v")) {
			verbose = 1;
		} else if (!strcmp(a, "--fastfree")) {
			fastfree = 1;
		} else if (!strcmp(a, "--lib") || !strncmp(a, "--lib=", 6)) {
			if (a[5] == '=')
				lib = a + 6;
			else if (++i < argc)
				lib = argv[i];
			else
				goto bad;
		} else if (!strncmp(a, "-o", 2)) {
			const char *kv = a[2] ? a + 2 : (++i < argc ? argv[i] : NULL);
			size_t kl;
			char *nc;

			if (!kv)
				goto bad;
			if (!strchr(kv, '=') || kv[0] == '=') {
				fprintf(stderr, "ebbrun: -o wants key=value, got '%s'\n", kv);
				return 2;
			}
			if (strchr(kv, ',')) {
				fprintf(stderr, "ebbrun: '%s': a value cannot contain ',' "
					"(EBB_CONF separates options with commas)\n", kv);
				return 2;
			}
			kl = strlen(kv);
			nc = realloc(conf, conflen + kl + 2);
			if (!nc) {
				perror("ebbrun");
				return 1;
			}
			conf = nc;
			if (conflen)
				conf[conflen++] = ',';
			memcpy(conf + conflen, kv, kl + 1);
			conflen += kl;
		} else if (a[0] == '-') {
			fprintf(stderr, "ebbrun: unknown option '%s'\n", a);
			goto bad;
		} else {
			/* the command may follow without "--" */
			break;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "ebbrun: no command given\n");
		goto bad;
	}

	if (lib && fastfree) {
		fprintf(stderr, "ebbrun: --lib and --fastfree name two libraries: pass one\n");
		return 2;
	}
	name = fastfree ? "libebbmalloc-fastfree.so" : "libebbmalloc.so";
	if (!lib && !fastfree)
		lib = getenv("EBBRUN_LIB");
	if (lib) {
		if (access(lib, R_OK) != 0 || !realpath(lib, libpath)) {
			fprintf(stderr, "ebbrun: %s: %s\n", lib, strerror(errno));
			return 1;
		}
	} else if (find_lib(libpath, sizeof(libpath), name) != 0) {
		fprintf(stderr, "ebbrun: %s not found next to ebbrun "
			"(../%s, ../lib/%s); build it with `make lib` or pass --lib PATH\n",
			name, name, name);
		return 1;
	}

	old = getenv("LD_PRELOAD");
	if (old && *old) {
		preload = malloc(strlen(libpath) + strlen(old) + 2);
		if (!preload) {
			perror("ebbrun");
			return 1;
		}
		sprintf(preload, "%s:%s", libpath, old);
	} else {
		preload = libpath;
	}
	if (setenv("LD_PRELOAD", preload, 1) != 0) {
		perror("ebbrun: setenv");
		return 1;
	}
	if (conflen) {
		old = getenv("EBB_CONF");
		if (old && *old) {
			char *c = malloc(strlen(old) + conflen + 2);

			if (!c) {
				perror("ebbrun");
				return 1;
			}
			sprintf(c, "%s,%s", old, conf);
			free(conf);
			conf = c;
		}
		if (setenv("EBB_CONF", conf, 1) != 0) {
			perror("ebbrun: setenv");
			return 1;
		}
	}
	if (verbose) {
		fprintf(stderr, "ebbrun: LD_PRELOAD=%s\n", getenv("LD_PRELOAD"));
		if (getenv("EBB_CONF"))
			fprintf(stderr, "ebbrun: EBB_CONF=%s\n", getenv("EBB_CONF"));
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "ebbrun: %s: %s\n", argv[i], strerror(errno));
	return errno == ENOENT ? 127 : 126;
bad:
	usage(stderr);
	return 2;
}
