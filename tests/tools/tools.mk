# tests/tools/tools.mk - the suite test-tools: each tool in tools/ run
# against real processes (helpers built here: heapload, also linked with
# libebbmalloc.a, a fake stats-file writer, a no-op preload library),
# asserting on what it prints.
TOOLS_TEST_BINS    := $(addprefix $(BUILD)/tools/,ebbrun ebbstat ebb-doctor rsswatch)
TOOLS_TEST_HELPERS := $(BUILD)/tests/tools/heapload $(BUILD)/tests/tools/fake_statswriter \
	$(BUILD)/tests/tools/libnoop.so $(BUILD)/tests/tools/heapload-ebb
TOOLS_TEST_SCRIPTS := $(sort $(wildcard tests/tools/test_*.sh))

# What the tests run the tools against: a JDK (a real JVM under glibc), the
# anchor allocators to preload, gnuplot for the plots. Installed with the
# other packages on a fresh machine (EXTRA_PKGS), and by the stamp below
# when this suite is added to a tree whose deps step already ran.
TOOLS_TEST_PKGS := openjdk-17-jdk-headless libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 gnuplot-nox
EXTRA_PKGS += $(TOOLS_TEST_PKGS)
TOOLS_TEST_DEPS := $(BUILD)/.tools-test-deps-ok

$(TOOLS_TEST_DEPS):
	$(Q)missing=""; for p in $(TOOLS_TEST_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "test-tools: installing$$missing"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
				|| echo "test-tools: apt-get install$$missing failed; the checks that need them will say so" >&2; \
		else \
			echo "test-tools: missing Debian packages:$$missing (sudo apt-get install$$missing); the checks that need them will say so" >&2; \
		fi; \
	fi
	$(Q)mkdir -p $(BUILD) && touch $@

# The helpers stand for ordinary programs on glibc's malloc: no sanitizer
# (SAN=address would replace malloc and there would be no arenas to find).
TOOLS_HELPER_CFLAGS := $(filter-out $(SANFLAGS),$(CFLAGS_COMMON))

$(BUILD)/tests/tools/heapload $(BUILD)/tests/tools/fake_statswriter: $(BUILD)/tests/tools/%: tests/tools/%.c include/ebbmalloc.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(TOOLS_HELPER_CFLAGS) -o $@ $<

# heapload with ebbmalloc linked in statically (malloc replaced): what
# ebb-doctor must recognise without any library to see in the maps
$(BUILD)/tests/tools/heapload-ebb: tests/tools/heapload.c include/ebbmalloc.h $(LIB_A) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $< (with $(LIB_A))"
	$(Q)$(CC) $(CFLAGS_COMMON) -o $@ $< $(LIB_A) $(LIB_LDLIBS)

$(BUILD)/tests/tools/libnoop.so: tests/tools/noop_preload.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(TOOLS_HELPER_CFLAGS) -shared -fPIC -o $@ $<

.PHONY: test-tools
test-tools: $(TOOLS_TEST_BINS) $(TOOLS_TEST_HELPERS) $(LIB_SO) $(LIB_FF_SO) | $(TOOLS_TEST_DEPS)
	$(Q)BUILD=$(BUILD) tests/run_tests.sh tools $(TEST_TIMEOUT) $(TOOLS_TEST_SCRIPTS)
test: test-tools
