#!/bin/sh
# Configure (once) and build the x86_64 system emulator, qemu-img and the
# qtests the project runs, from the work tree $SRC into $BUILD.
# ccache is used for every compile (configure flags and ccache setup: see
# scripts/common.sh).
#
#   scripts/build.sh              build $SRC into $BUILD
#   SRC=... BUILD=... scripts/build.sh   another tree (e.g. the stock base)
set -eu
. "$(dirname "$0")/common.sh"

[ -f "$SRC/VERSION" ] || die "no QEMU tree in $SRC; run 'make base' first"

# What the tests need from the build tree: the emulator, qemu-img and
# the qtests of tests/qtests that this tree has.
TARGETS="qemu-system-x86_64 qemu-img"
for t in $(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/tests/qtests"); do
    if [ -f "$SRC/tests/qtest/$t.c" ]; then
        TARGETS="$TARGETS tests/qtest/$t"
    fi
done
if [ -n "${EXTRA_TARGETS:-}" ]; then
    TARGETS="$TARGETS $EXTRA_TARGETS"
fi

use_ccache
build_tools
configure_once "$SRC" "$BUILD" "$CONFIGURE_FLAGS"

jobs=${JOBS:-$(nproc)}
note "building in $BUILD ($jobs jobs)"
ninja -C "$BUILD" -j "$jobs" $TARGETS

# x86 option ROMs (linuxboot_dma.bin etc.) from the base's sources: the
# +dfsg tarball ships none, and -kernel needs them.  7.2's configure only
# builds them with a detected i386 cross compiler; the host gcc does it
# (-m16, freestanding), so drive their Makefile directly.
orom=$BUILD/optionrom
mkdir -p "$orom"
cp "$SRC/pc-bios/optionrom/Makefile" "$orom/Makefile"
printf 'TOPSRC_DIR=%s\nCC=cc\nOBJCOPY=objcopy\nPYTHON=python3\n' "$SRC" \
    >"$orom/config.mak"
make -C "$orom" -s >"$orom/build.log" 2>&1 ||
    { tail -n 20 "$orom/build.log" >&2; die "option ROMs failed to build"; }

# Firmware: Debian's seabios and ipxe-qemu packages, linked into the data
# dir the built binary searches first (qemu-bundle/<prefix>/share/qemu).
datadir=$("$BUILD/qemu-system-x86_64" -L help | grep "/qemu$" | head -n 1)
case $datadir in
    "$BUILD"/*) ;;
    *) die "unexpected first data dir '$datadir'" ;;
esac
mkdir -p "$datadir"
for f in /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom \
         "$orom"/*.bin; do
    [ -e "$f" ] || continue
    ln -sf "$f" "$datadir/${f##*/}"
done
for f in bios-256k.bin linuxboot_dma.bin efi-e1000.rom; do
    [ -e "$datadir/$f" ] || die "firmware $f missing in $datadir"
done
note "built $(cat "$SRC/VERSION") in $BUILD"
