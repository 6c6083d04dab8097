/*
 * ebb_doctor.c - ebb-doctor: what is this process's heap doing?
 *
 *   ebb-doctor [-v] [--json] [--shape-only] PID
 *
 * Works on any process (glibc, jemalloc, tcmalloc, mimalloc, ebbmalloc, a
 * JVM), from /proc/PID/smaps (or maps when smaps is not readable), its
 * environment, its executable's symbols (proc.c) and, to confirm glibc
 * heaps and walk their free lists, its memory read through /proc/PID/mem.
 * Nothing is written and the process is not stopped. Sections, in order:
 * loading the mappings, glibc heaps, free memory inside glibc's arenas,
 * totals, anonymous memory by mapping size, output (JSON, text with the
 * finding).
 *
 * glibc arena heaps. A non-main glibc arena lives in heaps: anonymous,
 * private mappings of HEAP_MAX_SIZE = 2 * DEFAULT_MMAP_THRESHOLD_MAX = 64 MiB
 * (64-bit), aligned to 64 MiB, whose used prefix is rw-p and whose rest is a
 * ---p reservation. Each heap starts with glibc's heap_info header:
 * { ar_ptr, prev, size, mprotect_size, ... }, where ar_ptr points into the
 * header area of the arena's first heap (32 or 48 bytes past a 64 MiB
 * boundary), prev is 0 or another heap, and size <= mprotect_size <= 64 MiB.
 * When /proc/PID/mem can be read we accept a 64 MiB-aligned rw-p address as
 * a heap only if that header checks out (this also finds fully grown heaps
 * the kernel merged with a neighbour, and groups heaps by arena); otherwise
 * we fall back to the mapping shape alone. The main arena is the brk
 * [heap]. RSS of a mapping that spans more than one heap is shared out in
 * proportion to size (smaps has no finer figure).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools.h"

#define HEAP_BYTES	(64 * MIB)
#define PAGE_BYTES	4096ULL

struct vma {
	uint64_t start, end;
	char perms[5];
	uint64_t inode;
	char name[160];
	uint64_t rss_kib, anon_kib, swap_kib;
	int anon;		/* no file behind it (unnamed or [anon:...]) */
	int in_heap;		/* part of a glibc arena heap */
};

struct heap {
	uint64_t base;
	uint64_t used_bytes;	/* heap_info.size, or the rw-p length */
	uint64_t arena;		/* ar_ptr, or base when not verified */
	uint64_t rss_kib;
	int verified;
};

struct doctor {
	pid_t pid;
	struct vma *v;
	size_t nv, capv;
	struct heap *h;
	size_t nh, caph;
	int have_rss;		/* smaps was readable */
	int mem_ok;		/* /proc/PID/mem was readable */
	int shape_only;		/* --shape-only: do not read /proc/PID/mem */
	struct proc_allocs al;
	char *env;
	size_t envlen;
	char cmd[512];
	long threads;
	long long vmrss_kib;
	/* totals */
	uint64_t rss_kib, anon_kib, file_kib, swap_kib;
	uint64_t mainheap_rss_kib, mainheap_bytes;
	uint64_t heaps_rss_kib, heaps_used_bytes;
	size_t narenas;
	/* free chunks inside glibc's arenas (walk of their bins) */
	int walk_ok;			/* every arena walked and consistent */
	int main_found;			/* main_arena located and walked */
	uint64_t arena_free_bytes, arena_top_bytes, arena_system_bytes;
	uint64_t main_free_bytes, main_top_bytes, main_system_bytes;
	int has_stats_file;
	int has_stats;		/* stats read from that file */
	struct ebb_stats_file stats;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ebb-doctor [-v] [--json] [--shape-only] PID\n"
		"\n"
		"Diagnoses the heap of any process from /proc/PID/smaps: which allocator\n"
		"serves malloc (glibc, ebbmalloc, jemalloc, tcmalloc, mimalloc), glibc's\n"
		"arena heaps (64 MiB mappings: count and RSS) and main heap, anonymous\n"
		"memory by mapping size, and a finding with a recommendation.\n"
		"Run it as the process's user or as root.\n"
		"\n"
		"  -v          list every glibc arena heap\n"
		"  --json      machine-readable output\n"
		"  --shape-only  find glibc heaps from the mappings' shape alone, without\n"
		"              checking their headers through /proc/PID/mem\n"
		"  -h, --help  this text\n");
}

static int is_anon(const struct vma *v)
{
	if (v->inode)
		return 0;
	return v->name[0] == '\0' || !strncmp(v->name, "[anon:", 6);
}

/* glibc >= 2.40 can name its mappings ("[anon: glibc: malloc arena]") */
static int heap_name_ok(const struct vma *v)
{
	return v->name[0] == '\0' || strstr(v->name, "malloc arena");
}

