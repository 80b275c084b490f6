#!/bin/sh
# Build the real Linux guest of the project's end-to-end tests into
# $WORK/guest: Debian 12's kernel (the package linux-image-amd64 points
# to) and an initramfs made of Debian's busybox-static plus tests/guest/init.
# Nothing is installed on the host: both packages are downloaded with
# 'apt-get download' (apt checks them against the archive's signed
# indexes) and unpacked with dpkg-deb.  The result is cached; it is
# rebuilt when a package version or the init script changes.
set -eu
. "$(dirname "$0")/common.sh"

OUT=$WORK/guest
INIT=$ROOT/tests/guest/init

kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' |
        head -n 1
}
kpkg=$(kernel_package)
if [ -z "$kpkg" ]; then
    note "apt has no package lists yet: apt-get update"
    SUDO=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "not root and no sudo: run apt-get update"
        SUDO=sudo
    fi
    $SUDO apt-get update -q >/dev/null
    kpkg=$(kernel_package)
fi
[ -n "$kpkg" ] || die "apt knows no linux-image-amd64 (run apt-get update)"
kver=$(apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p')
bver=$(apt-cache policy busybox-static | sed -n 's/^ *Candidate: //p')
[ -n "$kver" ] && [ "$kver" != "(none)" ] || die "no candidate for $kpkg"
[ -n "$bver" ] && [ "$bver" != "(none)" ] || die "no candidate for busybox-static"

stamp="$kpkg $kver busybox-static $bver init $(sha256_of "$INIT") \
script $(sha256_of "$0")"
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ] &&
        [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ]; then
    note "guest up to date ($kpkg $kver, busybox $bver)"
    exit 0
fi

note "building the guest: $kpkg $kver, busybox-static $bver"
tmp=$(mktemp -d "$WORK/guest-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
mkdir -p "$tmp/root"
apt_unpack "$tmp" "$kpkg=$kver" "busybox-static=$bver"
kernel=$(ls "$tmp"/pkg/boot/vmlinuz-* | head -n 1)
[ -f "$kernel" ] || die "no kernel in $kpkg"

r=$tmp/root
mkdir -p "$r/bin" "$r/dev" "$r/proc" "$r/sys" "$r/tmp"
cp "$tmp/pkg/bin/busybox" "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
cp "$INIT" "$r/init"
chmod 0755 "$r/init" "$r/bin/busybox"
# fixed order and times so that the same inputs give the same image
find "$r" -exec touch -h -d @0 {} +
(cd "$r" && find . -mindepth 1 | LC_ALL=C sort |
    "$tmp/pkg/bin/busybox" cpio -o -H newc >"$tmp/initrd.cpio" \
        2>"$tmp/cpio.log") || die "cpio: $(cat "$tmp/cpio.log")"
[ -s "$tmp/initrd.cpio" ] || die "cpio wrote nothing"
gzip -n -9 <"$tmp/initrd.cpio" >"$tmp/initrd.img"
gzip -t "$tmp/initrd.img"

mkdir -p "$OUT"
cp "$kernel" "$OUT/vmlinuz"
mv "$tmp/initrd.img" "$OUT/initrd.img"
echo "$stamp" >"$OUT/stamp"
note "guest ready: $OUT (kernel $(basename "$kernel"))"
