/*
 * fault.c - fault injection into the OS layer (issue 8): which calls fail,
 * and with which errno.
 *
 * EBB_FAULT is a comma-separated list, read once at the first wrapped call:
 *
 *   OP=WHEN[/ERRNO]   make OP fail WHEN, returning -ERRNO
 *   seed=N            seed of the rand: draws (default 1)
 *
 *   OP     mmap (os_map: chunks, huge blocks, metadata), mremap (huge
 *          realloc), mapfile (EBB_STATS_FILE), madvise, pmadvise
 *          (process_madvise), uring (io_uring submit), mbind
 *   WHEN   N       the Nth call only (calls count from 1)
 *          N-      every call from the Nth on
 *          N-M     calls N to M: failures that stop, to test recovery
 *          rand:P  each call with probability P (0 <= P <= 1, decimal)
 *   ERRNO  ENOMEM EINVAL EPERM ENOSYS EAGAIN EINTR EBADF EIO EFAULT
 *          EOPNOTSUPP EBUSY ENOSPC, or a number. Defaults: ENOMEM for mmap
 *          and mremap, ENOSPC for mapfile, EAGAIN for madvise (a transient
 *          failure: no fallback), EPERM for pmadvise and uring (a seccomp
 *          filter: fallback) and for mbind.
 *
 *   EBB_FAULT="mmap=5,mremap=rand:0.1,madvise=3-,seed=42"
 *
 * A rand: draw depends only on (seed, op, call number), so a
 * single-threaded run is reproducible, and a multi-threaded one fails the
 * same share of calls. mbind is consulted before numa/bind.c looks at the
 * node, so its advisory path can be tested with EBB_NUMA_FAKE on a
 * one-node machine.
 *
 * A malformed EBB_FAULT arms nothing and warns once, naming the variable
 * and the syntax. An armed EBB_FAULT says so once on stderr: a process that
 * fails on purpose should never be mistaken for a broken one.
 *
 * Cost when unset: fault_should_fail() (fault.h) tests fault_state ==
 * FAULT_OFF and returns; the first call reads the environment here.
 *
 * Threads: any. Counters are atomics; the configuration is written only by
 * the first call (under a pthread_once) or by fault_configure() (tests),
 * with relaxed atomic stores so that concurrent readers see either value.
 * Never allocates; never uses stdio.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "os.h"
#include "fault.h"

int fault_state;	/* FAULT_UNREAD until the first wrapped call */

enum fault_mode { FM_NONE = 0, FM_RANGE, FM_RAND };

struct fault_rule {
	int      mode;		/* enum fault_mode */
	int      err;		/* positive errno */
	uint64_t lo, hi;	/* FM_RANGE: calls lo..hi (inclusive) */
	uint64_t ppb;		/* FM_RAND: parts per 10^9 */
};

static struct fault_rule fault_rules[FAULT_NOPS];
static uint64_t fault_seed = 1;
static _Atomic uint64_t fault_ncalls[FAULT_NOPS];
static _Atomic uint64_t fault_nfailed[FAULT_NOPS];
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;

static const char *const fault_op_names[FAULT_NOPS] = {
	[FAULT_MMAP] = "mmap",
	[FAULT_MREMAP] = "mremap",
	[FAULT_MAPFILE] = "mapfile",
	[FAULT_MADVISE] = "madvise",
	[FAULT_PMADVISE] = "pmadvise",
	[FAULT_URING] = "uring",
	[FAULT_MBIND] = "mbind",
};

static const int fault_default_err[FAULT_NOPS] = {
	[FAULT_MMAP] = ENOMEM,
	[FAULT_MREMAP] = ENOMEM,
	[FAULT_MAPFILE] = ENOSPC,
	[FAULT_MADVISE] = EAGAIN,
	[FAULT_PMADVISE] = EPERM,
	[FAULT_URING] = EPERM,
	[FAULT_MBIND] = EPERM,
};

static const struct { const char *name; int err; } fault_errnos[] = {
	{ "ENOMEM", ENOMEM }, { "EINVAL", EINVAL }, { "EPERM", EPERM },
	{ "ENOSYS", ENOSYS }, { "EAGAIN", EAGAIN }, { "EINTR", EINTR },
	{ "EBADF", EBADF }, { "EIO", EIO }, { "EFAULT", EFAULT },
	{ "EOPNOTSUPP", EOPNOTSUPP }, { "EBUSY", EBUSY }, { "ENOSPC", ENOSPC },
};