static int doctor_load(struct doctor *d)
{
	char *text, *line, *eol;
	struct vma *cur = NULL;

	text = proc_read(d->pid, "smaps", NULL);
	d->have_rss = text != NULL;
	if (!text)
		text = proc_read(d->pid, "maps", NULL);
	if (!text)
		return -errno;
	for (line = text; line && *line; line = eol ? eol + 1 : NULL) {
		unsigned long long s, e, off, ino;
		unsigned maj, mn;
		char perms[8];
		int n = 0;

		eol = strchr(line, '\n');
		if (eol)
			*eol = '\0';
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &s, &e, perms, &off,
			   &maj, &mn, &ino, &n) >= 7 && n > 0) {
			if (d->nv == d->capv) {
				size_t nc = d->capv ? d->capv * 2 : 256;
				struct vma *nvv = realloc(d->v, nc * sizeof(*nvv));

				if (!nvv) {
					free(text);
					return -ENOMEM;
				}
				d->v = nvv;
				d->capv = nc;
			}
			cur = &d->v[d->nv++];
			memset(cur, 0, sizeof(*cur));
			cur->start = s;
			cur->end = e;
			memcpy(cur->perms, perms, 4);
			cur->perms[4] = '\0';
			cur->inode = ino;
			snprintf(cur->name, sizeof(cur->name), "%s", line + n);
			cur->anon = is_anon(cur);
			continue;
		}
		if (!cur)
			continue;
		if (!strncmp(line, "Rss:", 4))
			cur->rss_kib = strtoull(line + 4, NULL, 10);
		else if (!strncmp(line, "Anonymous:", 10))
			cur->anon_kib = strtoull(line + 10, NULL, 10);
		else if (!strncmp(line, "Swap:", 5))
			cur->swap_kib = strtoull(line + 5, NULL, 10);
	}
	free(text);
	return 0;
}

/* The end of the run of contiguous rw-p anonymous mappings starting in v[i]. */
static uint64_t rw_run_end(const struct doctor *d, size_t i)
{
	uint64_t end = d->v[i].end;

	while (i + 1 < d->nv && d->v[i + 1].start == end && d->v[i + 1].anon &&
	       !strcmp(d->v[i + 1].perms, "rw-p")) {
		i++;
		end = d->v[i].end;
	}
	return end;
}

static int add_heap(struct doctor *d, const struct heap *h)
{
	if (d->nh == d->caph) {
		size_t nc = d->caph ? d->caph * 2 : 32;
		struct heap *nh = realloc(d->h, nc * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		d->h = nh;
		d->caph = nc;
	}
	d->h[d->nh++] = *h;
	return 0;
}

/* Reads and checks glibc's heap_info at base. Returns 1 if it is a heap. */
static int heap_verify(int memfd, uint64_t base, uint64_t rw_bytes, struct heap *h)
{
	uint64_t w[4];	/* ar_ptr, prev, size, mprotect_size */
	uint64_t off;

	if (pread(memfd, w, sizeof(w), (off_t)base) != (ssize_t)sizeof(w))
		return 0;
	off = w[0] & (HEAP_BYTES - 1);
	if (off != 32 && off != 48)
		return 0;
	if (w[1] == 0 && w[0] != base + off)
		return 0;	/* an arena's first heap holds its malloc_state */
	if (w[1] & (HEAP_BYTES - 1))
		return 0;
	if (!w[2] || w[2] > HEAP_BYTES || (w[2] & (PAGE_BYTES - 1)))
		return 0;
	if (w[3] < w[2] || w[3] > HEAP_BYTES || (w[3] & (PAGE_BYTES - 1)))
		return 0;
	if (w[2] > rw_bytes)
		return 0;
	h->base = base;
	h->used_bytes = w[2];
	h->arena = w[0];
	h->verified = 1;
	return 1;
}

/* ---- free memory inside glibc's arenas ------------------------------------
 *
 * glibc's struct malloc_state (x86-64, glibc 2.26 and later):
 *   0 mutex, 4 flags, 8 have_fastchunks, 16 fastbinsY[10], 96 top,
 *   104 last_remainder, 112 bins[254], 2144 binmap[4], 2160 next,
 *   2168 next_free, 2176 attached_threads, 2184 system_mem, 2192 max_system_mem
 * Bin i (1 = unsorted, 2..63 small, 64..126 large) is a circular list whose
 * header is the fake chunk at &bins[2 * (i - 1)] - 16; fastbins are
 * NULL-terminated lists whose links are "safe-linked" since glibc 2.32
 * (stored = next ^ (address of the link >> 12)). A chunk is
 * { prev_size, size | flags, fd, bk }. The process keeps running while we
 * read, so every pointer is checked against the arena's own heaps and the
 * walk is bounded; an arena that does not check out is left out, and the
 * figure is reported as partial. Chunks in threads' tcaches are not counted.
 */
#define MS_FASTBINS	16
#define MS_TOP		96
#define MS_BINS		112
#define MS_NEXT		2160
#define MS_SYSTEM_MEM	2184
#define MS_BYTES	2200
#define MS_NBINS	127
#define MS_NFAST	10
#define WALK_MAX_CHUNKS	200000

struct range {
	uint64_t lo, hi;
};

static int in_ranges(const struct range *r, size_t n, uint64_t p, uint64_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p >= r[i].lo && p + len <= r[i].hi && p + len >= p)
			return 1;
	return 0;
}

