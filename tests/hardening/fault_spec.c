/*
 * fault_spec.c - the EBB_FAULT language of alloc/fault.c, call by call
 * (linked with libebbmalloc-ebb.a; fault_should_fail is called directly,
 * so no memory is involved).
 *
 * Checks: N, N-, N-M select exactly those calls and count them; rand:P is
 * reproducible for a seed, differs between seeds, and fails about P of the
 * calls; /ERRNO (names and numbers) and the per-op defaults; malformed
 * specs are refused and arm nothing; an empty spec disarms, and disarmed
 * means fault_state == FAULT_OFF (the one-branch path of fault.h).
 */
#include "internal.h"
#include "fault.h"
#include "hard.h"

static int fails_at(enum fault_op op, const char *spec, unsigned ncalls, unsigned char *out)
{
	HARD_CHECK(fault_configure(spec) == 0, "fault_configure(\"%s\") refused", spec);
	int err = 0;
	for (unsigned i = 0; i < ncalls; i++) {
		int r = fault_should_fail(op);
		out[i] = r != 0;
		if (r)
			err = r;
	}
	return err;
}

static void expect_calls(const char *spec, enum fault_op op, const char *want)
{
	unsigned char got[64];
	size_t n = strlen(want);
	fails_at(op, spec, (unsigned)n, got);
	unsigned nf = 0;
	for (size_t i = 0; i < n; i++) {
		HARD_CHECK(got[i] == (want[i] == 'x'), "%s: call %zu %s, expected %s", spec, i + 1,
			   got[i] ? "failed" : "passed", want[i] == 'x' ? "a failure" : "a pass");
		nf += got[i];
	}
	HARD_CHECK(fault_calls(op) == n && fault_injected(op) == nf, "%s: counted %llu calls, %llu "
		   "failures; made %zu, %u", spec, (unsigned long long)fault_calls(op),
		   (unsigned long long)fault_injected(op), n, nf);
}

int main(void)
{
	unsigned char a[4000], b[4000];

	/* positions: '.' passes, 'x' fails */
	expect_calls("mmap=3", FAULT_MMAP, "..x.....");
	expect_calls("mmap=3-", FAULT_MMAP, "..xxxxxx");
	expect_calls("mmap=2-4", FAULT_MMAP, ".xxx....");
	expect_calls("mmap=1", FAULT_MMAP, "x.......");
	expect_calls("mremap=2,madvise=1-", FAULT_MREMAP, ".x......");
	expect_calls("mremap=2,madvise=1-", FAULT_MADVISE, "xxxx");
	expect_calls("mbind=1-2,,", FAULT_MBIND, "xx..");
	/* an op that is not named never fails, and is not counted */
	expect_calls("mmap=1-", FAULT_URING, "");
	HARD_CHECK(fault_should_fail(FAULT_URING) == 0 && fault_calls(FAULT_URING) == 0,
		   "an unnamed op failed or was counted");

	/* errnos: defaults and overrides */
	HARD_CHECK(fails_at(FAULT_MMAP, "mmap=1", 1, a) == -ENOMEM, "mmap default errno");
	HARD_CHECK(fails_at(FAULT_MADVISE, "madvise=1", 1, a) == -EAGAIN, "madvise default errno");
	HARD_CHECK(fails_at(FAULT_PMADVISE, "pmadvise=1", 1, a) == -EPERM, "pmadvise default errno");
	HARD_CHECK(fails_at(FAULT_URING, "uring=1/ENOSYS", 1, a) == -ENOSYS, "uring/ENOSYS");
	HARD_CHECK(fails_at(FAULT_MBIND, "mbind=1/EIO", 1, a) == -EIO, "mbind/EIO");
	HARD_CHECK(fails_at(FAULT_MAPFILE, "mapfile=1/28", 1, a) == -28, "numeric errno");
	HARD_CHECK(fails_at(FAULT_MREMAP, "mremap=rand:1/EFAULT", 1, a) == -EFAULT, "rand:1/EFAULT");

	/* rand: reproducible, seed-dependent, about P */
	fails_at(FAULT_MMAP, "mmap=rand:0.25,seed=9", 4000, a);
	fails_at(FAULT_MMAP, "mmap=rand:0.25,seed=9", 4000, b);
	HARD_CHECK(!memcmp(a, b, sizeof(a)), "rand: the same seed gave different failures");
	unsigned na = 0;
	for (unsigned i = 0; i < 4000; i++)
		na += a[i];
	HARD_CHECK(na > 800 && na < 1200, "rand:0.25 failed %u of 4000 calls", na);
	fails_at(FAULT_MMAP, "mmap=rand:0.25,seed=10", 4000, b);
	HARD_CHECK(memcmp(a, b, sizeof(a)), "rand: seeds 9 and 10 gave the same failures");
	fails_at(FAULT_MMAP, "mmap=rand:0", 1000, a);
	for (unsigned i = 0; i < 1000; i++)
		HARD_CHECK(!a[i], "rand:0 failed a call");
	fails_at(FAULT_MMAP, "mmap=rand:1.0", 1000, a);
	for (unsigned i = 0; i < 1000; i++)
		HARD_CHECK(a[i], "rand:1.0 passed a call");
	fails_at(FAULT_MMAP, "mmap=rand:.5", 1000, a);

	/* malformed: refused, nothing armed */
	static const char *const bad[] = {
		"mmap", "mmap=", "mmap=0", "mmap=x", "mmap=5-3", "mmap=-3", "mmap=3--",
		"mmap=rand:", "mmap=rand:1.5", "mmap=rand:2", "mmap=rand:0.x", "mmap=rand:.",
		"bogus=1", "mmap=1/EWHAT", "mmap=1/0", "seed=x", "mmap=1,bogus",
		"mmap=99999999999999999999999",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		HARD_CHECK(fault_configure(bad[i]) == -EINVAL, "malformed \"%s\" accepted", bad[i]);
		HARD_CHECK(fault_state == FAULT_OFF, "malformed \"%s\" left faults armed", bad[i]);
		HARD_CHECK(fault_should_fail(FAULT_MMAP) == 0, "malformed \"%s\" failed a call", bad[i]);
	}

	/* disarm */
	HARD_CHECK(fault_configure("mmap=1-") == 0 && fault_state == FAULT_ARMED, "arm");
	HARD_CHECK(fault_configure("") == 0 && fault_state == FAULT_OFF, "\"\" must disarm");
	HARD_CHECK(fault_configure("mmap=1-") == 0, "arm");
	HARD_CHECK(fault_configure(NULL) == 0 && fault_state == FAULT_OFF, "NULL must disarm");
	HARD_CHECK(fault_should_fail(FAULT_MMAP) == 0 && fault_calls(FAULT_MMAP) == 0,
		   "a disarmed call failed or was counted");
	printf("fault_spec: ok\n");
	return 0;
}
