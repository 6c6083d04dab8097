#!/usr/bin/env bash
# run.sh - host side of the NUMA VM test (issue 5, point 4): boot Debian's
# stock kernel under QEMU with NODES NUMA nodes and run the static test
# drivers (tests/numa_vm/driver.c) in it; the verdict comes from the serial
# console.
#
#   run.sh [--report] [--dyn DYN_DRIVER [--preload NAME=LIB]...] NODES [DRIVER...]
#
# DRIVER: a static driver binary. --preload NAME=LIB adds a run named NAME
# of the dynamic DYN_DRIVER under LD_PRELOAD=LIB (the anchors: jemalloc,
# tcmalloc, mimalloc, libebbmalloc.so); the loader and every library ldd
# lists are copied into the initramfs.
#
# Steps: find qemu-system-x86_64 and a static busybox; get the kernel (the
# linux-image-6.1.*-amd64 package that linux-image-amd64 depends on, via
# apt-get download + dpkg -x, cached with the vmlinux extracted from it);
# pick the accelerator (KVM probed once with a short timeout, else TCG;
# remembered in the cache); build a gzip'd newc initramfs (busybox, init,
# the drivers); boot; parse "NUMAVM-EXIT name rc=N" lines.
#
# Exit: 0 every driver passed (with --report: every driver ran to the end,
# whatever its verdict, and a table compares them), 1 a failure, 77 the VM
# cannot start here (no qemu, no static busybox, no kernel package); the
# last line then says why. Never 0 without a boot.
#
# Environment: NUMA_VM_QEMU (the qemu binary), NUMA_VM_CACHE (kernel cache dir; default
# /var/cache/ebbmalloc-numa-vm if writable, else build/numa_vm/cache),
# NUMA_VM_WORK (scratch, default build/numa_vm), NUMA_VM_ACCEL=kvm|tcg
# (force), NUMA_VM_KERNEL=bzimage (boot vmlinuz, not the PVH vmlinux), NUMA_VM_TIMEOUT (seconds per boot, default 150),
# NUMA_VM_ENV ("EBB_NUMA=on EBB_VERBOSE=1": passed to the drivers through
# the kernel command line).
set -u

here=$(cd "$(dirname "$0")" && pwd)
report=0
dyn=""
preloads=()
while [ $# -gt 0 ]; do
	case $1 in
	--report) report=1; shift ;;
	--dyn) dyn=${2:-}; shift 2 ;;
	--preload) preloads+=("${2:-}"); shift 2 ;;
	*) break ;;
	esac
done
if [ $# -lt 1 ] || { [ $# -lt 2 ] && [ ${#preloads[@]} = 0 ]; }; then
	echo "usage: $0 [--report] [--dyn DYN_DRIVER [--preload NAME=LIB]...] NODES [DRIVER...]" >&2
	exit 2
fi
nodes=$1
shift
drivers=("$@")
names=()
for d in "${drivers[@]}"; do
	names+=("${d##*/}")
done
start_s=$SECONDS

skip() { echo "numa-vm: SKIP: $*"; exit 77; }
fail() { echo "numa-vm: FAIL: $*"; exit 1; }

case $nodes in
2|3|4|5|6|7|8) ;;
*) fail "NODES must be 2..8, got '$nodes'" ;;
esac
for d in "${drivers[@]}"; do
	[ -x "$d" ] || fail "driver $d not built"
	readelf -l "$d" 2>/dev/null | grep -q INTERP && fail "driver $d is not static"
done
if [ ${#preloads[@]} -gt 0 ]; then
	[ -x "$dyn" ] || fail "--preload needs --dyn DYN_DRIVER (got '$dyn')"
	for p in "${preloads[@]}"; do
		case $p in
		?*=?*) [ -f "${p#*=}" ] || fail "preload library ${p#*=} not found"
		       names+=("${p%%=*}") ;;
		*) fail "--preload wants NAME=LIB, got '$p'" ;;
		esac
	done
fi

# ---- tools ------------------------------------------------------------------
qemu=${NUMA_VM_QEMU:-qemu-system-x86_64}
qemu=$(command -v "$qemu") ||
	skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86 as root)"
