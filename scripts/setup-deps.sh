#!/bin/sh
# Install what the project needs from Debian 12's archive, and make sure
# apt has a deb-src entry so that 'apt-get source qemu' works.
# Idempotent: does nothing when everything is in place.
set -eu
. "$(dirname "$0")/common.sh"

PKGS="build-essential ninja-build meson python3 pkg-config ccache git patch
xz-utils flex bison libglib2.0-dev libpixman-1-dev libslirp-dev zlib1g-dev
libfdt-dev libzstd-dev seabios ipxe-qemu dpkg-dev xxd"
# scripts/compile-extra.sh (make lint) configures with Xen and usbredir
PKGS="$PKGS libxen-dev libusbredirparser-dev"
if [ -n "${EXTRA_PKGS:-}" ]; then
    PKGS="$PKGS $EXTRA_PKGS"
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install $PKGS"
    SUDO=sudo
fi

have_deb_src() {
    grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list \
        /etc/apt/sources.list.d/
}

# add_sources FILE TYPES URI SUITES: one apt source stanza of Debian's
# archive, written to /etc/apt/sources.list.d/FILE (appended if it exists)
add_sources() {
    $SUDO tee -a "/etc/apt/sources.list.d/$1" >/dev/null <<EOT
Types: $2
URIs: $3
Suites: $4
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

EOT
}

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
updated=0
if ! have_deb_src; then
    note "adding a deb-src entry for Debian's archive"
    add_sources qemu-series-src.sources deb-src http://deb.debian.org/debian \
        "$codename $codename-updates"
    add_sources qemu-series-src.sources deb-src \
        http://deb.debian.org/debian-security "$codename-security"
    $SUDO apt-get update -q >/dev/null
    updated=1
fi

# The tests also need Debian 13's QEMU 10.0 (cross-version migration),
# which Debian 12 gets from bookworm-backports.
BPO_PKGS=
if [ "${WITH_TEST_DEPS:-0}" = 1 ]; then
    # network namespaces for the connection-cut test
    PKGS="$PKGS iproute2"
    # Debian 12's own libvirt 9.0 for tests/libvirt.py (from bookworm,
    # not backports: the libvirt a Debian 12 host runs)
    PKGS="$PKGS libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients"
    # tests/deb-source.sh: dh_listpackages of Debian's qemu packaging
    PKGS="$PKGS debhelper"
    if ! grep -rqsE "^(deb .*|Suites:.*)$codename-backports" \
            /etc/apt/sources.list /etc/apt/sources.list.d/; then
        note "adding $codename-backports (for QEMU 10.0)"
        add_sources qemu-series-backports.sources deb \
            http://deb.debian.org/debian "$codename-backports"
        $SUDO apt-get update -q >/dev/null
        updated=1
    fi
    case $(/usr/bin/qemu-system-x86_64 --version 2>/dev/null) in
        *"version 10.0"*) ;;
        *) BPO_PKGS="qemu-system-x86" ;;
    esac
fi

missing=
for p in $PKGS; do
    s=$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$s" = installed ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
    note "installing:$missing"
    [ "$updated" = 1 ] || $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
        --no-install-recommends $missing >/dev/null
fi
if [ -n "$BPO_PKGS" ]; then
    note "installing from $codename-backports: $BPO_PKGS"
    [ "$updated" = 1 ] || $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
        --no-install-recommends -t "$codename-backports" $BPO_PKGS >/dev/null
fi
note "dependencies in place"