/* ---- parsing: [s, e) is one token; no allocation, no libc number parsers -- */
static int fault_parse_u64(const char *s, const char *e, uint64_t *out)
{
	uint64_t v = 0;
	if (s == e)
		return -EINVAL;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* "0.25", "1", ".5", "1.0" -> parts per 10^9 (digits past the ninth are
 * dropped). */
static int fault_parse_prob(const char *s, const char *e, uint64_t *ppb)
{
	uint64_t ip = 0, frac = 0, scale = 1000000000ull;
	const char *dot = memchr(s, '.', (size_t)(e - s));
	if (s == e || (dot && dot == s && dot + 1 == e))
		return -EINVAL;
	if ((!dot || dot > s) && fault_parse_u64(s, dot ? dot : e, &ip))
		return -EINVAL;
	if (dot) {
		for (const char *q = dot + 1; q < e; q++) {
			if (*q < '0' || *q > '9')
				return -EINVAL;
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*q - '0') * scale;
			}
		}
	}
	if (ip > 1 || (ip == 1 && frac))
		return -EINVAL;
	*ppb = ip ? 1000000000ull : frac;
	return 0;
}

static int fault_parse_errno(const char *s, const char *e, int *err)
{
	size_t n = (size_t)(e - s);
	for (size_t i = 0; i < sizeof(fault_errnos) / sizeof(fault_errnos[0]); i++)
		if (strlen(fault_errnos[i].name) == n && !memcmp(fault_errnos[i].name, s, n)) {
			*err = fault_errnos[i].err;
			return 0;
		}
	uint64_t v;
	if (fault_parse_u64(s, e, &v) || v == 0 || v > 4095)
		return -EINVAL;
	*err = (int)v;
	return 0;
}

/* WHEN[/ERRNO] into *r */
static int fault_parse_rule(const char *s, const char *e, enum fault_op op, struct fault_rule *r)
{
	const char *slash = memchr(s, '/', (size_t)(e - s));
	r->err = fault_default_err[op];
	if (slash) {
		if (fault_parse_errno(slash + 1, e, &r->err))
			return -EINVAL;
		e = slash;
	}
	if (e - s > 5 && !memcmp(s, "rand:", 5)) {
		r->mode = FM_RAND;
		return fault_parse_prob(s + 5, e, &r->ppb);
	}
	const char *dash = memchr(s, '-', (size_t)(e - s));
	r->mode = FM_RANGE;
	if (fault_parse_u64(s, dash ? dash : e, &r->lo) || r->lo == 0)
		return -EINVAL;
	if (!dash)
		r->hi = r->lo;
	else if (dash + 1 == e)
		r->hi = UINT64_MAX;
	else if (fault_parse_u64(dash + 1, e, &r->hi) || r->hi < r->lo)
		return -EINVAL;
	return 0;
}

static int fault_parse(const char *spec, struct fault_rule *rules, uint64_t *seed)
{
	const char *s = spec;
	while (*s) {
		const char *e = strchr(s, ',');
		if (!e)
			e = s + strlen(s);
		const char *eq = memchr(s, '=', (size_t)(e - s));
		if (e == s) {		/* tolerate ",," and a trailing comma */
			s = *e ? e + 1 : e;
			continue;
		}
		if (!eq)
			return -EINVAL;
		size_t klen = (size_t)(eq - s);
		if (klen == 4 && !memcmp(s, "seed", 4)) {
			if (fault_parse_u64(eq + 1, e, seed))
				return -EINVAL;
		} else {
			int op = -1;
			for (int i = 0; i < FAULT_NOPS; i++)
				if (strlen(fault_op_names[i]) == klen && !memcmp(fault_op_names[i], s, klen))
					op = i;
			if (op < 0 || fault_parse_rule(eq + 1, e, (enum fault_op)op, &rules[op]))
				return -EINVAL;
		}
		s = *e ? e + 1 : e;
	}
	return 0;
}