busybox=""
for b in /bin/busybox /usr/bin/busybox; do
	if [ -x "$b" ] && ! readelf -l "$b" 2>/dev/null | grep -q INTERP; then
		busybox=$b
		break
	fi
done
[ -n "$busybox" ] || skip "no static busybox (apt-get install busybox-static as root)"
for t in dpkg apt-get apt-cache gzip readelf flock; do
	command -v $t >/dev/null || skip "$t not found"
done

# ---- the kernel, cached -------------------------------------------------------
work=${NUMA_VM_WORK:-build/numa_vm}
mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd)
if [ -n "${NUMA_VM_CACHE:-}" ]; then
	cache=$NUMA_VM_CACHE
elif mkdir -p /var/cache/ebbmalloc-numa-vm 2>/dev/null && [ -w /var/cache/ebbmalloc-numa-vm ]; then
	cache=/var/cache/ebbmalloc-numa-vm
else
	cache=$work/cache
fi
mkdir -p "$cache" || fail "cannot create cache dir $cache"

kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
}

# Download and unpack the kernel package into the cache; prints why not.
fetch_kernel() {
	local pkg tmp deb vmlinuz kver
	pkg=$(kernel_pkg)
	if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
		apt-get update -qq >/dev/null 2>&1
		pkg=$(kernel_pkg)
	fi
	[ -n "$pkg" ] || { echo "apt-cache knows no linux-image-amd64 (run apt-get update as root)"; return 1; }
	tmp=$(mktemp -d "$cache/fetch.XXXXXX") || return 1
	chmod 755 "$tmp"
	if ! (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1); then
		if [ "$(id -u)" = 0 ]; then
			apt-get update -qq >/dev/null 2>&1
			pkg=$(kernel_pkg)
		fi
		if ! (cd "$tmp" && apt-get download -q "$pkg" >"$tmp/apt.log" 2>&1); then
			echo "apt-get download $pkg failed: $(tail -n 1 "$tmp/apt.log")"
			rm -rf "$tmp"
			return 1
		fi
	fi
	deb=$(ls "$tmp"/*.deb 2>/dev/null | head -n 1)
	if [ -z "$deb" ] || ! dpkg -x "$deb" "$tmp/x"; then
		echo "dpkg -x of $pkg failed"
		rm -rf "$tmp"
		return 1
	fi
	vmlinuz=$(ls "$tmp"/x/boot/vmlinuz-* 2>/dev/null | head -n 1)
	if [ -z "$vmlinuz" ]; then
		echo "$pkg has no /boot/vmlinuz-*"
		rm -rf "$tmp"
		return 1
	fi
	kver=${vmlinuz##*/vmlinuz-}
	cp "$vmlinuz" "$cache/vmlinuz-$kver"
	cp "$tmp"/x/boot/config-"$kver" "$cache/" 2>/dev/null
	if "$here/extract-vmlinux.sh" "$vmlinuz" "$tmp/vmlinux" >/dev/null &&
	   "$here/extract-vmlinux.sh" --has-pvh "$tmp/vmlinux"; then
		mv "$tmp/vmlinux" "$cache/vmlinux-$kver"
	fi
	echo "$kver $pkg $(basename "$deb")" > "$cache/kernel"
	rm -rf "$tmp"
	echo "fetched $pkg ($(basename "$deb"))"
	return 0
}

exec 9>"$cache/lock"
flock 9
if ! [ -s "$cache/kernel" ] || ! [ -f "$cache/vmlinuz-$(cut -d' ' -f1 "$cache/kernel")" ]; then
	why=$(fetch_kernel) || { flock -u 9; skip "cannot get Debian's kernel: $why"; }
	echo "numa-vm: $why into $cache"
fi
kver=$(cut -d' ' -f1 "$cache/kernel")
if [ -f "$cache/vmlinux-$kver" ] && [ "${NUMA_VM_KERNEL:-}" != bzimage ]; then
	kimage=$cache/vmlinux-$kver
	kboot="vmlinux (PVH)"
else
	kimage=$cache/vmlinuz-$kver
	kboot="bzImage"
	[ "${NUMA_VM_KERNEL:-}" = bzimage ] || kboot="bzImage (no PVH vmlinux could be extracted)"
fi