static uint64_t ms_word(const unsigned char *ms, size_t off)
{
	uint64_t v;

	memcpy(&v, ms + off, sizeof(v));
	return v;
}

/* Sums the free chunks of the arena at addr whose memory lies in r[]. */
static int walk_arena(int memfd, uint64_t addr, const struct range *r, size_t nr,
		      uint64_t *free_bytes, uint64_t *top_bytes, uint64_t *system_bytes)
{
	unsigned char ms[MS_BYTES];
	uint64_t sum = 0, top, c[4];
	size_t chunks = 0;
	int i;

	if (pread(memfd, ms, sizeof(ms), (off_t)addr) != (ssize_t)sizeof(ms))
		return -1;
	top = ms_word(ms, MS_TOP);
	if ((top & 15) || !in_ranges(r, nr, top, 32) ||
	    pread(memfd, c, 16, (off_t)top) != 16)
		return -1;
	*top_bytes = c[1] & ~7ULL;
	*system_bytes = ms_word(ms, MS_SYSTEM_MEM);
	for (i = 1; i < MS_NBINS; i++) {
		uint64_t hdr = addr + MS_BINS + 16 * (uint64_t)(i - 1) - 16;
		uint64_t p = ms_word(ms, MS_BINS + 16 * (size_t)(i - 1));

		while (p != hdr) {
			if ((p & 15) || !in_ranges(r, nr, p, 32) || ++chunks > WALK_MAX_CHUNKS ||
			    pread(memfd, c, sizeof(c), (off_t)p) != (ssize_t)sizeof(c))
				return -1;
			c[1] &= ~7ULL;
			if (c[1] < 32 || !in_ranges(r, nr, p, c[1]))
				return -1;
			sum += c[1];
			p = c[2];
		}
	}
	for (i = 0; i < MS_NFAST; i++) {
		uint64_t p = ms_word(ms, MS_FASTBINS + 8 * (size_t)i);

		while (p) {
			uint64_t next;

			if ((p & 15) || !in_ranges(r, nr, p, 32) || ++chunks > WALK_MAX_CHUNKS ||
			    pread(memfd, c, 24, (off_t)p) != 24)
				return -1;
			c[1] &= ~7ULL;
			if (c[1] < 32 || c[1] > 256)
				return -1;
			sum += c[1];
			next = c[2] ^ ((p + 16) >> 12);		/* safe-linking */
			if (next && !in_ranges(r, nr, next, 32))
				next = c[2];			/* glibc < 2.32 */
			p = next;
		}
	}
	*free_bytes = sum;
	return 0;
}

static void walk_arenas(struct doctor *d, int memfd)
{
	struct range *r = calloc(d->nh ? d->nh : 1, sizeof(*r));
	uint64_t main_addr = 0;
	size_t i, j;
	int bad = 0;

	if (!r)
		return;
	for (i = 0; i < d->nh; i++) {
		size_t nr = 0;
		uint64_t f, t, sys, heap_sum = 0;

		for (j = 0; j < i; j++)
			if (d->h[j].arena == d->h[i].arena)
				break;
		if (j < i)
			continue;	/* arena already walked */
		for (j = 0; j < d->nh; j++)
			if (d->h[j].arena == d->h[i].arena) {
				r[nr].lo = d->h[j].base;
				r[nr].hi = d->h[j].base + d->h[j].used_bytes;
				heap_sum += d->h[j].used_bytes;
				nr++;
			}
		if (walk_arena(memfd, d->h[i].arena, r, nr, &f, &t, &sys) != 0 || sys != heap_sum) {
			bad = 1;
			continue;
		}
		d->arena_free_bytes += f;
		d->arena_top_bytes += t;
		d->arena_system_bytes += sys;
		if (!main_addr) {
			/* the ring of arenas: the member outside every heap is main_arena */
			uint64_t a = d->h[i].arena;
			int steps;

			for (steps = 0; steps < 1024; steps++) {
				if (pread(memfd, &a, 8, (off_t)(a + MS_NEXT)) != 8 || !a)
					break;
				for (j = 0; j < d->nh; j++)
					if (a >= d->h[j].base && a < d->h[j].base + HEAP_BYTES)
						break;
				if (j == d->nh) {
					main_addr = a;
					break;
				}
			}
		}
	}
	d->walk_ok = d->nh > 0 && !bad;

	/* the main arena: its chunks live in the brk [heap] */
	if (main_addr) {
		size_t nr = 0;
		uint64_t f, t, sys;

		free(r);
		r = calloc(d->nv, sizeof(*r));
		for (i = 0; r && i < d->nv; i++)
			if (!strcmp(d->v[i].name, "[heap]")) {
				r[nr].lo = d->v[i].start;
				r[nr].hi = d->v[i].end;
				nr++;
			}
		if (r && nr && walk_arena(memfd, main_addr, r, nr, &f, &t, &sys) == 0) {
			d->main_found = 1;
			d->main_free_bytes = f;
			d->main_top_bytes = t;
			d->main_system_bytes = sys;
		}
	}
	free(r);
}

