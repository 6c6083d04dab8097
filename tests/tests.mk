# tests/tests.mk - `make test`: every suite, then one summary line.
# A suite is a target test-NAME that runs tests/run_tests.sh NAME ...;
# fragments in tests/*/*.mk, tools/ and bench/ add theirs with `test: test-NAME`.
TEST_RUN_ID := $(shell date +%Y%m%d-%H%M%S)-$(shell echo $$$$)
export EBB_TEST_RESULTS := $(abspath $(BUILD))/test-results/$(TEST_RUN_ID)
TEST_TIMEOUT ?= 300

.PHONY: test test-summary
.NOTPARALLEL: test
test: lib
	$(Q)tests/summary.sh $(EBB_TEST_RESULTS)

-include $(wildcard tests/*/*.mk)