# ---- initramfs ----------------------------------------------------------------
tmp=$(mktemp -d "$work/run.XXXXXX") || fail "mktemp in $work"
trap 'rm -rf "$tmp"' EXIT

# Copy a file and everything ldd says it needs into the tree DIR.
copy_with_libs() {
	local dir=$1 f=$2 lib
	for lib in $(ldd "$f" 2>/dev/null | grep -oE '/[^ ]+'); do
		[ -e "$dir$lib" ] && continue
		mkdir -p "$dir$(dirname "$lib")"
		cp -L "$lib" "$dir$lib"
	done
}

# The dynamic driver, its libraries, and one wrapper per --preload.
add_dynamic() {
	local dir=$1 p name lib
	mkdir -p "$dir/preload"
	cp "$dyn" "$dir/bin/driver-dyn"
	copy_with_libs "$dir" "$dyn"
	for p in "${preloads[@]}"; do
		name=${p%%=*}
		lib=${p#*=}
		cp -L "$lib" "$dir/preload/"
		copy_with_libs "$dir" "$lib"
		printf '#!/bin/sh\nLD_PRELOAD=/preload/%s exec /bin/driver-dyn "$@"\n' \
			"${lib##*/}" > "$dir/drivers/$name"
		chmod 755 "$dir/drivers/$name"
	done
}

# mkinitramfs DIR OUT INIT [DRIVER...]
mkinitramfs() {
	local dir=$1 out=$2 init=$3
	shift 3
	mkdir -p "$dir/bin" "$dir/drivers" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/tmp"
	cp "$busybox" "$dir/bin/busybox"
	cp "$init" "$dir/init"
	chmod 755 "$dir/init"
	local d
	for d in "$@"; do
		cp "$d" "$dir/drivers/"
	done
	if [ "$init" = "$here/init" ] && [ ${#preloads[@]} -gt 0 ]; then
		add_dynamic "$dir" || return 1
	fi
	(cd "$dir" && find . | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) > "$out"
}

# ---- boot ----------------------------------------------------------------------
mem_mib=1024
smp=4
[ "$nodes" -gt $smp ] && smp=$nodes
numa_args=()
per_cpu=$((smp / nodes))
for ((i = 0; i < nodes; i++)); do
	lo=$((i * per_cpu))
	hi=$((lo + per_cpu - 1))
	[ $i = $((nodes - 1)) ] && hi=$((smp - 1))
	numa_args+=(-object "memory-backend-ram,size=$((mem_mib / nodes))M,id=m$i"
		    -numa "node,nodeid=$i,cpus=$lo-$hi,memdev=m$i")
done

# boot ACCEL INITRAMFS LOG TIMEOUT_S EXTRA_CMDLINE: qemu's exit code
boot() {
	local accel=$1 ir=$2 log=$3 tmo=$4 extra=$5
	timeout --kill-after=5 "$tmo" "$qemu" -accel "$accel" -cpu max,-la57 \
		-m "$mem_mib" -smp "$smp" -nic none "${numa_args[@]}" \
		-kernel "$kimage" -initrd "$ir" \
		-append "console=ttyS0 numa_balancing=disable panic=-1 quiet $extra" \
		-nographic -no-reboot </dev/null >"$log" 2>&1
}

accel_file=$cache/accel-$kver
if [ -n "${NUMA_VM_ACCEL:-}" ]; then
	accel=$NUMA_VM_ACCEL
elif [ -s "$accel_file" ]; then
	accel=$(cat "$accel_file")
else
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		# KVM here is nested and may hang on a stock kernel: a tiny boot
		# with a short timeout decides, and the answer is remembered.
		printf '#!/bin/busybox sh\n/bin/busybox echo NUMAVM-PROBE-OK\n/bin/busybox poweroff -f\n' > "$tmp/probe-init"
		mkinitramfs "$tmp/probe" "$tmp/probe.cpio.gz" "$tmp/probe-init"
		probe_s=$SECONDS
		boot kvm "$tmp/probe.cpio.gz" "$tmp/probe.log" 20 "" >/dev/null 2>&1
		if grep -q NUMAVM-PROBE-OK "$tmp/probe.log"; then
			accel=kvm
		fi
		echo "numa-vm: KVM probe: $([ $accel = kvm ] && echo boots || echo does not boot within 20 s) ($((SECONDS - probe_s)) s); using $accel"
	fi
	echo "$accel" > "$accel_file"
fi
flock -u 9

mkinitramfs "$tmp/root" "$tmp/initramfs.cpio.gz" "$here/init" "${drivers[@]}"
log=$work/boot-$nodes-nodes.log
tmo=${NUMA_VM_TIMEOUT:-150}
boot_s=$SECONDS
boot "$accel" "$tmp/initramfs.cpio.gz" "$log" "$tmo" "numavm.nodes=$nodes ${NUMA_VM_ENV:-}"
qrc=$?
if [ "$accel" = kvm ] && ! grep -q NUMAVM-BOOTED "$log"; then
	echo "numa-vm: no boot under KVM (qemu exit $qrc); retrying with TCG and remembering it"
	echo tcg > "$accel_file"
	accel=tcg
	boot_s=$SECONDS
	boot tcg "$tmp/initramfs.cpio.gz" "$log" "$tmo" "numavm.nodes=$nodes ${NUMA_VM_ENV:-}"
	qrc=$?
fi
sed -i 's/\r$//' "$log"
echo "numa-vm: kernel $kver as $kboot, $nodes nodes x $((mem_mib / nodes)) MiB, $smp CPUs, $accel: qemu exit $qrc after $((SECONDS - boot_s)) s (log $log)"

if ! grep -q 'NUMAVM-BOOTED' "$log"; then
	echo "---- last lines of the console ----"
	tail -n 30 "$log"
	[ $qrc = 124 ] && fail "the VM did not reach init within ${tmo}s"
	fail "the VM did not boot (qemu exit $qrc)"
fi
grep -oE '(NUMAVM-BOOTED|NUMAVM-START|NUMAVM-EXIT|numavm:).*' "$log"

bad=0
for name in "${names[@]}"; do
	rc=$(sed -n "s/^NUMAVM-EXIT $name rc=\([0-9]*\).*/\1/p" "$log" | tail -n 1)
	if [ -z "$rc" ]; then
		echo "---- last lines of the console ----"
		tail -n 20 "$log"
		echo "numa-vm: $name did not finish (crash, hang or timeout after ${tmo}s)"
		bad=1
	elif [ "$rc" != 0 ]; then
		echo "numa-vm: $name exit $rc ($(sed -n "/^NUMAVM-START $name /,/^NUMAVM-EXIT $name /p" "$log" | grep -c ' FAIL') failed checks)"
		[ $report = 1 ] || bad=1
	else
		echo "numa-vm: $name passed"
	fi
done

if [ $report = 1 ]; then
	# One row per case and pair, one column (local %) per driver.
	echo "---- local pages per case ($nodes nodes; >= 99 % passes) ----"
	awk -v names="${names[*]}" '
		BEGIN { nd = split(names, dn, " ") }
		/^NUMAVM-START / { cur = $2 }
		/^numavm: case / && / local / {
			lbl = $3; if ($4 !~ /->/) { lbl = lbl " " $4; p = $5 } else p = $4
			key = sprintf("%-9s %s", lbl, p)
			for (i = 1; i <= NF; i++) if ($i == "local") v = $(i + 1)
			if (!(key in seen)) { seen[key] = 1; order[++n] = key }
			val[key, cur] = v
		}
		/^numavm: case d purge/ {
			key = sprintf("%-9s %s", "d purge", $5)
			for (i = 1; i <= NF; i++) if ($i == "fell") v = $(i + 1) "MiB"
			if (!(key in seen)) { seen[key] = 1; order[++n] = key }
			val[key, cur] = v
		}
		END {
			printf "%-16s", "case pair"; for (j = 1; j <= nd; j++) printf " %14s", dn[j]; printf "\n"
			for (k = 1; k <= n; k++) {
				printf "%-16s", order[k]
				for (j = 1; j <= nd; j++) printf " %14s", ((order[k], dn[j]) in val) ? val[order[k], dn[j]] : "-"
				printf "\n"
			}
		}' "$log"
fi
echo "numa-vm: $nodes nodes done in $((SECONDS - start_s)) s"
exit $bad