static void find_heaps(struct doctor *d)
{
	char path[64];
	size_t i, j;
	int memfd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)d->pid);
	memfd = d->shape_only ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	d->mem_ok = memfd >= 0;

	for (i = 0; i < d->nv; i++) {
		const struct vma *v = &d->v[i];
		uint64_t b;

		if (!v->anon || !heap_name_ok(v) || strcmp(v->perms, "rw-p"))
			continue;
		for (b = (v->start + HEAP_BYTES - 1) & ~(HEAP_BYTES - 1); b < v->end; b += HEAP_BYTES) {
			struct heap h = { 0 };

			if (memfd >= 0) {
				if (!heap_verify(memfd, b, rw_run_end(d, i) - b, &h))
					continue;
			} else {
				/* shape only: a mapping that starts the heap, rw-p,
				 * then its ---p reservation up to (at least) 64 MiB */
				uint64_t len = v->end - v->start;

				if (b != v->start || len > HEAP_BYTES)
					continue;
				if (len < HEAP_BYTES &&
				    !(i + 1 < d->nv && d->v[i + 1].start == v->end &&
				      d->v[i + 1].anon && !strcmp(d->v[i + 1].perms, "---p") &&
				      d->v[i + 1].end >= b + HEAP_BYTES))
					continue;
				h.base = b;
				h.used_bytes = len;
				h.arena = b;
			}
			if (add_heap(d, &h))
				break;
		}
	}
	if (memfd >= 0) {
		walk_arenas(d, memfd);
		close(memfd);
	}

	/* RSS of each heap, from the mappings that overlap it */
	for (j = 0; j < d->nh; j++) {
		struct heap *h = &d->h[j];
		uint64_t hend = h->base + HEAP_BYTES;
		double rss = 0;

		for (i = 0; i < d->nv; i++) {
			struct vma *v = &d->v[i];
			uint64_t s = v->start > h->base ? v->start : h->base;
			uint64_t e = v->end < hend ? v->end : hend;

			if (e <= s || !v->anon)
				continue;
			rss += (double)v->rss_kib * (double)(e - s) / (double)(v->end - v->start);
			if (v->start >= h->base)
				v->in_heap = 1;
		}
		h->rss_kib = (uint64_t)(rss + 0.5);
		d->heaps_rss_kib += h->rss_kib;
		d->heaps_used_bytes += h->used_bytes;
	}
	/* arenas: distinct ar_ptr values */
	for (j = 0; j < d->nh; j++) {
		for (i = 0; i < j; i++)
			if (d->h[i].arena == d->h[j].arena)
				break;
		if (i == j)
			d->narenas++;
	}
}

static void totals(struct doctor *d)
{
	size_t i;

	for (i = 0; i < d->nv; i++) {
		const struct vma *v = &d->v[i];

		d->rss_kib += v->rss_kib;
		d->anon_kib += v->anon_kib;
		d->swap_kib += v->swap_kib;
		if (!strcmp(v->name, "[heap]")) {
			d->mainheap_rss_kib += v->rss_kib;
			d->mainheap_bytes += v->end - v->start;
		}
	}
	d->file_kib = d->rss_kib > d->anon_kib ? d->rss_kib - d->anon_kib : 0;
}

/* ---- anonymous memory by mapping size ------------------------------------ */

static const struct {
	uint64_t below;
	const char *label;
} buckets[] = {
	{ 64 * KIB, "< 64 KiB" },
	{ 1 * MIB, "64 KiB - 1 MiB" },
	{ 8 * MIB, "1 - 8 MiB" },
	{ 8 * MIB + 64 * KIB, "8 MiB (stacks)" },
	{ 64 * MIB, "8 - 64 MiB" },
	{ 64 * MIB + 1, "64 MiB" },
	{ 1 * GIB, "64 MiB - 1 GiB" },
	{ UINT64_MAX, ">= 1 GiB" },
};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct group {
	char name[160];
	size_t count;
	uint64_t bytes, rss_kib;
};

struct anon_summary {
	struct group size[NBUCKETS];
	struct group reserved;		/* ---p: address space only */
	struct group named[32];
	size_t nnamed;
};

static void anon_groups(const struct doctor *d, struct anon_summary *a)
{
	size_t i, k;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < d->nv; i++) {
		const struct vma *v = &d->v[i];
		uint64_t len = v->end - v->start;
		struct group *g;

		if (!v->anon || v->in_heap)
			continue;
		if (!strcmp(v->perms, "---p")) {
			g = &a->reserved;
		} else if (v->name[0]) {
			for (k = 0; k < a->nnamed; k++)
				if (!strcmp(a->named[k].name, v->name))
					break;
			if (k == a->nnamed) {
				if (k == sizeof(a->named) / sizeof(a->named[0]))
					k--;	/* the last row collects the rest */
				else
					a->nnamed++;
				snprintf(a->named[k].name, sizeof(a->named[k].name), "%s", v->name);
			}
			g = &a->named[k];
		} else {
			for (k = 0; k < NBUCKETS - 1 && len >= buckets[k].below; k++)
				;
			g = &a->size[k];
		}
		g->count++;
		g->bytes += len;
		g->rss_kib += v->rss_kib;
	}
}

