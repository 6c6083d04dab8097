# tests/stress/stress.mk - `make test-stress`: stress and bad-input programs
# that use only the standard malloc API, run with the allocator under test
# preloaded (tests/stress/preload.sh; EBB_TEST_PRELOAD picks the library,
# default build/libebbmalloc.so, "none" = glibc). Each program passes under
# glibc too. Whole suite: about 2 minutes on 2 cores.
STRESS_PROGS  := mt_stress fork_stress thread_churn canary oom_stress bad_input
STRESS_DIR    := $(BUILD)/tests/stress
STRESS_BINS   := $(addprefix $(STRESS_DIR)/,$(STRESS_PROGS))
# Sanitizers cannot host a replacement malloc: these programs never use them.
STRESS_CFLAGS := $(filter-out -fsanitize=%,$(CFLAGS_COMMON)) \
	-fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free
EBB_TEST_PRELOAD ?= $(abspath $(LIB_SO))
export EBB_TEST_PRELOAD
# build the library only when it is the one under test
STRESS_LIB_DEP := $(if $(filter $(abspath $(LIB_SO)),$(abspath $(EBB_TEST_PRELOAD))),$(LIB_SO))
STRESS_PRE    := tests/stress/preload.sh

$(STRESS_DIR)/broken_malloc.so: tests/stress/broken_malloc.c include/ebbmalloc.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(STRESS_CFLAGS) -fPIC -shared -o $@ $<

$(STRESS_DIR)/%: tests/stress/%.c tests/stress/stress.h include/ebbmalloc.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(STRESS_CFLAGS) -o $@ $< -ldl

.PHONY: test-stress stress-bins
stress-bins: $(STRESS_BINS) $(STRESS_DIR)/broken_malloc.so

# selftest.sh first: the programs catch injected bugs (broken_malloc.so).
# bad_input also runs on plain glibc (the reference for its judgements).
# The canary runs once per reclaim backend with freed pages purged at once;
# oom_stress runs under a 2 GiB address-space limit (issue 8); fork_stress
# runs again with the reclaim thread purging all the time (issue 4, point 7).
# The fastfree build (Makefile) runs bad_input, mt_stress and fork_stress too.
# mt_stress runs again on two fake NUMA nodes, where threads move between
# nodes and free each other's blocks: under DEBUG=3 (make check) the cache
# walker checks that no thread caches a block of a node it has left.
test-stress: $(STRESS_BINS) $(STRESS_DIR)/broken_malloc.so $(STRESS_LIB_DEP) $(LIB_FF_SO)
	$(Q)tests/run_tests.sh stress 120 \
		"tests/stress/selftest.sh $(STRESS_DIR)" \
		"$(STRESS_PRE) $(STRESS_DIR)/bad_input" \
		"$(STRESS_DIR)/bad_input" \
		"$(STRESS_PRE) $(STRESS_DIR)/mt_stress" \
		"$(STRESS_PRE) $(STRESS_DIR)/thread_churn" \
		"$(STRESS_PRE) $(STRESS_DIR)/fork_stress" \
		"EBB_DECAY_MS=0 FORK_ROUNDS=60 $(STRESS_PRE) $(STRESS_DIR)/fork_stress" \
		"ulimit -v 2097152 && $(STRESS_PRE) $(STRESS_DIR)/oom_stress" \
		"EBB_DECAY_MS=0 EBB_RECLAIM_BACKEND=uring $(STRESS_PRE) $(STRESS_DIR)/canary" \
		"EBB_DECAY_MS=0 EBB_RECLAIM_BACKEND=vector $(STRESS_PRE) $(STRESS_DIR)/canary" \
		"EBB_DECAY_MS=0 EBB_RECLAIM_BACKEND=madvise $(STRESS_PRE) $(STRESS_DIR)/canary" \
		"EBB_NUMA_FAKE=2 $(STRESS_PRE) $(STRESS_DIR)/mt_stress" \
		"EBB_NUMA_FAKE=2 EBB_TEST_PRELOAD=$(abspath $(LIB_FF_SO)) $(STRESS_PRE) $(STRESS_DIR)/mt_stress" \
		"EBB_TEST_PRELOAD=$(abspath $(LIB_FF_SO)) $(STRESS_PRE) $(STRESS_DIR)/bad_input" \
		"EBB_TEST_PRELOAD=$(abspath $(LIB_FF_SO)) $(STRESS_PRE) $(STRESS_DIR)/mt_stress" \
		"EBB_TEST_PRELOAD=$(abspath $(LIB_FF_SO)) $(STRESS_PRE) $(STRESS_DIR)/fork_stress"
test: test-stress
