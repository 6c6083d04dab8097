/*
 * options.c - the option table (options.def) read from the environment.
 *
 * At init, without allocating: defaults, then EBB_CONF="k=v,k=v" in order,
 * then each EBB_<NAME> (the more specific setting wins). An unknown name or
 * a malformed value gives one warning line naming it and the valid values,
 * and the default stays; with abort_on_bad_conf=1 that is fatal. Values out
 * of range are clamped with a warning. ebb_ctl() reads any option and
 * changes the ones marked live.
 *
 * Threads: options_init runs once under the init lock; afterwards values are
 * read with relaxed atomic loads and written only by ebb_ctl.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"

enum { T_INT, T_BOOL, T_ENUM, T_STR };

struct opt_desc {
	const char *name;
	int type;
	int64_t def, min, max;
	int live;
	const char *values;
	const char *doc;
};

static const struct opt_desc opt_table[OPT_COUNT] = {
#define EBB_OPTION(name, type, def, min, max, live, values, doc) \
	{ #name, type, def, min, max, live, values, doc },
#include "options.def"
#undef EBB_OPTION
};

_Atomic int64_t opt_values[OPT_COUNT] = {
#define EBB_OPTION(name, type, def, min, max, live, values, doc) def,
#include "options.def"
#undef EBB_OPTION
};
char opt_stats_file[256];
static unsigned bad_conf;

static void bad(const char *src, const char *name, size_t nlen, const char *why, const char *valid)
{
	char n[64];
	if (nlen >= sizeof(n))
		nlen = sizeof(n) - 1;
	memcpy(n, name, nlen);
	n[nlen] = 0;
	ebb_message("%s: %s '%s', %s; valid: %s", src, why, n,
		    opt_values[OPT_abort_on_bad_conf] ? "aborting" : "ignored", valid);
	bad_conf++;
}

static void valid_names(char *buf, size_t len)
{
	size_t pos = 0;
	for (int i = 0; i < OPT_COUNT && pos + 1 < len; i++)
		pos += (size_t)ebb_snprintf(buf + pos, len - pos, "%s%s", i ? "," : "", opt_table[i].name);
}

static int find_opt(const char *name, size_t nlen)
{
	for (int i = 0; i < OPT_COUNT; i++)
		if (strlen(opt_table[i].name) == nlen && !strncmp(opt_table[i].name, name, nlen))
			return i;
	return -1;
}

static int match_word(const char *v, size_t vlen, const char *w)
{
	return strlen(w) == vlen && !strncmp(v, w, vlen);
}

/* Parse a value for option i: 0 and *out set, or -EINVAL. */
static int parse_value(int i, const char *v, size_t vlen, int64_t *out)
{
	const struct opt_desc *d = &opt_table[i];
	switch (d->type) {
	case T_BOOL:
		if (match_word(v, vlen, "1") || match_word(v, vlen, "on") ||
		    match_word(v, vlen, "true") || match_word(v, vlen, "yes")) {
			*out = 1;
			return 0;
		}
		if (match_word(v, vlen, "0") || match_word(v, vlen, "off") ||
		    match_word(v, vlen, "false") || match_word(v, vlen, "no")) {
			*out = 0;
			return 0;
		}
		return -EINVAL;
	case T_INT: {
		if (vlen == 0 || vlen > 18)
			return -EINVAL;
		int64_t x = 0;
		for (size_t k = 0; k < vlen; k++) {
			if (v[k] < '0' || v[k] > '9')
				return -EINVAL;
			x = x * 10 + (v[k] - '0');
		}
		*out = x;
		return 0;
	}
	case T_ENUM: {
		const char *s = d->values;
		for (int idx = 0; *s; idx++) {
			const char *e = strchr(s, '|');
			size_t wl = e ? (size_t)(e - s) : strlen(s);
			if (wl == vlen && !strncmp(s, v, vlen)) {
				*out = idx;
				return 0;
			}
			s += wl + (e ? 1 : 0);
			if (!e)
				break;
		}
		return -EINVAL;
	}
	default:
		return -EINVAL;
	}
}