/* ---- arming ------------------------------------------------------------------ */
static int fault_apply(const char *spec)
{
	struct fault_rule rules[FAULT_NOPS];
	uint64_t seed = 1;
	int armed = 0, r = 0;

	memset(rules, 0, sizeof(rules));
	if (spec && fault_parse(spec, rules, &seed)) {
		memset(rules, 0, sizeof(rules));
		r = -EINVAL;
	}
	/* disarm while the rules change, so no reader mixes old and new */
	__atomic_store_n(&fault_state, FAULT_OFF, __ATOMIC_RELEASE);
	for (int i = 0; i < FAULT_NOPS; i++) {
		__atomic_store_n(&fault_rules[i].mode, rules[i].mode, __ATOMIC_RELAXED);
		__atomic_store_n(&fault_rules[i].err, rules[i].err, __ATOMIC_RELAXED);
		__atomic_store_n(&fault_rules[i].lo, rules[i].lo, __ATOMIC_RELAXED);
		__atomic_store_n(&fault_rules[i].hi, rules[i].hi, __ATOMIC_RELAXED);
		__atomic_store_n(&fault_rules[i].ppb, rules[i].ppb, __ATOMIC_RELAXED);
		atomic_store_explicit(&fault_ncalls[i], 0, memory_order_relaxed);
		atomic_store_explicit(&fault_nfailed[i], 0, memory_order_relaxed);
		armed |= rules[i].mode != FM_NONE;
	}
	__atomic_store_n(&fault_seed, seed, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_state, armed ? FAULT_ARMED : FAULT_OFF, __ATOMIC_RELEASE);
	return r;
}

static void fault_read_env(void)
{
	char spec[512];
	if (!os_getenv("EBB_FAULT", spec, sizeof(spec)) || !spec[0]) {
		__atomic_store_n(&fault_state, FAULT_OFF, __ATOMIC_RELEASE);
		return;
	}
	if (fault_apply(spec)) {
		ebb_message("EBB_FAULT=\"%s\" is malformed, no faults injected; expected "
			    "OP=N|N-|N-M|rand:P[/ERRNO],...,seed=N with OP one of mmap mremap "
			    "mapfile madvise pmadvise uring mbind", spec);
		return;
	}
	ebb_message("fault injection armed: EBB_FAULT=\"%s\"", spec);
}

/* ---- the decision -------------------------------------------------------------- */
static uint64_t fault_mix(uint64_t x)
{
	/* splitmix64's finaliser */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int fault_should_fail_slow(enum fault_op op)
{
	if (__atomic_load_n(&fault_state, __ATOMIC_ACQUIRE) == FAULT_UNREAD)
		pthread_once(&fault_once, fault_read_env);
	if (__atomic_load_n(&fault_state, __ATOMIC_ACQUIRE) != FAULT_ARMED)
		return 0;
	struct fault_rule *r = &fault_rules[op];
	int mode = __atomic_load_n(&r->mode, __ATOMIC_RELAXED);
	if (mode == FM_NONE)
		return 0;
	uint64_t n = atomic_fetch_add_explicit(&fault_ncalls[op], 1, memory_order_relaxed) + 1;
	int fail;
	if (mode == FM_RANGE) {
		fail = n >= __atomic_load_n(&r->lo, __ATOMIC_RELAXED) &&
		       n <= __atomic_load_n(&r->hi, __ATOMIC_RELAXED);
	} else {
		uint64_t seed = __atomic_load_n(&fault_seed, __ATOMIC_RELAXED);
		uint64_t h = fault_mix(seed ^ fault_mix(((uint64_t)op << 56) ^ n));
		fail = h % 1000000000ull < __atomic_load_n(&r->ppb, __ATOMIC_RELAXED);
	}
	if (!fail)
		return 0;
	atomic_fetch_add_explicit(&fault_nfailed[op], 1, memory_order_relaxed);
	return -__atomic_load_n(&r->err, __ATOMIC_RELAXED);
}

/* ---- test interface ------------------------------------------------------------ */
int fault_configure(const char *spec)
{
	/* read EBB_FAULT first, so it cannot override this later */
	pthread_once(&fault_once, fault_read_env);
	return fault_apply(spec && spec[0] ? spec : NULL);
}

uint64_t fault_calls(enum fault_op op)
{
	return atomic_load_explicit(&fault_ncalls[op], memory_order_relaxed);
}

uint64_t fault_injected(enum fault_op op)
{
	return atomic_load_explicit(&fault_nfailed[op], memory_order_relaxed);
}