/* ---- findings -------------------------------------------------------------- */

static long arena_limit(const struct doctor *d, int *from_env)
{
	const char *v = proc_environ_get(d->env, d->envlen, "MALLOC_ARENA_MAX");
	long n;

	*from_env = 0;
	if (v && (n = atol(v)) > 0) {
		*from_env = 1;
		return n;
	}
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return 8 * (n > 0 ? n : 1);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const struct doctor *d, const struct anon_summary *a)
{
	int env_limit;
	long limit = arena_limit(d, &env_limit);
	size_t k;

	printf("{\n  \"pid\": %d,\n  \"cmdline\": ", (int)d->pid);
	json_str(d->cmd);
	printf(",\n  \"allocator\": \"%s\",\n", proc_alloc_name(d->al.active));
	printf("  \"preloaded\": %s,\n", d->al.preloaded ? "true" : "false");
	printf("  \"linked\": %s,\n", d->al.linked ? "true" : "false");
	printf("  \"jvm\": %s,\n", d->al.jvm ? "true" : "false");
	printf("  \"mapped_allocators\": [");
	for (k = 1; k < PROC_ALLOC_COUNT; k++)
		if (d->al.mapped_mask & (1u << k))
			printf("%s\"%s\"", (d->al.mapped_mask & ((1u << k) - 2)) ? ", " : "",
			       proc_alloc_name((enum proc_alloc)k));
	printf("],\n");
	printf("  \"threads\": %ld,\n", d->threads);
	printf("  \"rss_known\": %s,\n", d->have_rss ? "true" : "false");
	printf("  \"rss_kib\": %" PRIu64 ",\n  \"anon_rss_kib\": %" PRIu64 ",\n"
	       "  \"file_rss_kib\": %" PRIu64 ",\n  \"swap_kib\": %" PRIu64 ",\n",
	       d->rss_kib, d->anon_kib, d->file_kib, d->swap_kib);
	printf("  \"main_heap_bytes\": %" PRIu64 ",\n  \"main_heap_rss_kib\": %" PRIu64 ",\n",
	       d->mainheap_bytes, d->mainheap_rss_kib);
	printf("  \"arena_heaps\": %zu,\n  \"arenas\": %zu,\n", d->nh, d->narenas);
	printf("  \"arena_heaps_verified\": %s,\n", d->mem_ok ? "true" : "false");
	printf("  \"arena_heaps_rss_kib\": %" PRIu64 ",\n  \"arena_heaps_used_bytes\": %" PRIu64 ",\n",
	       d->heaps_rss_kib, d->heaps_used_bytes);
	printf("  \"arena_walk_ok\": %s,\n", d->walk_ok ? "true" : "false");
	printf("  \"arena_free_bytes\": %" PRIu64 ",\n  \"arena_top_bytes\": %" PRIu64 ",\n"
	       "  \"arena_system_bytes\": %" PRIu64 ",\n", d->arena_free_bytes, d->arena_top_bytes,
	       d->arena_system_bytes);
	printf("  \"main_arena_found\": %s,\n", d->main_found ? "true" : "false");
	printf("  \"main_free_bytes\": %" PRIu64 ",\n  \"main_top_bytes\": %" PRIu64 ",\n"
	       "  \"main_system_bytes\": %" PRIu64 ",\n", d->main_free_bytes, d->main_top_bytes,
	       d->main_system_bytes);
	printf("  \"ebb_stats_file\": %s,\n", d->has_stats_file ? "true" : "false");
	if (d->has_stats) {
		const struct ebb_stats *st = &d->stats.stats;

		printf("  \"ebb_allocated_bytes\": %" PRIu64 ",\n  \"ebb_active_bytes\": %" PRIu64 ",\n"
		       "  \"ebb_dirty_bytes\": %" PRIu64 ",\n  \"ebb_mapped_bytes\": %" PRIu64 ",\n"
		       "  \"ebb_purged_bytes\": %" PRIu64 ",\n", st->allocated_bytes, st->active_bytes,
		       st->dirty_bytes, st->mapped_bytes, st->purged_bytes);
		printf("  \"ebb_purged_decay_bytes\": %" PRIu64 ",\n  \"ebb_purged_cap_bytes\": %" PRIu64 ",\n"
		       "  \"ebb_purged_forced_bytes\": %" PRIu64 ",\n  \"ebb_dirty_cap_bytes\": %" PRIu64 ",\n",
		       st->purged_decay_bytes, st->purged_cap_bytes, st->purged_forced_bytes, st->dirty_cap_bytes);
	}
	printf("  \"arena_limit\": %ld,\n  \"malloc_arena_max_set\": %s,\n", limit,
	       env_limit ? "true" : "false");
	printf("  \"anon_by_size\": [");
	for (k = 0; k < NBUCKETS; k++)
		printf("%s\n    {\"size\": \"%s\", \"mappings\": %zu, \"bytes\": %" PRIu64
		       ", \"rss_kib\": %" PRIu64 "}", k ? "," : "", buckets[k].label,
		       a->size[k].count, a->size[k].bytes, a->size[k].rss_kib);
	printf("\n  ],\n  \"anon_named\": [");
	for (k = 0; k < a->nnamed; k++) {
		printf("%s\n    {\"name\": ", k ? "," : "");
		json_str(a->named[k].name);
		printf(", \"mappings\": %zu, \"bytes\": %" PRIu64 ", \"rss_kib\": %" PRIu64 "}",
		       a->named[k].count, a->named[k].bytes, a->named[k].rss_kib);
	}
	printf("%s],\n  \"heaps\": [", a->nnamed ? "\n  " : "");
	for (k = 0; k < d->nh; k++)
		printf("%s\n    {\"base\": \"0x%" PRIx64 "\", \"used_bytes\": %" PRIu64
		       ", \"rss_kib\": %" PRIu64 ", \"arena\": \"0x%" PRIx64 "\"}",
		       k ? "," : "", d->h[k].base, d->h[k].used_bytes, d->h[k].rss_kib,
		       d->h[k].arena);
	printf("%s]\n}\n", d->nh ? "\n  " : "");
}