static const char *valid_values(int i, char *buf, size_t len)
{
	const struct opt_desc *d = &opt_table[i];
	if (d->type == T_BOOL)
		return "0|1|on|off";
	if (d->type == T_ENUM)
		return d->values;
	if (d->type == T_STR)
		return "a path";
	ebb_snprintf(buf, len, "an integer %lld..%lld", (long long)d->min, (long long)d->max);
	return buf;
}

static void set_one(const char *src, int i, const char *v, size_t vlen)
{
	const struct opt_desc *d = &opt_table[i];
	char vb[64];
	if (d->type == T_STR) {
		if (vlen >= sizeof(opt_stats_file)) {
			bad(src, d->name, strlen(d->name), "value too long for", "a path under 255 bytes");
			return;
		}
		memcpy(opt_stats_file, v, vlen);
		opt_stats_file[vlen] = 0;
		atomic_store_explicit(&opt_values[i], vlen > 0, memory_order_relaxed);
		return;
	}
	int64_t x;
	if (parse_value(i, v, vlen, &x)) {
		bad(src, d->name, strlen(d->name), "malformed value for", valid_values(i, vb, sizeof(vb)));
		return;
	}
	if (x < d->min || x > d->max) {
		int64_t c = x < d->min ? d->min : d->max;
		ebb_message("%s: %s=%lld out of range %lld..%lld, using %lld", src, d->name,
			    (long long)x, (long long)d->min, (long long)d->max, (long long)c);
		x = c;
	}
	atomic_store_explicit(&opt_values[i], x, memory_order_relaxed);
}

static void parse_conf(const char *conf)
{
	const char *s = conf;
	while (*s) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		if (len > 0) {
			char names[512];
			if (!eq) {
				valid_names(names, sizeof(names));
				bad("EBB_CONF", s, len, "expected key=value, got", names);
			} else {
				int i = find_opt(s, (size_t)(eq - s));
				if (i < 0) {
					valid_names(names, sizeof(names));
					bad("EBB_CONF", s, (size_t)(eq - s), "unknown option", names);
				} else {
					set_one("EBB_CONF", i, eq + 1, len - (size_t)(eq - s) - 1);
				}
			}
		}
		if (!end)
			break;
		s = end + 1;
	}
}

extern char **environ;

/* Is name (up to '=') EBB_CONF or EBB_<OPTION>? */
static int known_variable(const char *name, size_t len)
{
	if (len == 8 && !strncmp(name, "EBB_CONF", 8))
		return 1;
	if (len == 9 && !strncmp(name, "EBB_FAULT", 9))	/* fault injection, alloc/fault.c */
		return 1;
	for (int i = 0; i < OPT_COUNT; i++) {
		const char *n = opt_table[i].name;
		size_t k = strlen(n);
		if (len != k + 4)
			continue;
		size_t j = 0;
		while (j < k && name[4 + j] == (char)(n[j] >= 'a' && n[j] <= 'z' ? n[j] - 32 : n[j]))
			j++;
		if (j == k)
			return 1;
	}
	return 0;
}

/* Every EBB_* variable must be one of ours (a misspelt EBB_DECAY_MSS would
 * otherwise be silently ignored). EBB_TEST_* is left to test harnesses. */
static void check_unknown_variables(void)
{
	if (!environ)
		return;
	for (char **e = environ; *e; e++) {
		const char *v = *e;
		if (strncmp(v, "EBB_", 4) || !strncmp(v, "EBB_TEST_", 9))
			continue;
		const char *eq = strchr(v, '=');
		size_t len = eq ? (size_t)(eq - v) : strlen(v);
		if (!known_variable(v, len)) {
			char names[512];
			size_t pos = (size_t)ebb_snprintf(names, sizeof(names), "EBB_CONF");
			for (int i = 0; i < OPT_COUNT && pos + 40 < sizeof(names); i++) {
				pos += (size_t)ebb_snprintf(names + pos, sizeof(names) - pos, ",EBB_");
				for (const char *n = opt_table[i].name; *n && pos + 2 < sizeof(names); n++)
					names[pos++] = (char)(*n >= 'a' && *n <= 'z' ? *n - 32 : *n);
				names[pos] = 0;
			}
			bad("environment", v, len, "unknown variable", names);
		}
	}
}

