# tests/unit/unit.mk - cmocka unit tests, one executable per module:
# tests/unit/test_NAME.c is linked against build/libebbmalloc-ebb.a (the
# allocator without its malloc aliases, so cmocka keeps using libc's malloc)
# and may call internal (hidden) functions through alloc/internal.h.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
UNIT_CFLAGS := $(CFLAGS_COMMON) -Wno-missing-prototypes

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB_EBB_A) $(HDRS)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(UNIT_CFLAGS) -o $@ $< $(UNIT_WRAP) $(LIB_EBB_A) -lcmocka $(LIB_LDLIBS)

# test_chunk watches every unmapping the allocator makes
$(BUILD)/tests/unit/test_chunk: UNIT_WRAP := -Wl,--wrap=os_unmap -Wl,--wrap=os_remap_move
# test_arena slows chunk mapping down to make threads race for it
$(BUILD)/tests/unit/test_arena: UNIT_WRAP := -Wl,--wrap=chunk_new
# test_reclaim_start sees where the reclaim thread is started from
$(BUILD)/tests/unit/test_reclaim_start: UNIT_WRAP := -Wl,--wrap=pthread_create

.PHONY: test-unit
test-unit: $(UNIT_BINS)
	$(Q)tests/run_tests.sh unit $(TEST_TIMEOUT) $(UNIT_BINS)
test: test-unit
