# ebbmalloc - top-level Makefile.
#
#   make            build/libebbmalloc.so, build/libebbmalloc.a (malloc replaced),
#                   build/libebbmalloc-ebb.a (ebb_* API only, beside libc's malloc),
#                   build/libebbmalloc-fastfree.so and .a (free does not read the block),
#                   build/libebbmalloc-ebb-fastfree.a (its ebb_* API beside libc's), tools
#   make test       every test (unit, stress, real programs under LD_PRELOAD, NUMA VM, tools)
#   make check      make test, then DEBUG=3, ASan/UBSan, TSan builds, a fuzzing round and
#                   the fuzz corpus under TSan (.ci/run)
#   make demo       a JVM churning native memory under glibc and under ebbmalloc, RSS side by side
#   make bench      the benchmark runner (bench/run)
#   make install    PREFIX=/usr/local DESTDIR=
#   DEBUG=0..3      assertion level (3 = invariant walkers), SAN=address|thread|undefined
#
# Every target that compiles depends on `deps`, which installs missing Debian
# packages when run as root and otherwise stops naming what is missing.

CC       ?= cc
DEBUG    ?= 0
SAN      ?=
PREFIX   ?= /usr/local
DESTDIR  ?=
V        ?= 0
BUILD    ?= build

ifeq ($(V),0)
Q := @
else
Q :=
endif

DEPS_PKGS := build-essential pkg-config liburing-dev libnuma-dev libcmocka-dev

OPT      := -O2
ifneq ($(DEBUG),0)
OPT      := -O1
endif
SANFLAGS :=
ifneq ($(SAN),)
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer
endif

CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Wno-unused-parameter \
	-Wshadow -Wstrict-prototypes -Wmissing-prototypes -pthread \
	-Iinclude -Ialloc -Ireclaim -Inuma -DEBB_DEBUG=$(DEBUG) $(SANFLAGS)
LIB_CFLAGS := $(CFLAGS_COMMON) -fPIC -fvisibility=hidden -ftls-model=initial-exec \
	-fno-semantic-interposition -fno-builtin-malloc -fno-builtin-free -fno-stack-protector \
	-fno-tree-slp-vectorize
LIB_LDLIBS := -luring -lpthread