#define KB(kib, i) fmt_bytes((uint64_t)(kib) * 1024, b[i], sizeof(b[0]))
#define BY(bytes, i) fmt_bytes((bytes), b[i], sizeof(b[0]))

static void print_text(const struct doctor *d, const struct anon_summary *a, int verbose)
{
	char b[6][24], shortcmd[120];
	int env_limit;
	long limit = arena_limit(d, &env_limit);
	enum proc_alloc al = d->al.active;
	size_t k;
	uint64_t free_b;
	int said = 0;

	snprintf(shortcmd, sizeof(shortcmd), "%.*s", (int)sizeof(shortcmd) - 1,
		 d->cmd[0] ? d->cmd : "COMMAND");
	if (strlen(d->cmd) >= sizeof(shortcmd))
		memcpy(shortcmd + sizeof(shortcmd) - 4, "...", 4);

	printf("ebb-doctor: pid %d  %s\n", (int)d->pid, shortcmd);
	if (d->have_rss)
		printf("threads %ld   RSS %s (anonymous %s, file %s), swap %s\n\n", d->threads,
		       KB(d->rss_kib, 0), KB(d->anon_kib, 1), KB(d->file_kib, 2),
		       KB(d->swap_kib, 3));
	else
		printf("threads %ld   VmRSS %s (smaps not readable: per-mapping RSS unknown; "
		       "run as the process's user or root)\n\n", d->threads,
		       d->vmrss_kib >= 0 ? KB(d->vmrss_kib, 0) : "?");

	printf("allocator     %s", al == PROC_ALLOC_GLIBC ? "glibc malloc" :
	       al != PROC_ALLOC_UNKNOWN ? proc_alloc_name(al) :
	       d->al.linked ? "a malloc linked into the program (not glibc's; which one is not known)" :
	       "unknown (no libc mapped: static binary?)");
	if (al != PROC_ALLOC_UNKNOWN)
		printf(" (%s%s)", d->al.preloaded ? "LD_PRELOAD " : "", d->al.path[al]);
	printf("\n");
	for (k = 1; k < PROC_ALLOC_COUNT; k++)
		if (k != (size_t)al && k != PROC_ALLOC_GLIBC && (d->al.mapped_mask & (1u << k)))
			printf("              also mapped, not serving malloc: %s (%s)\n",
			       proc_alloc_name((enum proc_alloc)k), d->al.path[k]);
	if (d->al.jvm)
		printf("              this is a JVM (libjvm.so): the Java heap is among the large "
		       "anonymous mappings\n");

	printf("heaps         brk heap [heap]%s: %s RSS of %s\n",
	       al == PROC_ALLOC_GLIBC ? " (glibc main arena)" : "", KB(d->mainheap_rss_kib, 0),
	       BY(d->mainheap_bytes, 1));
	printf("              glibc arena heaps: %zu in %zu arena%s, %s RSS, %s in use of %s reserved%s\n",
	       d->nh, d->narenas, d->narenas == 1 ? "" : "s", KB(d->heaps_rss_kib, 0),
	       BY(d->heaps_used_bytes, 1), BY((uint64_t)d->nh * HEAP_BYTES, 2),
	       d->nh && !d->mem_ok ? " (found by shape only)" : "");
	if (d->nh && d->mem_ok)
		printf("              free chunks in them: %s, plus %s at the heaps' tops, of %s "
		       "from the kernel%s\n", BY(d->arena_free_bytes, 0), BY(d->arena_top_bytes, 1),
		       BY(d->arena_system_bytes, 2),
		       d->walk_ok ? "" : " (partial: some arenas changed while read)");
	if (d->main_found)
		printf("              main arena: free chunks %s, plus %s at the top, of %s from the kernel\n",
		       BY(d->main_free_bytes, 0), BY(d->main_top_bytes, 1), BY(d->main_system_bytes, 2));
	if (al == PROC_ALLOC_GLIBC)
		printf("              arena limit %ld (%s)\n", limit,
		       env_limit ? "MALLOC_ARENA_MAX" : "8 x online CPUs; MALLOC_ARENA_MAX not set");
	if (verbose)
		for (k = 0; k < d->nh; k++)
			printf("                heap 0x%" PRIx64 "  in use %10s  RSS %10s  arena 0x%" PRIx64 "\n",
			       d->h[k].base, BY(d->h[k].used_bytes, 0), KB(d->h[k].rss_kib, 1),
			       d->h[k].arena);

	printf("\nanonymous memory by mapping size (glibc heaps not included)\n");
	printf("  %-20s %8s %12s %12s\n", "mapping size", "count", "size", "RSS");
	for (k = 0; k < NBUCKETS; k++)
		if (a->size[k].count)
			printf("  %-20s %8zu %12s %12s\n", buckets[k].label, a->size[k].count,
			       BY(a->size[k].bytes, 0), d->have_rss ? KB(a->size[k].rss_kib, 1) : "?");
	if (a->reserved.count)
		printf("  %-20s %8zu %12s %12s\n", "reserved (---p)", a->reserved.count,
		       BY(a->reserved.bytes, 0), "-");
	if (a->nnamed) {
		printf("named anonymous mappings\n");
		for (k = 0; k < a->nnamed; k++)
			printf("  %-32.32s %8zu %12s %12s\n", a->named[k].name, a->named[k].count,
			       BY(a->named[k].bytes, 0), d->have_rss ? KB(a->named[k].rss_kib, 1) : "?");
	}

	printf("\n");
	switch (al) {
	case PROC_ALLOC_GLIBC:
		if (d->nh >= 1 && (d->heaps_rss_kib >= 64 * 1024 ||
				   (d->heaps_rss_kib >= 16 * 1024 && d->heaps_rss_kib * 4 >= d->anon_kib))) {
			printf("finding: %zu glibc arena heaps hold %s RSS", d->nh, KB(d->heaps_rss_kib, 0));
			if (d->anon_kib)
				printf(" (%.0f%% of anonymous RSS)",
				       100.0 * (double)d->heaps_rss_kib / (double)d->anon_kib);
			printf(".\n");
			free_b = d->arena_free_bytes + d->arena_top_bytes;
			if (d->mem_ok && d->arena_system_bytes && free_b * 3 >= d->arena_system_bytes) {
				printf("  %s of the %s they got from the kernel (%.0f%%) is free chunks: memory\n"
				       "  the program freed but glibc keeps, each arena on its own (up to %ld\n"
				       "  arenas here, 64 MiB heaps each). That is fragmentation, not live data.\n",
				       BY(free_b, 0), BY(d->arena_system_bytes, 1),
				       100.0 * (double)free_b / (double)d->arena_system_bytes, limit);
			} else if (d->mem_ok && d->arena_system_bytes) {
				printf("  Only %s of the %s they got from the kernel is free chunks: most of it\n"
				       "  is live data now. But freed memory stays with the arena that freed it\n"
				       "  (up to %ld arenas here, 64 MiB heaps each): if RSS keeps growing\n"
				       "  (rsswatch %d), the arenas are the place to look.\n",
				       BY(free_b, 0), BY(d->arena_system_bytes, 1), limit, (int)d->pid);
			} else {
				printf("  glibc gives threads their own arenas (up to %ld here), each a 64 MiB\n"
				       "  heap that keeps its freed memory resident on its own: with many threads\n"
				       "  RSS grows far beyond the live heap.\n", limit);
			}
			printf("try: ebbrun -- %s\n", shortcmd);
			printf("     (ebbmalloc: one arena per NUMA node, freed pages returned by a\n"
			       "     background thread)\n");
			printf("  or MALLOC_ARENA_MAX=2 %s\n", shortcmd);
			printf("     (fewer arenas, less RSS, more lock contention)\n");
			said = 1;
		} else {
			printf("finding: glibc malloc with %zu arena heap%s (%s RSS) and a %s main heap:\n"
			       "  arena fragmentation is not what holds this process's memory now",
			       d->nh, d->nh == 1 ? "" : "s", KB(d->heaps_rss_kib, 0),
			       KB(d->mainheap_rss_kib, 1));
			if (d->nh >= 4)
				printf(";\n  but with %zu arenas (limit %ld) each can grow to 64 MiB: "
				       "watch it with rsswatch %d", d->nh, limit, (int)d->pid);
			printf(".\n");
			said = 1;
		}
		if (d->mainheap_rss_kib >= 256 * 1024)
			printf("note: the main heap holds %s RSS; malloc_trim(0) may give freed parts back%s\n",
			       KB(d->mainheap_rss_kib, 0), d->al.jvm ? " (jcmd PID System.trim_native_heap)" : "");
		if (d->al.jvm)
			printf("JVM: native memory by subsystem: start with -XX:NativeMemoryTracking=summary,\n"
			       "     then jcmd %d VM.native_memory summary; give freed glibc memory back now:\n"
			       "     jcmd %d System.trim_native_heap\n", (int)d->pid, (int)d->pid);
		break;
	case PROC_ALLOC_EBBMALLOC:
		printf("finding: ebbmalloc serves malloc (glibc arena heaps: %zu).\n", d->nh);
		if (d->has_stats) {
			const struct ebb_stats *st = &d->stats.stats;

			printf("  from its stats file: allocated %s, active %s, dirty %s, mapped %s,\n"
			       "  purged so far %s by the %s backend.\n",
			       BY(st->allocated_bytes, 0), BY(st->active_bytes, 1), BY(st->dirty_bytes, 2),
			       BY(st->mapped_bytes, 3), BY(st->purged_bytes, 4), st->backend);
			if (st->dirty_bytes > 64 * MIB && st->dirty_bytes * 2 > st->active_bytes)
				printf("  %s of freed pages wait for their purge: is decay_ms large, or "
				       "reclaim=off?\n", BY(st->dirty_bytes, 0));
			uint64_t why = st->purged_decay_bytes + st->purged_cap_bytes + st->purged_forced_bytes;
			if (why >= 256 * MIB && st->purged_cap_bytes * 2 > why)
				printf("  %s of the %s purged was taken early, over the dirty cap (now %s):\n"
				       "  active memory swings faster than decay_ms, and the pages purged are\n"
				       "  faulted in again. If the page faults cost more than the RSS, raise\n"
				       "  EBB_DIRTY_CAP_PCT (dirty_cap_pct), or EBB_DIRTY_HOLD_MS (dirty_hold_ms)\n"
				       "  with EBB_DECAY_MS (decay_ms): the hold is at most the decay.\n",
				       BY(st->purged_cap_bytes, 0), BY(why, 1), BY(st->dirty_cap_bytes, 2));
		}
		if (d->has_stats_file)
			printf("live figures (active, dirty, purged): ebbstat %d\n", (int)d->pid);
		else
			printf("live figures: restart with EBB_STATS_FILE=/tmp/ebb.%%p (or ebbrun -o "
			       "stats_file=/tmp/ebb.%%p -- ...), then ebbstat %d\n", (int)d->pid);
		said = 1;
		break;
	case PROC_ALLOC_JEMALLOC:
	case PROC_ALLOC_TCMALLOC:
	case PROC_ALLOC_MIMALLOC:
		printf("finding: %s serves malloc (glibc arena heaps: %zu); its memory is in the\n"
		       "  anonymous mappings above.\n", proc_alloc_name(al), d->nh);
		printf("compare: rsswatch -o %s.csv -- %s   and   rsswatch -o ebb.csv -- ebbrun -- %s\n",
		       proc_alloc_name(al), shortcmd, shortcmd);
		said = 1;
		break;
	default:
		break;
	}
	if (!said)
		printf("finding: no known allocator library is mapped; the heap may be built into "
		       "the binary.\n");
}

