/*
 * proc.c - reading another process through /proc.
 *
 * Files under /proc report a size of 0, so they are read in a loop into a
 * growing buffer. Which allocator a process uses is read from the shared
 * objects it has mapped: a replacement allocator is a library in
 * /proc/PID/maps (libjemalloc, libtcmalloc*, libmimalloc, libebbmalloc);
 * when several are mapped, the one named in LD_PRELOAD wins, because the
 * dynamic linker resolves malloc from preloaded objects first. A process
 * with none of them and libc.so.6 mapped uses glibc's malloc, unless the
 * program itself defines malloc (an allocator linked in statically: the
 * linker then exports malloc in the executable's .dynsym so that libc's
 * own calls reach it); which one is told by the program's symbols
 * (ebb_malloc, mallctl, tc_malloc, mi_malloc in .symtab when not stripped)
 * or by its thread names (ebbmalloc's "ebb-reclaim", jemalloc's
 * "jemalloc_bg_thd").
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools.h"

char *proc_read(pid_t pid, const char *name, size_t *lenp)
{
	char path[64];
	size_t cap = 4096, len = 0;
	char *buf, *nb;
	ssize_t n;
	int fd, err;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	else
		snprintf(path, sizeof(path), "/proc/self/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	for (;;) {
		if (cap - len < 2) {
			nb = realloc(buf, cap * 2);
			if (!nb) {
				err = ENOMEM;
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
fail:
	free(buf);
	close(fd);
	errno = err;
	return NULL;
}

const char *proc_environ_get(const char *env, size_t len, const char *name)
{
	size_t nlen = strlen(name), off = 0;
	const char *found = NULL;

	while (off < len) {
		const char *e = env + off;
		size_t elen = strnlen(e, len - off);

		if (elen > nlen && !memcmp(e, name, nlen) && e[nlen] == '=')
			found = e + nlen + 1;
		off += elen + 1;
	}
	return found;
}

long long proc_status_kib(pid_t pid, const char *field)
{
	size_t flen = strlen(field);
	long long v = -1;
	char *st, *line;

	st = proc_read(pid, "status", NULL);
	if (!st)
		return -1;
	for (line = st; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			v = strtoll(line + flen + 1, NULL, 10);
			break;
		}
	}
	free(st);
	return v;
}

void proc_cmdline(pid_t pid, char *buf, size_t len)
{
	size_t n = 0, i;
	char *cl;

	buf[0] = '\0';
	cl = proc_read(pid, "cmdline", &n);
	if (!cl)
		return;
	while (n > 0 && cl[n - 1] == '\0')
		n--;
	for (i = 0; i < n; i++)
		if (cl[i] == '\0')
			cl[i] = ' ';
	snprintf(buf, len, "%.*s", (int)n, cl);
	free(cl);
}

int proc_alive(pid_t pid)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) == 0;
}

static const char *const alloc_names[PROC_ALLOC_COUNT] = {
	[PROC_ALLOC_UNKNOWN] = "unknown",
	[PROC_ALLOC_GLIBC] = "glibc",
	[PROC_ALLOC_EBBMALLOC] = "ebbmalloc",
	[PROC_ALLOC_JEMALLOC] = "jemalloc",
	[PROC_ALLOC_TCMALLOC] = "tcmalloc",
	[PROC_ALLOC_MIMALLOC] = "mimalloc",
	[PROC_ALLOC_MUSL] = "musl",
};

const char *proc_alloc_name(enum proc_alloc a)
{
	return a < PROC_ALLOC_COUNT ? alloc_names[a] : "unknown";
}

/* Which allocator a shared object is, from its file name. */
static enum proc_alloc proc_alloc_of_file(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (!strncmp(base, "libebbmalloc", 12))
		return PROC_ALLOC_EBBMALLOC;
	if (!strncmp(base, "libjemalloc", 11))
		return PROC_ALLOC_JEMALLOC;
	if (!strncmp(base, "libtcmalloc", 11))
		return PROC_ALLOC_TCMALLOC;
	if (!strncmp(base, "libmimalloc", 11))
		return PROC_ALLOC_MIMALLOC;
	if (!strncmp(base, "libc.so", 7) || !strncmp(base, "libc-2.", 7))
		return PROC_ALLOC_GLIBC;
	if (!strncmp(base, "ld-musl", 7) || !strncmp(base, "libc.musl", 9))
		return PROC_ALLOC_MUSL;
	return PROC_ALLOC_UNKNOWN;
}

void proc_allocs_from_maps(const char *maps, const char *ld_preload,
			   struct proc_allocs *out)
{
	static const enum proc_alloc order[] = {
		PROC_ALLOC_EBBMALLOC, PROC_ALLOC_JEMALLOC, PROC_ALLOC_TCMALLOC,
		PROC_ALLOC_MIMALLOC, PROC_ALLOC_MUSL, PROC_ALLOC_GLIBC,
	};
	const char *line;
	size_t i;