CORE_SRCS := $(wildcard alloc/*.c numa/*.c reclaim/*.c)
SHIM_SRCS := alloc/shim.c
EBB_SRCS  := $(filter-out $(SHIM_SRCS),$(CORE_SRCS))
CORE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRCS))
EBB_OBJS  := $(patsubst %.c,$(BUILD)/obj/%.o,$(EBB_SRCS))
HDRS      := $(wildcard include/*.h alloc/*.h alloc/*.def reclaim/*.h numa/*.h)

LIB_SO    := $(BUILD)/libebbmalloc.so
# The fastfree build: the same library but for a free fast path that does
# not read the block (alloc/fastpath.h, EBB_FREE_READS_BLOCK=0). Only the
# two files that inline the fast paths are compiled again.
FF_SRCS   := alloc/malloc.c alloc/shim.c
FF_OBJS   := $(filter-out $(patsubst %.c,$(BUILD)/obj/%.o,$(FF_SRCS)),$(CORE_OBJS)) \
	$(patsubst %.c,$(BUILD)/obj-fastfree/%.o,$(FF_SRCS))
LIB_FF_SO := $(BUILD)/libebbmalloc-fastfree.so
LIB_FF_A  := $(BUILD)/libebbmalloc-fastfree.a
LIB_A     := $(BUILD)/libebbmalloc.a
LIB_EBB_A := $(BUILD)/libebbmalloc-ebb.a
# the ebb_* API of the fastfree build, beside libc's malloc
LIB_EBB_FF_A := $(BUILD)/libebbmalloc-ebb-fastfree.a
EBB_FF_OBJS  := $(filter-out $(BUILD)/obj/alloc/malloc.o,$(EBB_OBJS)) $(BUILD)/obj-fastfree/alloc/malloc.o
DEPS_OK   := $(BUILD)/.deps-ok

.PHONY: all lib deps test test-unit check demo bench install clean format-check lint
all: lib

lib: $(LIB_SO) $(LIB_A) $(LIB_EBB_A) $(LIB_FF_SO) $(LIB_FF_A) $(LIB_EBB_FF_A)

# ---- dependencies --------------------------------------------------------
deps: $(DEPS_OK)
$(DEPS_OK):
	$(Q)missing=""; for p in $(DEPS_PKGS) $(EXTRA_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "deps: installing$$missing"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
				|| { echo "deps: apt-get install$$missing failed" >&2; exit 1; }; \
		else \
			echo "deps: missing Debian packages:$$missing (run 'sudo apt-get install$$missing' or run make as root)" >&2; exit 1; \
		fi; \
	fi
	$(Q)mkdir -p $(BUILD) && touch $@

# ---- the library -----------------------------------------------------------
$(BUILD)/obj/%.o: %.c $(HDRS) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(LIB_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj-fastfree/%.o: %.c $(HDRS) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $< (fastfree)"
	$(Q)$(CC) $(LIB_CFLAGS) $(CFLAGS) -DEBB_FREE_READS_BLOCK=0 -c $< -o $@

$(LIB_SO): $(CORE_OBJS)
	@echo "  LD  $@"
	$(Q)$(CC) -shared -fPIC -Wl,-soname,libebbmalloc.so -Wl,-z,nodelete $(SANFLAGS) -pthread \
		-o $@ $(CORE_OBJS) $(LIB_LDLIBS)

$(LIB_FF_SO): $(FF_OBJS)
	@echo "  LD  $@"
	$(Q)$(CC) -shared -fPIC -Wl,-soname,libebbmalloc-fastfree.so -Wl,-z,nodelete $(SANFLAGS) -pthread \
		-o $@ $(FF_OBJS) $(LIB_LDLIBS)

$(LIB_A): $(CORE_OBJS)
	@echo "  AR  $@"
	$(Q)rm -f $@ && ar rcs $@ $(CORE_OBJS)

$(LIB_EBB_A): $(EBB_OBJS)
	@echo "  AR  $@"
	$(Q)rm -f $@ && ar rcs $@ $(EBB_OBJS)

$(LIB_FF_A): $(FF_OBJS)
	@echo "  AR  $@"
	$(Q)rm -f $@ && ar rcs $@ $(FF_OBJS)

$(LIB_EBB_FF_A): $(EBB_FF_OBJS)
	@echo "  AR  $@"
	$(Q)rm -f $@ && ar rcs $@ $(EBB_FF_OBJS)

$(BUILD)/ebbmalloc.pc: Makefile
	@mkdir -p $(BUILD)
	$(Q)printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: ebbmalloc\nDescription: NUMA-aware malloc replacement that keeps RSS flat\nVersion: 0.1\nLibs: -L$${libdir} -lebbmalloc\nLibs.private: -luring -lpthread\nCflags: -I$${includedir}\n' '$(PREFIX)' > $@

install: lib $(BUILD)/ebbmalloc.pc
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(LIB_SO) $(LIB_FF_SO) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(LIB_A) $(LIB_EBB_A) $(LIB_FF_A) $(LIB_EBB_FF_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/ebbmalloc.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/ebbmalloc.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	@if [ -n "$(TOOLS_BINS)" ]; then install -d $(DESTDIR)$(PREFIX)/bin && install -m 755 $(TOOLS_BINS) $(DESTDIR)$(PREFIX)/bin/; fi

# ---- lint: only the OS layer, the backends and numa/ may touch the kernel --
# and no object of the library calls libc's allocator or stdio: error and
# assert paths never allocate (ebb_message formats into a stack buffer and
# writes once); malloc_info's fprintf to the caller's FILE (shim.c) is the
# one use of stdio.
LINT_ALLOC := malloc|calloc|realloc|reallocarray|free|strdup|strndup|asprintf|vasprintf|open_memstream
LINT_STDIO := printf|fprintf|vfprintf|sprintf|snprintf|vsnprintf|puts|fputs|perror|fopen|fdopen|fwrite|fflush
lint: $(CORE_OBJS)
	$(Q)bad=$$(grep -lE '#include <(sys/mman.h|liburing.h|numa.h|numaif.h)>' alloc/*.c alloc/*.h | grep -v 'alloc/os_linux.c'); \
	if [ -n "$$bad" ]; then echo "lint: kernel headers outside the OS layer: $$bad" >&2; exit 1; fi
	$(Q)bad=$$(for o in $(CORE_OBJS); do \
		pat='$(LINT_ALLOC)'; [ "$$o" = $(BUILD)/obj/alloc/shim.o ] || pat="$$pat|$(LINT_STDIO)"; \
		nm -u $$o | awk '{print $$2}' | grep -xE "$$pat" | sed "s|^|$$o calls |"; done); \
	if [ -n "$$bad" ]; then echo "lint: the allocator calls libc's allocator or stdio:" >&2; echo "$$bad" >&2; exit 1; fi
	$(Q)echo "lint: ok"

# ---- format-check: the house layout, checked mechanically (.ci/format-check
# says what and why it is not clang-format; .clang-format is for editors)
FORMAT_SRCS := $(sort $(wildcard alloc/*.[ch] include/*.h reclaim/*.[ch] numa/*.[ch] bench/*.[ch] \
		tools/*.[ch] tests/*/*.[ch] tests/*/*/*.[ch]))
format-check:
	$(Q).ci/format-check $(FORMAT_SRCS) && echo "format-check: ok ($(words $(FORMAT_SRCS)) files)"

clean:
	rm -rf $(BUILD)

# ---- the parts that live in their folders -----------------------------------
-include tests/tests.mk
-include tools/tools.mk
-include bench/bench.mk