void options_init(void)
{
	char buf[1024];
	char var[64];
	check_unknown_variables();
	if (os_getenv("EBB_CONF", buf, sizeof(buf)))
		parse_conf(buf);
	for (int i = 0; i < OPT_COUNT; i++) {
		size_t k = 4;
		memcpy(var, "EBB_", 4);
		for (const char *n = opt_table[i].name; *n && k + 1 < sizeof(var); n++)
			var[k++] = (char)(*n >= 'a' && *n <= 'z' ? *n - 32 : *n);
		var[k] = 0;
		if (os_getenv(var, buf, sizeof(buf)))
			set_one(var, i, buf, strlen(buf));
	}
	if (bad_conf && opt(OPT_abort_on_bad_conf)) {
		ebb_message("bad configuration (abort_on_bad_conf=1)");
		abort();
	}
}

static void value_string(int i, char *buf, size_t len)
{
	const struct opt_desc *d = &opt_table[i];
	int64_t v = opt((enum opt_id)i);
	if (d->type == T_STR) {
		ebb_snprintf(buf, len, "%s", opt_stats_file[0] ? opt_stats_file : "(off)");
	} else if (d->type == T_ENUM) {
		const char *s = d->values;
		for (int64_t k = 0; k < v && s; k++) {
			s = strchr(s, '|');
			if (s)
				s++;
		}
		size_t wl = s ? strcspn(s, "|") : 0;
		if (wl >= len)
			wl = len - 1;
		if (s)
			memcpy(buf, s, wl);
		buf[wl] = 0;
	} else {
		ebb_snprintf(buf, len, "%lld", (long long)v);
	}
}

void options_print(void)
{
	char v[300];
	for (int i = 0; i < OPT_COUNT; i++) {
		value_string(i, v, sizeof(v));
		ebb_message("option %s=%s", opt_table[i].name, v);
	}
}

EBB_EXPORT int ebb_ctl(const char *name, void *oldp, size_t *oldlenp, const void *newp, size_t newlen)
{
	if (!name)
		return -EINVAL;
	ebb_init_slow();
	int i = find_opt(name, strlen(name));
	if (i < 0)
		return -ENOENT;
	const struct opt_desc *d = &opt_table[i];
	int is_str = d->type == T_STR || d->type == T_ENUM;
	if (oldp) {
		if (!oldlenp)
			return -EINVAL;
		if (is_str) {
			char v[300];
			value_string(i, v, sizeof(v));
			size_t n = strlen(v) + 1;
			if (*oldlenp < n)
				return -EINVAL;
			memcpy(oldp, v, n);
			*oldlenp = n;
		} else {
			if (*oldlenp < sizeof(uint64_t))
				return -EINVAL;
			uint64_t v = (uint64_t)opt((enum opt_id)i);
			memcpy(oldp, &v, sizeof(v));
			*oldlenp = sizeof(v);
		}
	}
	if (newp) {
		if (!d->live)
			return -EPERM;
		int64_t x;
		if (d->type == T_ENUM) {
			size_t n = strnlen(newp, newlen);
			if (parse_value(i, newp, n, &x))
				return -EINVAL;
		} else {
			if (newlen != sizeof(uint64_t))
				return -EINVAL;
			uint64_t u;
			memcpy(&u, newp, sizeof(u));
			x = (int64_t)u;
			if (d->type == T_BOOL && u > 1)
				return -EINVAL;
			if (x < d->min || x > d->max || u > INT64_MAX)
				return -EINVAL;
		}
		atomic_store_explicit(&opt_values[i], x, memory_order_relaxed);
		if (i == OPT_stats && x)
			stats_at_exit_arm();	/* a live stats=1 prints at exit too */
	}
	return 0;
}