int main(int argc, char **argv)
{
	struct doctor d;
	struct anon_summary a;
	int json = 0, verbose = 0, shape_only = 0, i, ret;
	const char *pidarg = NULL;
	char sf[4096];

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "-v")) {
			verbose = 1;
		} else if (!strcmp(argv[i], "--shape-only")) {
			shape_only = 1;
		} else if (!pidarg && argv[i][0] != '-') {
			pidarg = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!pidarg) {
		usage(stderr);
		return 2;
	}
	memset(&d, 0, sizeof(d));
	d.shape_only = shape_only;
	d.pid = fmt_parse_pid(pidarg);
	if (d.pid < 0) {
		fprintf(stderr, "ebb-doctor: '%s' is not a pid\n", pidarg);
		return 2;
	}
	if (!proc_alive(d.pid)) {
		fprintf(stderr, "ebb-doctor: no process %d\n", (int)d.pid);
		return 1;
	}
	ret = doctor_load(&d);
	if (ret) {
		fprintf(stderr, "ebb-doctor: cannot read /proc/%d/maps: %s\n", (int)d.pid,
			strerror(-ret));
		return 1;
	}
	d.env = proc_read(d.pid, "environ", &d.envlen);
	proc_allocs_from_maps("", NULL, &d.al);
	ret = proc_allocs(d.pid, &d.al);
	proc_cmdline(d.pid, d.cmd, sizeof(d.cmd));
	d.threads = (long)proc_status_kib(d.pid, "Threads");
	d.vmrss_kib = proc_status_kib(d.pid, "VmRSS");
	d.has_stats_file = statsfile_path(d.pid, sf, sizeof(sf)) == 0;
	d.has_stats = d.has_stats_file && statsfile_read(sf, &d.stats) == 0 &&
		      d.stats.pid == (uint64_t)d.pid;
	find_heaps(&d);
	totals(&d);
	anon_groups(&d, &a);
	if (json)
		print_json(&d, &a);
	else
		print_text(&d, &a, verbose);
	free(d.v);
	free(d.h);
	free(d.env);
	return 0;
}
