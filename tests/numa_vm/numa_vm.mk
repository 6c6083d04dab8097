# tests/numa_vm/numa_vm.mk - the real multi-node NUMA test (issue 5, point 4).
#
#   make test-numa-vm   boot Debian's stock kernel under QEMU with 2 and with
#                       4 NUMA nodes and run driver-ebb (the driver linked
#                       statically with build/libebbmalloc.a); part of `make test`
#   make numa-vm-glibc  the same VMs with driver-glibc (glibc's malloc) and,
#                       when the library builds, driver-ebb side by side: a
#                       table of local-page percentages; not part of `make test`
#   make numa-vm-anchors the same plus jemalloc, tcmalloc and mimalloc (and
#                       libebbmalloc.so) under LD_PRELOAD of a dynamic driver
#
# The kernel is cached in /var/cache/ebbmalloc-numa-vm (or build/numa_vm/cache
# when that is not writable). See tests/numa_vm/README.md.

NUMA_VM_DIR      := $(BUILD)/numa_vm
NUMA_VM_PKGS     := qemu-system-x86 busybox-static
NUMA_VM_PKGS_OK  := $(NUMA_VM_DIR)/.pkgs-ok
NUMA_VM_TIMEOUT  ?= 240
NUMA_VM_CFLAGS   := $(filter-out $(SANFLAGS),$(CFLAGS_COMMON)) -static
NUMA_VM_RUN      := NUMA_VM_WORK=$(NUMA_VM_DIR) tests/numa_vm/run.sh
# not in EXTRA_PKGS: a plain `make` or `make demo` need not pull in qemu;
# the stamp below installs them for this suite only

NUMA_VM_ANCHORS  := jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
	tcmalloc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
	mimalloc=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0

.PHONY: test-numa-vm numa-vm-glibc numa-vm-anchors numa-vm-pkgs

# The deps stamp may predate this fragment: install what is missing here
# too when root (without the GUI recommends), else leave it to run.sh,
# which skips (77) and says why. Not a failure of the build.
numa-vm-pkgs: $(NUMA_VM_PKGS_OK)
$(NUMA_VM_PKGS_OK): | $(DEPS_OK)
	$(Q)missing=""; for p in $(NUMA_VM_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
		echo "numa-vm: installing$$missing"; \
		(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null || true; \
		missing=""; for p in $(NUMA_VM_PKGS); do \
			dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
		done; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "numa-vm: missing Debian packages:$$missing (the NUMA VM test will be skipped)"; \
	else \
		mkdir -p $(dir $@) && touch $@; \
	fi

$(NUMA_VM_DIR)/driver-ebb: tests/numa_vm/driver.c $(LIB_A) include/ebbmalloc.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $@"
	$(Q)$(CC) $(NUMA_VM_CFLAGS) -DNUMAVM_EBB -o $@ $< $(LIB_A) $(LIB_LDLIBS)

$(NUMA_VM_DIR)/driver-glibc: tests/numa_vm/driver.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $@"
	$(Q)$(CC) $(NUMA_VM_CFLAGS) -o $@ $< -lpthread

$(NUMA_VM_DIR)/driver-dyn: tests/numa_vm/driver.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" != 0 ] || echo "  CC  $@"
	$(Q)$(CC) $(filter-out $(SANFLAGS),$(CFLAGS_COMMON)) -o $@ $< -lpthread

ifeq ($(SAN),)
test-numa-vm: $(NUMA_VM_DIR)/driver-ebb numa-vm-pkgs
	$(Q)tests/run_tests.sh numa-vm $(NUMA_VM_TIMEOUT) \
		"$(NUMA_VM_RUN) 2 $(NUMA_VM_DIR)/driver-ebb" \
		"$(NUMA_VM_RUN) 4 $(NUMA_VM_DIR)/driver-ebb"
else
# A static binary cannot carry the sanitizer runtimes the library was built with.
test-numa-vm:
	$(Q)tests/run_tests.sh numa-vm 10 \
		"echo 'numa-vm: the static VM driver cannot be built with SAN=$(SAN)'; exit 77"
endif
test: test-numa-vm

numa-vm-glibc: $(NUMA_VM_DIR)/driver-glibc numa-vm-pkgs
	$(Q)$(MAKE) --no-print-directory $(NUMA_VM_DIR)/driver-ebb >/dev/null 2>&1 || \
		{ rm -f $(NUMA_VM_DIR)/driver-ebb; echo "numa-vm: driver-ebb does not build (make lib fails?): glibc only"; }
	$(Q)for n in 2 4; do \
		$(NUMA_VM_RUN) --report $$n $(NUMA_VM_DIR)/driver-glibc $$(ls $(NUMA_VM_DIR)/driver-ebb 2>/dev/null) || exit 1; \
	done

numa-vm-anchors: $(NUMA_VM_DIR)/driver-glibc $(NUMA_VM_DIR)/driver-dyn numa-vm-pkgs
	$(Q)$(MAKE) --no-print-directory $(NUMA_VM_DIR)/driver-ebb $(LIB_SO) >/dev/null 2>&1 || \
		{ rm -f $(NUMA_VM_DIR)/driver-ebb; echo "numa-vm: driver-ebb does not build (make lib fails?)"; }
	$(Q)pre=""; for a in $(NUMA_VM_ANCHORS) ebbmalloc.so=$(LIB_SO); do \
		[ -f "$${a#*=}" ] && pre="$$pre --preload $$a"; \
	done; \
	for n in 2 4; do \
		NUMA_VM_TIMEOUT=400 $(NUMA_VM_RUN) --report --dyn $(NUMA_VM_DIR)/driver-dyn $$pre \
			$$n $(NUMA_VM_DIR)/driver-glibc $$(ls $(NUMA_VM_DIR)/driver-ebb 2>/dev/null) || exit 1; \
	done
