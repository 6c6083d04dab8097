# tests/integration/integration.mk - `make test-integration`: real programs
# (python3, java, gcc, git, sqlite3, perl, sort, node, a PostgreSQL server) run under glibc and with the
# allocator under test preloaded; outputs must match. Plus start-up checks
# (constructors that malloc/dlsym/dlopen before main, /bin/true) and the
# warnings for malformed or unknown EBB_* settings and EBB_VERBOSE
# (options.sh), ebb_ctl in a running process (ctl.sh, ctl_live.c), and
# the names of ebbmalloc's mappings, or silence where the kernel refuses
# them (named.sh, named_maps.c). test-integration-fastfree runs most of
# them again under build/libebbmalloc-fastfree.so.
# EBB_TEST_PRELOAD picks the library (default build/libebbmalloc.so; e.g.
# /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 validates the harness, "none"
# compares glibc with itself). About 3-4 minutes on 2 cores.
INTEG_DIR     := $(BUILD)/tests/integration
INTEG_DEPS_OK := $(BUILD)/.integration-deps-ok
INTEG_SCRIPTS := startup options ctl named python java gcc git sqlite perl sort node postgres
# program:package pairs the scripts need on a fresh Debian 12 machine (node
# and PostgreSQL only here: a plain `make` does not install a database server)
INTEG_NEEDS   := python3:python3 sqlite3:sqlite3 git:git perl:perl gcc:gcc \
	objdump:binutils awk:mawk javac:default-jdk-headless node:nodejs \
	pg_ctlcluster:postgresql
EXTRA_PKGS    += python3 sqlite3 git perl gcc binutils default-jdk-headless
EBB_TEST_PRELOAD ?= $(abspath $(LIB_SO))
export EBB_TEST_PRELOAD
INTEG_LIB_DEP := $(if $(filter $(abspath $(LIB_SO)),$(abspath $(EBB_TEST_PRELOAD))),$(LIB_SO))

# Installs what is missing when root (DEPS_OK may be an old stamp from
# before these were needed); otherwise names it and goes on: the scripts
# then fail (java skips) saying which program is missing.
$(INTEG_DEPS_OK): | $(DEPS_OK)
	$(Q)missing=""; for pp in $(INTEG_NEEDS); do \
		command -v $${pp%%:*} >/dev/null 2>&1 || missing="$$missing $${pp#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "integration: installing$$missing"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
				|| { echo "integration: apt-get install$$missing failed" >&2; exit 0; }; \
		else \
			echo "integration: missing Debian packages:$$missing (run 'sudo apt-get install$$missing')" >&2; exit 0; \
		fi; \
	fi; \
	mkdir -p $(dir $@) && touch $@

$(INTEG_DIR)/ctor_dlsym: tests/integration/ctor_dlsym.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(filter-out -fsanitize=%,$(CFLAGS_COMMON)) -fno-builtin-malloc -o $@ $< -ldl

# ebb_ctl/ebb_stats through dlsym, malloc from the preloaded library
$(INTEG_DIR)/ctl_live: tests/integration/ctl_live.c include/ebbmalloc.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(filter-out -fsanitize=%,$(CFLAGS_COMMON)) -fno-builtin-malloc -fno-builtin-free -o $@ $< -ldl

$(INTEG_DIR)/named_maps: tests/integration/named_maps.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(filter-out -fsanitize=%,$(CFLAGS_COMMON)) -fno-builtin-malloc -fno-builtin-free -o $@ $<

.PHONY: test-integration
test-integration: $(INTEG_DEPS_OK) $(INTEG_DIR)/ctor_dlsym $(INTEG_DIR)/ctl_live $(INTEG_DIR)/named_maps $(INTEG_LIB_DEP)
	$(Q)tests/run_tests.sh integration 300 $(addprefix tests/integration/,$(addsuffix .sh,$(INTEG_SCRIPTS)))
test: test-integration

# The fastfree build (Makefile) under the same real programs, and start-up
# and EBB_VERBOSE (which names the build): its malloc reads the words of
# blocks it hands out and its flushes check them, so a hand-out path that
# left the key behind would abort a correct program here.
INTEG_FF_SCRIPTS := startup options python java gcc git sqlite perl sort node postgres
.PHONY: test-integration-fastfree
test-integration-fastfree: $(INTEG_DEPS_OK) $(INTEG_DIR)/ctor_dlsym $(LIB_FF_SO)
	$(Q)EBB_TEST_PRELOAD=$(abspath $(LIB_FF_SO)) tests/run_tests.sh integration-fastfree 300 \
		$(addprefix tests/integration/,$(addsuffix .sh,$(INTEG_FF_SCRIPTS)))
test: test-integration-fastfree
