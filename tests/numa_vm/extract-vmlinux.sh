#!/usr/bin/env bash
# extract-vmlinux.sh BZIMAGE OUT - write the uncompressed ELF kernel inside
# an x86 bzImage to OUT, for a PVH boot (QEMU loads an ELF vmlinux with a
# Xen PHYS32_ENTRY note directly, skipping the decompressor; under TCG that
# is most of the boot time).
#
# The bzImage's payload is one compressed stream after the setup code.
# Find each candidate magic (xz, zstd, gzip, lzma, lz4, bzip2), decompress
# from there and keep the first result that is an ELF file. Exit 0 on
# success, 1 if no payload decompresses to an ELF. Also:
#   extract-vmlinux.sh --has-pvh VMLINUX   exit 0 iff the ELF has the note
set -u

has_pvh() {
	# Xen ELF note type 18 = XEN_ELFNOTE_PHYS32_ENTRY (include/xen/interface/elfnote.h)
	readelf -n "$1" 2>/dev/null | awk '$1 == "Xen" && ($NF ~ /\(0x0*12\)$/ || /PHYS32/) { f = 1 } END { exit !f }'
}

if [ "${1:-}" = --has-pvh ]; then
	[ $# = 2 ] || { echo "usage: $0 --has-pvh VMLINUX" >&2; exit 2; }
	has_pvh "$2"
	exit $?
fi
[ $# = 2 ] || { echo "usage: $0 BZIMAGE OUT" >&2; exit 2; }
img=$1 out=$2

is_elf() {
	[ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]
}

# name  grep -P pattern of the magic   decompressor reading stdin
try() {
	local name=$1 magic=$2 off
	shift 2
	command -v "$1" >/dev/null 2>&1 || return 1
	for off in $(LC_ALL=C grep -obUaP "$magic" "$img" | cut -d: -f1); do
		tail -c +$((off + 1)) "$img" | "$@" > "$out.tmp" 2>/dev/null
		if [ -s "$out.tmp" ] && is_elf "$out.tmp"; then
			mv "$out.tmp" "$out"
			echo "extract-vmlinux: $name payload at offset $off -> $out ($(stat -c %s "$out") bytes)"
			return 0
		fi
	done
	rm -f "$out.tmp"
	return 1
}

try xz    '\xfd7zXZ\x00'         xz -dc --single-stream ||
try zstd  '\x28\xb5\x2f\xfd'     zstd -dcq ||
try gzip  '\x1f\x8b\x08'         gzip -dc ||
try lzma  '\x5d\x00\x00\x00'     xz -dc --format=lzma ||
try lz4   '\x02\x21\x4c\x18'     lz4 -dc ||
try bzip2 'BZh'                  bzip2 -dc || {
	echo "extract-vmlinux: no compressed ELF payload found in $img" >&2
	exit 1
}
