/* test_options.c - every option path: env var, EBB_CONF, precedence,
 * malformed and unknown values (a warning naming them and the valid
 * values, default kept), clamping, abort_on_bad_conf, and ebb_ctl. Each
 * configuration is tried in a fresh child process (options are read once). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

struct result {
	int64_t values[OPT_COUNT];
	char err[2048];
	int status;
};

/* In a child: apply env (NAME=VALUE pairs, NULL-terminated), init, report
 * option values through a pipe and stderr through another. */
static void probe(const char *const *env, struct result *res)
{
	int vp[2], ep[2];
	assert_int_equal(pipe(vp), 0);
	assert_int_equal(pipe(ep), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(vp[0]);
		close(ep[0]);
		dup2(ep[1], 2);
		for (const char *const *e = env; *e; e += 2)
			setenv(e[0], e[1], 1);
		ebb_init_slow();
		int64_t v[OPT_COUNT];
		for (int i = 0; i < OPT_COUNT; i++)
			v[i] = opt((enum opt_id)i);
		if (write(vp[1], v, sizeof(v)) != (ssize_t)sizeof(v))
			_exit(3);
		_exit(0);
	}
	close(vp[1]);
	close(ep[1]);
	memset(res, 0, sizeof(*res));
	ssize_t r = read(vp[0], res->values, sizeof(res->values));
	(void)r;
	size_t got = 0;
	ssize_t k;
	while (got + 1 < sizeof(res->err) && (k = read(ep[0], res->err + got, sizeof(res->err) - 1 - got)) > 0)
		got += (size_t)k;
	close(vp[0]);
	close(ep[0]);
	waitpid(pid, &res->status, 0);
}

static void test_defaults(void **state)
{
	(void)state;
	const char *env[] = { NULL };
	struct result r;
	probe(env, &r);
	assert_int_equal(r.values[OPT_decay_ms], 500);
	assert_int_equal(r.values[OPT_reclaim], RECLAIM_THREAD);
	assert_int_equal(r.values[OPT_purge], PURGE_DONTNEED);
	assert_string_equal(r.err, "");
}

static void test_env_and_conf(void **state)
{
	(void)state;
	const char *env[] = { "EBB_CONF", "decay_ms=250,purge=free,reclaim=inline,numa=off",
			      "EBB_DECAY_MS", "42", NULL };
	struct result r;
	probe(env, &r);
	assert_int_equal(r.values[OPT_decay_ms], 42);	/* the specific variable wins */
	assert_int_equal(r.values[OPT_purge], PURGE_FREE);
	assert_int_equal(r.values[OPT_reclaim], RECLAIM_INLINE);
	assert_int_equal(r.values[OPT_numa], 0);
	assert_string_equal(r.err, "");
}

static void test_bad_values_warn_and_keep_default(void **state)
{
	(void)state;
	const char *env[] = { "EBB_CONF", "decay_ms=soon,bogus=1,purge=maybe,noequals",
			      "EBB_RECLAIM_BACKEND", "carrier-pigeon", NULL };
	struct result r;
	probe(env, &r);
	assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
	assert_int_equal(r.values[OPT_decay_ms], 500);
	assert_int_equal(r.values[OPT_purge], PURGE_DONTNEED);
	assert_int_equal(r.values[OPT_reclaim_backend], 0);
	assert_non_null(strstr(r.err, "ebbmalloc: EBB_CONF: malformed value for 'decay_ms'"));
	assert_non_null(strstr(r.err, "unknown option 'bogus'"));
	assert_non_null(strstr(r.err, "valid: verbose,decay_ms,"));
	assert_non_null(strstr(r.err, "'purge', ignored; valid: dontneed|free"));
	assert_non_null(strstr(r.err, "expected key=value, got 'noequals'"));
	assert_non_null(strstr(r.err, "EBB_RECLAIM_BACKEND: malformed value for 'reclaim_backend', ignored; valid: auto|uring|vector|madvise"));
	/* one line per problem */
	int lines = 0;
	for (char *p = r.err; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 5);
}

static void test_unknown_variable_warns(void **state)
{
	(void)state;
	const char *env[] = { "EBB_DECAY_MSS", "10", "EBB_TEST_HARNESS_DIR", "/tmp", NULL };
	struct result r;
	probe(env, &r);
	assert_int_equal(r.values[OPT_decay_ms], 500);
	assert_non_null(strstr(r.err, "ebbmalloc: environment: unknown variable 'EBB_DECAY_MSS', ignored; valid: EBB_CONF,EBB_VERBOSE,EBB_DECAY_MS,"));
	assert_null(strstr(r.err, "EBB_TEST_HARNESS_DIR"));	/* reserved for test harnesses */
	int lines = 0;
	for (char *p = r.err; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 1);
}

static void test_clamp(void **state)
{
	(void)state;
	const char *env[] = { "EBB_ARENAS_PER_NODE", "999", NULL };
	struct result r;
	probe(env, &r);
	assert_int_equal(r.values[OPT_arenas_per_node], 16);
	assert_non_null(strstr(r.err, "arenas_per_node=999 out of range 0..16, using 16"));
}

static void test_abort_on_bad_conf(void **state)
{
	(void)state;
	const char *env[] = { "EBB_CONF", "abort_on_bad_conf=1,decay_ms=x", NULL };
	struct result r;
	probe(env, &r);
	assert_true(WIFSIGNALED(r.status));
	assert_int_equal(WTERMSIG(r.status), SIGABRT);
	assert_non_null(strstr(r.err, "aborting"));
}

static void test_ctl(void **state)
{
	(void)state;
	ebb_init_slow();
	uint64_t v = 0, nv = 1234;
	size_t len = sizeof(v);
	assert_int_equal(ebb_ctl("decay_ms", &v, &len, NULL, 0), 0);
	assert_int_equal(v, 500);
	assert_int_equal(ebb_ctl("decay_ms", NULL, NULL, &nv, sizeof(nv)), 0);
	assert_int_equal(opt(OPT_decay_ms), 1234);
	char s[32];
	len = sizeof(s);
	assert_int_equal(ebb_ctl("purge", s, &len, "free", 5), 0);
	assert_string_equal(s, "dontneed");	/* old value */
	len = sizeof(s);
	assert_int_equal(ebb_ctl("purge", s, &len, NULL, 0), 0);
	assert_string_equal(s, "free");
	assert_int_equal(ebb_ctl("purge", NULL, NULL, "sometimes", 10), -EINVAL);
	assert_int_equal(ebb_ctl("nope", &v, &len, NULL, 0), -ENOENT);
	nv = 2;
	assert_int_equal(ebb_ctl("arenas_per_node", NULL, NULL, &nv, sizeof(nv)), -EPERM);
	nv = 99999999;
	assert_int_equal(ebb_ctl("decay_ms", NULL, NULL, &nv, sizeof(nv)), -EINVAL);
	len = 4;
	assert_int_equal(ebb_ctl("decay_ms", &v, &len, NULL, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_env_and_conf),
		cmocka_unit_test(test_bad_values_warn_and_keep_default),
		cmocka_unit_test(test_unknown_variable_warns),
		cmocka_unit_test(test_clamp),
		cmocka_unit_test(test_abort_on_bad_conf),
		cmocka_unit_test(test_ctl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
