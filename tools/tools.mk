# tools/tools.mk - the operators' programs: ebbrun, ebbstat, ebb-doctor, rsswatch.
#
# They are plain libc programs: they never link the allocator (no LIB_SO,
# LIB_A or LIB_EBB_A here), so they work on any process and cannot be
# broken by the allocator they inspect. They only include ebbmalloc.h for
# the stats-file layout.
TOOLS_NAMES  := ebbrun ebbstat ebb-doctor rsswatch
TOOLS_BINS   := $(addprefix $(BUILD)/tools/,$(TOOLS_NAMES))
TOOLS_COMMON := tools/fmt.c tools/proc.c tools/statsfile.c
TOOLS_HDRS   := tools/tools.h include/ebbmalloc.h
TOOLS_CFLAGS := $(CFLAGS_COMMON) -Itools

# rsswatch --plot needs gnuplot at run time (not to build): install it with
# the other packages when we can, otherwise rsswatch says what is missing.
EXTRA_PKGS += gnuplot-nox
TOOLS_PLOT_OK := $(BUILD)/.tools-gnuplot-ok

all: $(TOOLS_BINS)
.PHONY: tools
tools: $(TOOLS_BINS)

$(BUILD)/tools/%: tools/%.c $(TOOLS_COMMON) $(TOOLS_HDRS) | $(DEPS_OK) $(TOOLS_PLOT_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(TOOLS_CFLAGS) $(CFLAGS) -o $@ $< $(TOOLS_COMMON) $(LDFLAGS)

# ebb-doctor's source file name uses an underscore (a C file name)
$(BUILD)/tools/ebb-doctor: tools/ebb_doctor.c $(TOOLS_COMMON) $(TOOLS_HDRS) | $(DEPS_OK) $(TOOLS_PLOT_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $<"
	$(Q)$(CC) $(TOOLS_CFLAGS) $(CFLAGS) -o $@ $< $(TOOLS_COMMON) $(LDFLAGS)

$(TOOLS_PLOT_OK):
	$(Q)if ! command -v gnuplot >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "tools: installing gnuplot-nox (for rsswatch --plot)"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null \
				|| echo "tools: could not install gnuplot-nox; rsswatch --plot will not work" >&2; \
		else \
			echo "tools: gnuplot is missing (apt-get install gnuplot-nox); rsswatch --plot will not work" >&2; \
		fi; \
	fi
	$(Q)mkdir -p $(BUILD) && if command -v gnuplot >/dev/null 2>&1; then touch $@; fi
