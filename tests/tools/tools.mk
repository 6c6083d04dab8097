# tests/tools/tools.mk - the suite test-tools: each tool in tools/ run
# against real processes (helpers built here: heapload, also linked with
# libebbmalloc.a, a fake stats-file writer, a no-op preload library),
# asserting on what it prints.
TOOLS_TEST_BINS    := $(addprefix $(BUILD)/tools/,ebbrun ebbstat ebb-doctor rsswatch)
TOOLS_TEST_HELPERS := $(BUILD)/tests/tools/heapload $(BUILD)/tests/tools/fake_statswriter \
	$(BUILD)/tests/tools/libnoop.so $(BUILD)/tests/tools/heapload-ebb
TOOLS_TEST_SCRIPTS := $(sort $(wildcard tests/tools/test_*.sh))

$(BUILD)/tests/tools/heapload $(BUILD)/tests/tools/fake_statswriter: $(BUILD)/tests/tools/%: tests/tools/%.c include/ebbmalloc.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(CFLAGS_COMMON) -o $@ $<

# heapload with ebbmalloc linked in statically (malloc replaced): what
# ebb-doctor must recognise without any library to see in the maps
$(BUILD)/tests/tools/heapload-ebb: tests/tools/heapload.c $(LIB_A) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $< (with $(LIB_A))"
	$(Q)$(CC) $(CFLAGS_COMMON) -o $@ $< $(LIB_A) $(LIB_LDLIBS)

$(BUILD)/tests/tools/libnoop.so: tests/tools/noop_preload.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(CFLAGS_COMMON) -shared -fPIC -o $@ $<

.PHONY: test-tools
test-tools: $(TOOLS_TEST_BINS) $(TOOLS_TEST_HELPERS)
	$(Q)BUILD=$(BUILD) tests/run_tests.sh tools $(TEST_TIMEOUT) $(TOOLS_TEST_SCRIPTS)
test: test-tools
