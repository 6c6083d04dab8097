# tests/fuzz/fuzz.mk - libFuzzer harness (issue 8).
#
#   make fuzz [FUZZ_TIME=60]   build $(BUILD)/fuzz/fuzz_ebb and run it for
#                              FUZZ_TIME seconds on tests/fuzz/corpus (new
#                              inputs go to $(BUILD)/fuzz/corpus, crashes to
#                              $(BUILD)/fuzz/crash-*)
#   make fuzz-tsan             replay the committed corpus REPLAY_ROUNDS
#                              times (tests/fuzz/replay.c) through clang
#                              TSan builds of the harness and library, the
#                              default and the fastfree build, with idle
#                              steals every millisecond ($(BUILD)/fuzz-tsan)
#   test-hardening runs a 20 s round (tests/fuzz/run_fuzz.sh), or skips
#   (exit 77) when clang's libFuzzer cannot be installed.
#
# The library is built again with clang, DEBUG=3 (assertions and walkers),
# ASan + UBSan and coverage (-fsanitize=fuzzer-no-link) in $(BUILD)/fuzz;
# the harness links its libebbmalloc-ebb.a.
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_BIN   := $(FUZZ_BUILD)/fuzz_ebb
FUZZ_TIME  ?= 60
FUZZ_PKGS  := clang libclang-rt-14-dev
FUZZ_DEPS_OK := $(BUILD)/.fuzz-deps-ok
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -pthread \
	-Iinclude -Ialloc -Ireclaim -Inuma -Itests/hardening -DEBB_DEBUG=3 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

# clang and its libFuzzer runtime: installed when root, else named.
$(FUZZ_DEPS_OK):
	$(Q)missing=""; for p in $(FUZZ_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "fuzz deps: installing$$missing"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
				|| { echo "fuzz deps: apt-get install$$missing failed" >&2; exit 1; }; \
		else \
			echo "fuzz deps: missing Debian packages:$$missing (run 'sudo apt-get install$$missing')" >&2; exit 1; \
		fi; \
	fi
	$(Q)mkdir -p $(BUILD) && touch $@

.PHONY: fuzz fuzz-bin FORCE_FUZZ
FORCE_FUZZ:
# the sub-make decides whether the clang library is up to date
$(FUZZ_BIN): tests/fuzz/fuzz_ebb.c tests/hardening/hard.h include/ebbmalloc.h FORCE_FUZZ | $(FUZZ_DEPS_OK)
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang DEBUG=3 SAN=address,undefined \
		CFLAGS="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all -Wno-ignored-optimization-argument -Wno-unknown-warning-option" \
		$(FUZZ_BUILD)/libebbmalloc-ebb.a
	@[ "$(V)" != 0 ] || echo "  CC  tests/fuzz/fuzz_ebb.c (libFuzzer)"
	$(Q)clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_ebb.c $(FUZZ_BUILD)/libebbmalloc-ebb.a $(LIB_LDLIBS)
fuzz-bin: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	$(Q)tests/fuzz/run_fuzz.sh $(FUZZ_BIN) $(FUZZ_TIME)

# for test-hardening (tests/hardening/hardening.mk): build the harness if
# clang can be had; if not, run_fuzz.sh skips (77) and says why
.PHONY: fuzz-try-build
fuzz-try-build:
	-$(Q)$(MAKE) --no-print-directory $(FUZZ_BIN) || echo "fuzz: harness not built (see above); the round will be skipped"
FUZZ_SUITE_TESTS := "tests/fuzz/run_fuzz.sh $(FUZZ_BIN) 20"

# ---- the corpus under TSan ---------------------------------------------------
# libFuzzer does not build with TSan, so the corpus is replayed by a plain
# driver. The races it looks for are between the inputs' threads and the
# reclaim thread's idle steals (EBB_TCACHE_IDLE_MS=1): it found malloc(0)
# popping a bin the reclaim thread was flushing (ba88ef8), which the ASan
# fuzzer had hit once in weeks as an "invalid pointer" on a live block.
TSAN_FUZZ_BUILD := $(BUILD)/fuzz-tsan
TSAN_FUZZ_BIN   := $(TSAN_FUZZ_BUILD)/replay_tsan
TSAN_FUZZ_FF_BIN := $(TSAN_FUZZ_BUILD)/replay_tsan_fastfree
REPLAY_ROUNDS   ?= 2
TSAN_FUZZ_CFLAGS := $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(FUZZ_CFLAGS)) -fsanitize=thread
.PHONY: fuzz-tsan FORCE_TSAN_FUZZ
FORCE_TSAN_FUZZ:
# both builds' ebb_* libraries (the sub-make decides what is up to date),
# then a harness for each
$(TSAN_FUZZ_BIN): tests/fuzz/fuzz_ebb.c tests/fuzz/replay.c tests/hardening/hard.h include/ebbmalloc.h FORCE_TSAN_FUZZ | $(FUZZ_DEPS_OK)
	$(Q)$(MAKE) --no-print-directory BUILD=$(TSAN_FUZZ_BUILD) CC=clang DEBUG=3 SAN=thread \
		CFLAGS="-Wno-unknown-warning-option" $(TSAN_FUZZ_BUILD)/libebbmalloc-ebb.a $(TSAN_FUZZ_BUILD)/libebbmalloc-ebb-fastfree.a
	@[ "$(V)" != 0 ] || echo "  CC  tests/fuzz/fuzz_ebb.c tests/fuzz/replay.c (TSan, both builds)"
	$(Q)clang $(TSAN_FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_ebb.c tests/fuzz/replay.c \
		$(TSAN_FUZZ_BUILD)/libebbmalloc-ebb.a $(LIB_LDLIBS)
	$(Q)clang $(TSAN_FUZZ_CFLAGS) -o $(TSAN_FUZZ_FF_BIN) tests/fuzz/fuzz_ebb.c tests/fuzz/replay.c \
		$(TSAN_FUZZ_BUILD)/libebbmalloc-ebb-fastfree.a $(LIB_LDLIBS)

fuzz-tsan: $(TSAN_FUZZ_BIN)
	$(Q)st=0; for b in $(TSAN_FUZZ_BIN) $(TSAN_FUZZ_FF_BIN); do \
		echo "== the fuzz corpus under TSan ($$(basename $$b)), $(REPLAY_ROUNDS) rounds, idle steals every 1 ms"; \
		EBB_TCACHE_IDLE_MS=1 REPLAY_ROUNDS=$(REPLAY_ROUNDS) TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
			$$b tests/fuzz/corpus/* 2>$$b.log; \
		rc=$$?; tail -n 1 $$b.log; \
		if [ $$rc != 0 ]; then tail -n 80 $$b.log; echo "fuzz-tsan: $$(basename $$b) FAILED (exit $$rc)"; st=1; fi; \
	done; exit $$st
