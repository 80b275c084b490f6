#!/bin/sh
# Build the host VM (L1) of the kexec live-update test into $WORK/kexec-host:
# Debian 12's kernel (the one the Linux guest uses) and an initramfs with
# busybox-static, Debian's kexec-tools, the kernel modules the test needs
# (legacy pmem, ext4, virtio), the patched qemu-system-x86_64 of $BUILD
# with the shared libraries and firmware it loads, the migration-test boot
# block as the L2 guest (with and without its suspend option), and
# tests/kexec/init.  Packages are downloaded with 'apt-get download'
# (checked by apt against the archive's signed indexes) and unpacked with
# dpkg-deb; nothing is installed on the host.
#
# The initramfs carries the kernel and itself, so that L1 can kexec into
# the same kernel and initramfs: initrd.img is base.cpio.gz followed by a
# second (uncompressed) archive that holds base.cpio.gz as
# /boot/initrd-base.img; L1's init rebuilds the same pair before it kexecs.
set -eu
. "$(dirname "$0")/common.sh"

OUT=$WORK/kexec-host
INIT=$ROOT/tests/kexec/init
QEMU_BIN=$BUILD/qemu-system-x86_64
# modules and what pulls them in (their dependencies come from modules.dep)
MODULES="nd_e820 nd_pmem ext4 crc32c_generic virtio_pci virtio_blk"
FIRMWARE="bios-256k.bin kvmvapic.bin"

[ -x "$QEMU_BIN" ] || die "no build in $BUILD: run 'make build'"

kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' |
        head -n 1
}
candidate() {
    apt-cache policy "$1" | sed -n 's/^ *Candidate: //p'
}
kpkg=$(kernel_package)
[ -n "$kpkg" ] || die "apt knows no linux-image-amd64 (run apt-get update)"
kver=$(candidate "$kpkg")
bver=$(candidate busybox-static)
xver=$(candidate kexec-tools)
for v in "$kver" "$bver" "$xver"; do
    [ -n "$v" ] && [ "$v" != "(none)" ] || die "a package has no candidate"
done

stamp="$kpkg $kver busybox-static $bver kexec-tools $xver \
init $(sha256_of "$INIT") script $(sha256_of "$0") \
qemu $(sha256_of "$QEMU_BIN") bootblock $(sha256_of \
"$SRC/tests/migration/i386/a-b-bootblock.h")"
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ] &&
        [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ]; then
    note "kexec host up to date ($kpkg $kver, kexec-tools $xver)"
    exit 0
fi

note "building the kexec host: $kpkg $kver, busybox-static $bver," \
    "kexec-tools $xver, QEMU of $BUILD"
tmp=$(mktemp -d "$WORK/kexec-host-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
mkdir -p "$tmp/root"
apt_unpack "$tmp" "$kpkg=$kver" "busybox-static=$bver" "kexec-tools=$xver"
kernel=$(ls "$tmp"/pkg/boot/vmlinuz-* | head -n 1)
[ -f "$kernel" ] || die "no kernel in $kpkg"
mods=$(ls -d "$tmp"/pkg/lib/modules/*)
krel=${mods##*/}
bb=$tmp/pkg/bin/busybox

r=$tmp/root
mkdir -p "$r/bin" "$r/sbin" "$r/dev" "$r/proc" "$r/sys" "$r/tmp" "$r/mnt" \
    "$r/boot" "$r/l2" "$r/opt/qemu/bin" "$r/opt/qemu/share" \
    "$r/lib/modules/$krel"
cp "$bb" "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
cp "$INIT" "$r/init"
cp "$kernel" "$r/boot/vmlinuz"

# copy_libs BINARY: the shared libraries it loads, at the same paths
copy_libs() {
    ldd "$1" | awk '/=> \// { print $3 } /^\t\/[^ ]* \(/ { print $1 }' |
    while read -r lib; do
        [ -f "$r$lib" ] && continue
        mkdir -p "$r${lib%/*}"
        cp -L "$lib" "$r$lib"
    done
}
cp "$tmp/pkg/sbin/kexec" "$r/sbin/kexec"
copy_libs "$r/sbin/kexec"
strip -o "$r/opt/qemu/bin/qemu-system-x86_64" "$QEMU_BIN"
copy_libs "$QEMU_BIN"
for f in $FIRMWARE; do
    cp -L "$BUILD/qemu-bundle/usr/local/share/qemu/$f" "$r/opt/qemu/share/$f"
done

# the modules, with their dependencies, and a modules.dep for modprobe
"$bb" depmod -b "$tmp/pkg" "$krel"
need=
for m in $MODULES; do
    line=$(grep -E "/$m\.ko(\.[a-z]+)?:" "$mods/modules.dep") ||
        die "no module $m in $kpkg"
    need="$need $(echo "$line" | tr -d ':')"
done
for f in $(echo "$need" | tr ' ' '\n' | LC_ALL=C sort -u); do
    mkdir -p "$r/lib/modules/$krel/${f%/*}"
    cp "$mods/$f" "$r/lib/modules/$krel/$f"
done
cp "$mods/modules.order" "$mods/modules.builtin" "$r/lib/modules/$krel/"
"$bb" depmod -b "$r" "$krel"

# the L2 guest: the boot block, suspending itself or not
PYTHONPATH="$ROOT/tests/lib:$SRC/python" SRC="$SRC" python3 -c '
import os, sys
from qemu_env import write_bootblock
for name, suspend in (("suspend", True), ("run", False)):
    d = os.path.join(sys.argv[1], name)
    os.makedirs(d)
    os.rename(write_bootblock(d, suspend), sys.argv[1] + "/" + name + ".img")
    os.rmdir(d)
' "$r/l2"

# fixed order and times so that the same inputs give the same image
cpio_of() {
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
        "$bb" cpio -o -H newc 2>"$tmp/cpio.log") ||
        die "cpio: $(cat "$tmp/cpio.log")"
}
chmod 0755 "$r/init" "$r/bin/busybox"
find "$r" -exec touch -h -d @0 {} +
cpio_of "$r" | gzip -n -9 >"$tmp/base.cpio.gz"
# zero-padded to 512 bytes: the kernel finds the uncompressed archive
# that follows only at an aligned offset (it skips zeros in between)
size=$(stat -c %s "$tmp/base.cpio.gz")
pad=$(( (512 - size % 512) % 512 ))
head -c "$pad" /dev/zero >>"$tmp/base.cpio.gz"
mkdir -p "$tmp/self/boot"
cp "$tmp/base.cpio.gz" "$tmp/self/boot/initrd-base.img"
find "$tmp/self" -exec touch -h -d @0 {} +
cpio_of "$tmp/self" >"$tmp/self.cpio"
cat "$tmp/base.cpio.gz" "$tmp/self.cpio" >"$tmp/initrd.img"

mkdir -p "$OUT"
cp "$kernel" "$OUT/vmlinuz"
mv "$tmp/initrd.img" "$OUT/initrd.img"
echo "$stamp" >"$OUT/stamp"
note "kexec host ready: $OUT (kernel $krel, initrd" \
    "$(($(stat -c %s "$OUT/initrd.img") / 1048576)) MiB)"
