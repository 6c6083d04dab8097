# bench/bench.mk - the benchmark suite (never part of `make test`).
#
#   make bench        build the workloads, run bench/run with its defaults
#                     (every workload, every allocator found, 3 interleaved runs)
#   make demo         build ebbmalloc, run the JVM workload under glibc and
#                     under ebbmalloc, print their RSS side by side
#   make bench-bins   only build the workloads (build/bench/)
#   make bench-bins-toy  thread-cache bin layouts (list, slot stack) in toy
#                     allocators under smallst (bench/bins_toy.c)
#   make bench-backends  the three reclaim backends on the same 1 GiB of
#                     purges, in ranges of 4-64 KiB and of 4 KiB-2 MiB
#                     (bench/purge_backends.c); writes
#                     bench/results/purge-backends.txt
#
# The C workloads use plain malloc/free and link nothing of ebbmalloc, so any
# allocator can be preloaded. Options for the runner: BENCH_ARGS="--quick ...".

BENCH_NAMES := larson prodcons smallst realloc churn frag latency parked
BENCH_BINS  := $(patsubst %,$(BUILD)/bench/bench_%,$(BENCH_NAMES)) $(BUILD)/bench/callgrind_pair
BENCH_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wno-unused-parameter -pthread
BENCH_PKGS  := gnuplot-nox python3 openjdk-17-jdk-headless valgrind
BENCH_DEPS  := $(BUILD)/.bench-deps-ok
BENCH_JAVA_HOME ?= /usr/lib/jvm/java-17-openjdk-amd64
BENCH_JVM   := $(BUILD)/bench/jvm/NativeChurn.class
BENCH_ARGS  ?=
DEMO_ARGS   ?=

EXTRA_PKGS += gnuplot-nox python3 openjdk-17-jdk-headless

.PHONY: bench-bins bench-deps

# The packages the benchmarks need, installed when root (same pattern as
# `deps` in the Makefile), or named when not.
bench-deps: $(BENCH_DEPS)
$(BENCH_DEPS):
	$(Q)missing=""; for p in $(BENCH_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "bench-deps: installing$$missing"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
				|| { echo "bench-deps: apt-get install$$missing failed" >&2; exit 1; }; \
		else \
			echo "bench-deps: missing Debian packages:$$missing (run 'sudo apt-get install$$missing' or run make as root)" >&2; exit 1; \
		fi; \
	fi
	$(Q)mkdir -p $(BUILD) && touch $@

$(BUILD)/bench/bench_%: bench/%.c bench/bench.h | $(BENCH_DEPS)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(BENCH_CFLAGS) -o $@ $<

# -fno-builtin-*: the compiler must not delete free(malloc(48)).
$(BUILD)/bench/callgrind_pair: bench/callgrind_pair.c | $(BENCH_DEPS)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(BENCH_CFLAGS) -fno-builtin-malloc -fno-builtin-free -o $@ $<

$(BENCH_JVM): bench/jvm/NativeChurn.java | $(BENCH_DEPS)
	@mkdir -p $(dir $@)
	@echo "  JAVAC $<"
	$(Q)jc=$(BENCH_JAVA_HOME)/bin/javac; [ -x "$$jc" ] || jc=javac; \
		$$jc -d $(BUILD)/bench/jvm $< 2>$(BUILD)/bench/javac.log || { cat $(BUILD)/bench/javac.log; exit 1; }

bench-bins: $(BENCH_BINS) $(BENCH_JVM)

# Issue 4, point 3: which backend is cheapest here. Links the ebb_*-only
# archive for the backends and what they use (fault injection, stats), so
# the program's own malloc stays glibc's.
PURGE_BENCH := $(BUILD)/bench/purge_backends
PURGE_BENCH_ARGS ?=
.PHONY: bench-backends
$(PURGE_BENCH): bench/purge_backends.c $(LIB_EBB_A) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(BENCH_CFLAGS) -Iinclude -Ialloc -Ireclaim -o $@ $< $(LIB_EBB_A) $(LIB_LDLIBS)

bench-backends: $(PURGE_BENCH)
	$(Q){ echo "# bench/purge_backends ($$(date -u '+%Y-%m-%d %H:%M UTC'); $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $$(nproc) cores, kernel $$(uname -r); git $$(git rev-parse --short HEAD 2>/dev/null || echo '?'))"; \
		$(PURGE_BENCH) maxkib=64 $(PURGE_BENCH_ARGS); echo; \
		$(PURGE_BENCH) $(PURGE_BENCH_ARGS); } | tee bench/results/purge-backends.txt

bench: bench-bins
	$(Q)python3 bench/run $(BENCH_ARGS)

# Thread-cache bin layouts under bench_smallst: five toy allocators
# (bench/bins_toy.c) against tcmalloc and ebbmalloc; writes
# $(BUILD)/bench/bins-toy.md (not bench/results/bins-toy.md, whose dated
# tables a run would overwrite). BINS_TOY_ARGS="-n 9 --secs 3".
BINS_TOY_ARGS ?=
.PHONY: bench-bins-toy
bench-bins-toy: lib $(BUILD)/bench/bench_smallst
	$(Q)python3 bench/bins_toy $(BINS_TOY_ARGS) | tee $(BUILD)/bench/bins-toy.md

demo: $(BENCH_DEPS)
	$(Q)$(MAKE) --no-print-directory lib
	$(Q)$(MAKE) --no-print-directory bench-bins
	$(Q)python3 bench/run --demo $(DEMO_ARGS)

# Issue 5, point 5: throughput with NUMA on against NUMA off inside the
# multi-node VM of tests/numa_vm (2 and 4 nodes, 5 alternating runs of 3 s
# per mode; the summary line is `numavm: bench RESULT`). Not part of `make
# bench`: it boots QEMU (TCG here), about 2 minutes per node count.
NUMA_BENCH := $(BUILD)/numa_vm/numa-bench
.PHONY: bench-numa-vm
$(NUMA_BENCH): bench/numa_vm_bench.c $(LIB_A) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $@"
	$(Q)$(CC) $(BENCH_CFLAGS) -static -o $@ $< $(LIB_A) $(LIB_LDLIBS)

bench-numa-vm: $(NUMA_BENCH) numa-vm-pkgs
	$(Q)for n in 2 4; do NUMA_VM_WORK=$(BUILD)/numa_vm NUMA_VM_TIMEOUT=600 \
		tests/numa_vm/run.sh $$n $(NUMA_BENCH) || exit 1; done
