# Common settings for the project's scripts.  Sourced, not executed.
# Everything fetched, unpacked or built lives under $WORK (ignored by git).

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/work}

# The line: the QEMU base the scripts work on, named by its version.
# lines/LINE.pin pins the base; patches/KIND-LINE/ hold its patches, in
# the order of PATCH_KINDS, each folder in the order of its "series" file
# (docs/lines.md).  Everything of a line lives in $WORK/LINE.
LINE=${LINE:-7.2}
PATCH_KINDS="backport pending feature"
PATCHES=${PATCHES:-$ROOT/patches}
[ -f "$ROOT/lines/$LINE.pin" ] || {
    printf '%s: error: no line %s (lines/%s.pin); lines: %s\n' "${0##*/}" \
        "$LINE" "$LINE" "$(cd "$ROOT/lines" && ls *.pin | grep -v '\.deb\.pin$' |
                           sed 's/\.pin$//' | tr '\n' ' ')" >&2
    exit 1
}
LWORK=${LWORK:-$WORK/$LINE}
SRC=${SRC:-$LWORK/qemu}             # QEMU work tree (git: tag "base" + series)
BUILD=${BUILD:-$LWORK/build}        # meson build directory of $SRC
DL=${DL:-$LWORK/downloads}          # verified upstream files
LOGS=${LOGS:-$WORK/logs}

# Base commit identity: fixed, so the base commit is the same everywhere.
BASE_IDENT_NAME="QEMU upstream base"
BASE_IDENT_EMAIL="qemu-devel@nongnu.org"
BASE_DATE="2025-12-01T00:00:00Z"

. "$ROOT/lines/$LINE.pin"

die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
}

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# Fixed git configuration for every command that writes or exports
# commits, so user configuration cannot change the result.
git_fixed() {
    git -c core.autocrlf=false -c core.fileMode=true -c diff.noprefix=false \
        -c diff.mnemonicPrefix=false -c diff.renames=true \
        -c format.signature= -c core.abbrev=12 "$@"
}

# How scripts/build.sh configures QEMU.  scripts/compile-extra.sh uses the
# same flags with --enable-xen --enable-usb-redir.
CONFIGURE_FLAGS="--target-list=x86_64-softmmu --disable-docs
--disable-werror --disable-user --disable-install-blobs
--disable-gtk --disable-sdl --disable-vnc --disable-spice --disable-opengl
--disable-curses --disable-libusb --disable-usb-redir --disable-xen
--disable-guest-agent --enable-slirp --enable-fdt=system"

# use_ccache: set CC_CMD, the compiler to configure with.  ccache is used
# for every compile (configure pins the compiler for meson, so it is
# passed as --cc).
use_ccache() {
    CC_CMD=cc
    if command -v ccache >/dev/null; then
        CC_CMD="ccache cc"
        # Paths relative to the checkout and no cwd in the hash: another
        # clone, the check-series tree or the stock tree hit the same cache.
        export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
        export CCACHE_NOHASHDIR=1
    else
        note "ccache not found: building without it"
    fi
}

# build_tools: the build tools the line's pin names in BUILD_TOOLS
# ("PKG/SUITE ..."), newer than Debian 12's own (10.2 wants meson >= 1.5):
# downloaded from Debian's archive and unpacked into $LWORK/tools once,
# then put first on PATH and PYTHONPATH for configure and ninja.  Nothing
# is installed, so the other lines keep building with the system's.
build_tools() {
    [ -n "${BUILD_TOOLS:-}" ] || return 0
    _t=$LWORK/tools
    if [ "$(cat "$_t/.pkgs" 2>/dev/null)" != "$BUILD_TOOLS" ]; then
        rm -rf "$_t"
        note "unpacking build tools: $BUILD_TOOLS"
        apt_unpack "$_t" $BUILD_TOOLS
        echo "$BUILD_TOOLS" >"$_t/.pkgs"
    fi
    PATH=$_t/pkg/usr/bin:$PATH
    PYTHONPATH=$_t/pkg/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}
    export PATH PYTHONPATH
}

# configure_once SRC BUILD FLAGS: configure SRC into BUILD with $CC_CMD
# and FLAGS, unless BUILD was configured with exactly these already (a
# stamp holds them, with both paths); any change configures BUILD anew.
configure_once() {
    _stamp=$2/.configure-flags
    # the source and build paths too: a meson build directory that was
    # moved or copied cannot be used where it is now
    _want="$CC_CMD $1 $2 $(echo $3)"
    if [ ! -f "$2/build.ninja" ] || [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]
    then
        rm -rf "$2"
        mkdir -p "$2"
        note "configuring $1 in $2"
        (cd "$2" && "$1/configure" --cc="$CC_CMD" $3) \
            >"$2/configure.log" 2>&1 ||
            { tail -n 30 "$2/configure.log" >&2; die "configure failed"; }
        echo "$_want" >"$_stamp"
    fi
}

# apt_unpack DIR PKG=VERSION...: download the packages with 'apt-get
# download' (apt checks them against the archive's signed indexes) into
# DIR/dl and unpack them with dpkg-deb into DIR/pkg; nothing is installed.
apt_unpack() {
    _d=$1
    shift
    mkdir -p "$_d/dl" "$_d/pkg"
    # apt's download sandbox user must be able to write the directory
    chmod 0755 "$_d"
    chmod 0777 "$_d/dl"
    (cd "$_d/dl" && apt-get download -q "$@" >/dev/null) ||
        die "apt-get download $*"
    for _deb in "$_d"/dl/*.deb; do
        dpkg-deb -x "$_deb" "$_d/pkg"
    done
}

# line_patches: the line's patches in order, one per line, as
# "KIND-LINE/NAME" relative to $PATCHES (folders that do not exist are
# skipped; comments and blank lines of the series files are not patches)
line_patches() {
    line_patches_of "$LINE"
}

# line_patches_of LINE: the same for another line (a backport's source)
line_patches_of() {
    for _k in $PATCH_KINDS; do
        _s=$PATCHES/$_k-$1/series
        [ -f "$_s" ] || continue
        sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' \
            -e "s|^|$_k-$1/|" "$_s"
    done
}
