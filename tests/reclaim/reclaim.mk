# tests/reclaim/reclaim.mk - `make test-reclaim`: behaviour tests that prove
# the design's reclaim, thread-cache, NUMA and stats properties (issues 4, 5,
# 6 and 7) on real processes. Most programs run with build/libebbmalloc.so
# preloaded and reach ebb_stats/ebb_ctl through dlsym; numa_fake links
# build/libebbmalloc-ebb.a. Scripts: tests/reclaim/*.sh (lib.sh sets the
# paths). The idle-flush canary runs under the fastfree build too (the
# reclaim thread's flushes check and mark the blocks there). Whole suite:
# about 2-3 minutes on 2 cores.
RECLAIM_DIR     := $(BUILD)/tests/reclaim
RECLAIM_PRELOAD_PROGS := inv2_churn trim_rss decay fork_busy idle_canary parked stats_check dirty_cap
RECLAIM_BINS    := $(addprefix $(RECLAIM_DIR)/,$(RECLAIM_PRELOAD_PROGS)) $(RECLAIM_DIR)/numa_fake \
	$(RECLAIM_DIR)/TrimNative.class
# Programs that use the malloc API under LD_PRELOAD: no sanitizer (it cannot
# host a replacement malloc), no builtin malloc folding.
RECLAIM_CFLAGS  := $(filter-out -fsanitize=%,$(CFLAGS_COMMON)) \
	-fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free
RECLAIM_JAVAC   := /usr/lib/jvm/java-17-openjdk-amd64/bin/javac
RECLAIM_DEPS_OK := $(BUILD)/.reclaim-deps-ok
RECLAIM_RUN     := RECLAIM_BIN=$(RECLAIM_DIR) RECLAIM_LIB=$(LIB_SO)
EXTRA_PKGS      += strace python3 openjdk-17-jdk-headless

# The deps stamp may predate this fragment: install strace, python3 and the
# JDK 17 when root; otherwise name them (the scripts then skip saying why).
$(RECLAIM_DEPS_OK): | $(DEPS_OK)
	$(Q)missing=""; for p in strace python3 openjdk-17-jdk-headless; do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "reclaim: installing$$missing"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends $$missing >/dev/null || true; \
		else \
			echo "reclaim: missing Debian packages:$$missing (some tests will be skipped)"; \
		fi; \
	fi; \
	mkdir -p $(dir $@) && touch $@

$(RECLAIM_DIR)/%: tests/reclaim/%.c tests/reclaim/rtest.h include/ebbmalloc.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(RECLAIM_CFLAGS) -o $@ $< -ldl -lpthread

# linked with the ebb_* library (beside glibc's malloc), sanitizer included
$(RECLAIM_DIR)/numa_fake: tests/reclaim/numa_fake.c tests/reclaim/rtest.h include/ebbmalloc.h $(LIB_EBB_A) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(CFLAGS_COMMON) -DRT_LINKED -o $@ $< $(LIB_EBB_A) $(LIB_LDLIBS) -ldl

$(RECLAIM_DIR)/TrimNative.class: tests/reclaim/TrimNative.java | $(RECLAIM_DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  JAVAC $<"
	$(Q)if [ -x $(RECLAIM_JAVAC) ]; then $(RECLAIM_JAVAC) -d $(RECLAIM_DIR) $<; \
	else echo "reclaim: no JDK 17 javac; the jcmd trim test will be skipped"; fi

.PHONY: test-reclaim reclaim-bins
reclaim-bins: $(RECLAIM_BINS)

ifeq ($(SAN),)
test-reclaim: $(RECLAIM_BINS) $(RECLAIM_DEPS_OK) $(LIB_SO) $(LIB_FF_SO)
	$(Q)$(RECLAIM_RUN) tests/run_tests.sh reclaim 120 \
		"tests/reclaim/inv2.sh uring" \
		"tests/reclaim/inv2.sh vector" \
		"tests/reclaim/inv2.sh madvise" \
		"tests/reclaim/inv2.sh inline" \
		"tests/reclaim/trim.sh default" \
		"tests/reclaim/trim.sh decay" \
		"tests/reclaim/trim.sh off" \
		"tests/reclaim/jcmd_trim.sh" \
		"tests/reclaim/decay.sh default" \
		"tests/reclaim/decay.sh off" \
		"tests/reclaim/dirty_cap.sh default" \
		"tests/reclaim/dirty_cap.sh off" \
		"tests/reclaim/fork_busy.sh auto" \
		"tests/reclaim/fork_busy.sh uring" \
		"tests/reclaim/idle_canary.sh" \
		"RECLAIM_LIB=$(abspath $(LIB_FF_SO)) tests/reclaim/idle_canary.sh" \
		"tests/reclaim/parked.sh" \
		"tests/reclaim/numa_fake.sh on" \
		"tests/reclaim/numa_fake.sh off" \
		"tests/reclaim/stats.sh" \
		"tests/reclaim/stats.sh 2"
else
# A sanitizer runtime cannot host a replacement malloc under LD_PRELOAD.
test-reclaim:
	$(Q)tests/run_tests.sh reclaim 10 \
		"echo 'reclaim: these tests preload the library, which cannot be built with SAN=$(SAN)'; exit 77"
endif
test: test-reclaim
