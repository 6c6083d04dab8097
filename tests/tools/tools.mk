# tests/tools/tools.mk - the suite test-tools: each tool in tools/ run
# against real processes (helpers built here: heapload, a fake stats-file
# writer, a no-op preload library), asserting on what it prints.
TOOLS_TEST_BINS    := $(addprefix $(BUILD)/tools/,ebbrun ebbstat ebb-doctor rsswatch)
TOOLS_TEST_HELPERS := $(BUILD)/tests/tools/heapload $(BUILD)/tests/tools/fake_statswriter \
	$(BUILD)/tests/tools/libnoop.so
TOOLS_TEST_SCRIPTS := $(sort $(wildcard tests/tools/test_*.sh))

$(BUILD)/tests/tools/heapload $(BUILD)/tests/tools/fake_statswriter: $(BUILD)/tests/tools/%: tests/tools/%.c include/ebbmalloc.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(CFLAGS_COMMON) -o $@ $<

$(BUILD)/tests/tools/libnoop.so: tests/tools/noop_preload.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(CFLAGS_COMMON) -shared -fPIC -o $@ $<

.PHONY: test-tools
test-tools: $(TOOLS_TEST_BINS) $(TOOLS_TEST_HELPERS)
	$(Q)BUILD=$(BUILD) tests/run_tests.sh tools $(TEST_TIMEOUT) $(TOOLS_TEST_SCRIPTS)
test: test-tools
