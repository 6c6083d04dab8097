# tests/link/link.mk - linking ebbmalloc the six documented ways.
.PHONY: test-link
test-link: lib
	$(Q)tests/run_tests.sh link $(TEST_TIMEOUT) "tests/link/link.sh $(BUILD)"
test: test-link