	memset(out, 0, sizeof(*out));
	for (line = maps; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t llen = eol ? (size_t)(eol - line) : strlen(line);
		const char *p = memchr(line, '/', llen);

		if (p) {
			char path[256];
			size_t plen = llen - (size_t)(p - line);
			enum proc_alloc a;

			if (plen >= sizeof(path))
				plen = sizeof(path) - 1;
			memcpy(path, p, plen);
			path[plen] = '\0';
			/* " (deleted)" after a replaced library still counts */
			a = proc_alloc_of_file(path);
			if (a != PROC_ALLOC_UNKNOWN && !(out->mapped_mask & (1u << a))) {
				out->mapped_mask |= 1u << a;
				snprintf(out->path[a], sizeof(out->path[a]), "%s", path);
			}
			if (strstr(path, "/libjvm.so"))
				out->jvm = 1;
		}
		line = eol ? eol + 1 : NULL;
	}

	/* a mapped replacement named in LD_PRELOAD serves malloc */
	if (ld_preload) {
		char *copy = strdup(ld_preload), *save = NULL, *tok;

		for (tok = copy ? strtok_r(copy, ": \t", &save) : NULL; tok;
		     tok = strtok_r(NULL, ": \t", &save)) {
			enum proc_alloc a = proc_alloc_of_file(tok);

			if (a != PROC_ALLOC_UNKNOWN && a != PROC_ALLOC_GLIBC &&
			    (out->mapped_mask & (1u << a))) {
				out->active = a;
				out->preloaded = 1;
				break;
			}
		}
		free(copy);
		if (out->active)
			return;
	}
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (out->mapped_mask & (1u << order[i])) {
			out->active = order[i];
			return;
		}
	}
	out->active = PROC_ALLOC_UNKNOWN;
}

int proc_thread_named(pid_t pid, const char *name)
{
	char path[64], comm[64];
	struct dirent *de;
	DIR *d;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/comm", (int)pid, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = '\0';
			found = !strcmp(comm, name);
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

int proc_exe_defines(pid_t pid, const char *sym)
{
	char path[64];
	Elf64_Ehdr eh;
	Elf64_Shdr *sh = NULL;
	char *str = NULL;
	Elf64_Sym *syms = NULL;
	int fd, found = 0;
	size_t i, n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 4096)
		goto out;
	sh = calloc(eh.e_shnum, sizeof(*sh));
	if (!sh || pread(fd, sh, eh.e_shnum * sizeof(*sh), (off_t)eh.e_shoff) !=
		   (ssize_t)(eh.e_shnum * sizeof(*sh)))
		goto out;
	for (i = 0; i < eh.e_shnum && !found; i++) {
		const Elf64_Shdr *ss, *st;

		if ((sh[i].sh_type != SHT_DYNSYM && sh[i].sh_type != SHT_SYMTAB) ||
		    sh[i].sh_link >= eh.e_shnum)
			continue;
		ss = &sh[i];
		st = &sh[ss->sh_link];
		if (ss->sh_size > (64u << 20) || st->sh_size > (64u << 20) ||
		    ss->sh_entsize != sizeof(Elf64_Sym))
			continue;
		syms = malloc(ss->sh_size);
		str = malloc(st->sh_size + 1);
		if (!syms || !str ||
		    pread(fd, syms, ss->sh_size, (off_t)ss->sh_offset) != (ssize_t)ss->sh_size ||
		    pread(fd, str, st->sh_size, (off_t)st->sh_offset) != (ssize_t)st->sh_size)
			goto out;
		str[st->sh_size] = '\0';
		n = ss->sh_size / sizeof(Elf64_Sym);
		for (size_t k = 0; k < n; k++)
			if (syms[k].st_shndx != SHN_UNDEF && syms[k].st_name < st->sh_size &&
			    ELF64_ST_TYPE(syms[k].st_info) == STT_FUNC &&
			    !strcmp(str + syms[k].st_name, sym)) {
				found = 1;
				break;
			}
		free(syms);
		free(str);
		syms = NULL;
		str = NULL;
	}
out:
	free(syms);
	free(str);
	free(sh);
	close(fd);
	return found;
}

int proc_allocs(pid_t pid, struct proc_allocs *out)
{
	char *maps, *env;
	size_t envlen = 0;
	const char *pre = NULL;

	maps = proc_read(pid, "maps", NULL);
	if (!maps)
		return -errno;
	env = proc_read(pid, "environ", &envlen);
	if (env)
		pre = proc_environ_get(env, envlen, "LD_PRELOAD");
	proc_allocs_from_maps(maps, pre, out);
	free(env);
	free(maps);
	if (!out->preloaded && (out->active == PROC_ALLOC_GLIBC || out->active == PROC_ALLOC_UNKNOWN) &&
	    proc_exe_defines(pid, "malloc")) {
		/* linked into the program: which one, from its own symbols (when
		 * the program is not stripped) or its threads' names */
		if (proc_exe_defines(pid, "ebb_malloc") || proc_thread_named(pid, "ebb-reclaim"))
			out->active = PROC_ALLOC_EBBMALLOC;
		else if (proc_exe_defines(pid, "mallctl") || proc_exe_defines(pid, "je_mallctl") ||
			 proc_thread_named(pid, "jemalloc_bg_thd"))
			out->active = PROC_ALLOC_JEMALLOC;
		else if (proc_exe_defines(pid, "tc_malloc"))
			out->active = PROC_ALLOC_TCMALLOC;
		else if (proc_exe_defines(pid, "mi_malloc"))
			out->active = PROC_ALLOC_MIMALLOC;
		else
			out->active = PROC_ALLOC_UNKNOWN;
		out->linked = 1;
		snprintf(out->path[out->active], sizeof(out->path[0]), "linked into the program");
	}
	return 0;
}
