#!/bin/sh
# make deb: the x86 host packages of a Debian release's qemu with the
# line's series (LINE=7.2: Debian 12, bookworm; LINE=10.0: Debian 13,
# trixie; the suite is DEB_CODENAME in lines/LINE.deb.pin).
#
#  1. the newest "qemu" source package the suite ships (SUITE, -updates,
#     -security; never backports), read from a private apt state of that
#     suite and fetched with apt-get source (checked by apt against the
#     signed Sources index) and, for the version in lines/LINE.deb.pin,
#     against the checksums recorded there;
#  2. Debian's patches applied, then ours appended to debian/patches
#     (suspend/NAME, in the line's order); a patch that does not
#     apply stops the build with its name;
#  3. the line's packaging patch (DEB_PACKAGING: build profile
#     pkg.qemu.x86only) and a changelog entry VERSION+suspendN that sorts
#     above the archive's binary (binNMU) version;
#  4. dpkg-buildpackage -B in a clean chroot of the suite ($DEBWORK/root-build,
#     made by mmdebstrap, build dependencies installed by apt), ccache
#     shared with the host.
#
# Output: $DEBWORK/out/*.deb (and the .changes/.buildinfo), the build log
# in $DEBLOGS/.  Needs root.  PREPARE_ONLY=1 stops after step 3 and
# prints the prepared source tree (tests/deb-source.sh; no root needed).
# PATCHES names another directory holding the series (the test breaks a
# patch in a copy to see the build stop on it).
set -eu
. "$(dirname "$0")/common.sh"
. "$ROOT/scripts/deb-lib.sh"

PREPARE_ONLY=${PREPARE_ONLY:-0}
if [ "$PREPARE_ONLY" != 1 ]; then
    [ "$(id -u)" = 0 ] || die "needs root (chroot, mount namespace)"
    command -v mmdebstrap >/dev/null ||
        die "mmdebstrap is missing: 'make deb' installs it"
fi
t_start=$(date +%s)
mkdir -p "$DEBWORK" "$DEBLOGS"

# newest VERSION... : the highest of the versions given
newest() {
    _best=
    for _v in "$@"; do
        if [ -z "$_best" ] || dpkg --compare-versions "$_v" gt "$_best"; then
            _best=$_v
        fi
    done
    echo "$_best"
}

# 1. the source package
note "reading the indexes of $CODENAME"
deb_apt_init
# shellcheck disable=SC2046
ver=$(newest $(deb_apt apt-cache showsrc qemu 2>/dev/null |
               sed -n 's/^Version: //p' | grep -v '~bpo'))
[ -n "$ver" ] ||
    die "$CODENAME's indexes hold no qemu source package"
if [ "$ver" = "$DEB_TESTED_VERSION" ]; then
    note "Debian's qemu $ver (the version the series was tested with)"
else
    note "WARNING: Debian's qemu is now $ver; the series was last tested" \
         "with $DEB_TESTED_VERSION: building it, untested"
fi
nover=${ver#*:}                     # no epoch: file names
upver=${nover%-*}                   # 7.2+dfsg
dl=$DEBWORK/source/$nover
if [ ! -f "$dl/qemu_$nover.dsc" ]; then
    rm -rf "$dl"
    mkdir -p "$dl"
    chmod 0777 "$dl"                # apt's download user writes here
    # the orig tarball of the base, if fetched already: apt checks it
    # against the index and does not download it again
    if [ -f "$DL/$ORIG_TARBALL" ]; then
        cp "$DL/$ORIG_TARBALL" "$dl/"
    fi
    (cd "$dl" && deb_apt apt-get source -q --download-only "qemu=$ver") \
        >"$DEBLOGS/apt-source.log" 2>&1 ||
        die "apt-get source qemu=$ver failed: see $DEBLOGS/apt-source.log"
fi
check_pin() {
    _got=$(sha256_of "$dl/$1")
    [ "$_got" = "$2" ] ||
        die "checksum mismatch for $1: expected sha256 $2, actual $_got"
}
if [ "$ver" = "$DEB_TESTED_VERSION" ]; then
    check_pin "qemu_$nover.dsc" "$DEB_TESTED_DSC_SHA256"
    check_pin "qemu_$nover.debian.tar.xz" "$DEB_TESTED_DEBIAN_TAR_SHA256"
    check_pin "$ORIG_TARBALL" "$ORIG_SHA256"
    note "source files match lines/$LINE.deb.pin"
fi

# 2. unpack with Debian's patches, append ours
bdir=$DEBWORK/build
tree=$bdir/qemu-$upver
rm -rf "$bdir"
mkdir -p "$bdir"
dpkg-source --no-check -x "$dl/qemu_$nover.dsc" "$tree" \
    >"$DEBLOGS/dpkg-source.log" 2>&1 ||
    die "dpkg-source -x failed: see $DEBLOGS/dpkg-source.log"
n=0
mkdir -p "$tree/debian/patches/suspend"
for p in $(line_patches); do
    cp "$PATCHES/$p" "$tree/debian/patches/suspend/${p#*/}"
    echo "suspend/${p#*/}" >>"$tree/debian/patches/series"
    n=$((n + 1))
done
if ! (cd "$tree" && dpkg-source --before-build .) \
        >"$DEBLOGS/apply.log" 2>&1; then
    bad=$(cd "$tree" && grep -vxF -f .pc/applied-patches debian/patches/series |
          grep -v '^#' | head -n 1)
    tail -n 20 "$DEBLOGS/apply.log" >&2
    die "debian/patches/$bad does not apply to Debian's qemu $ver"
fi
note "Debian's patches and the series ($n patches) applied"

# 3. packaging patch and changelog entry
(cd "$tree" && patch -p1 --fuzz=0 --no-backup-if-mismatch -s) \
    <"$ROOT/$DEB_PACKAGING" ||
    die "$DEB_PACKAGING does not apply to Debian's qemu $ver"
newver=$ver$DEB_LOCAL_SUFFIX
# the archive's binary version (a binNMU has +bN): ours must sort above it
# shellcheck disable=SC2046
binver=$(newest $(deb_apt apt-cache madison qemu-system-x86 2>/dev/null |
                  awk -F' [|] ' '$3 !~ /backports/ { print $2 }'))
if [ -n "$binver" ]; then
    dpkg --compare-versions "$newver" gt "$binver" ||
        die "version $newver does not sort above the archive's $binver"
fi
name=$(git -C "$ROOT" config user.name) ||
    die "no git user.name: the changelog entry needs a maintainer"
email=$(git -C "$ROOT" config user.email) ||
    die "no git user.email: the changelog entry needs a maintainer"
when=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
{
    cat <<EOT
qemu ($newver) $CODENAME; urgency=medium

$(echo "$DEB_CHANGES" | sed "s/@N@/$n/")

 -- $name <$email>  $(LC_ALL=C date -u -R -d "@$when")

EOT
    cat "$tree/debian/changelog"
} >"$tree/debian/changelog.new"
mv "$tree/debian/changelog.new" "$tree/debian/changelog"
note "version $newver (archive's binaries: ${binver:-none found})"
if [ "$PREPARE_ONLY" = 1 ]; then
    echo "$tree"
    exit 0
fi

# 4. build in a clean chroot
root=$DEBWORK/root-build
want="$CODENAME variant=buildd include=ccache"
if [ "$(cat "$root/.made" 2>/dev/null)" != "$want" ]; then
    note "making the build chroot ($CODENAME, mmdebstrap)"
    debroot_make "$root" buildd ccache
    echo "$want" >"$root/.made"
fi
ccache_dir=$(ccache --get-config=cache_dir 2>/dev/null || echo "$HOME/.ccache")
mkdir -p "$ccache_dir"
t_deps=$(date +%s)
note "installing the build dependencies in the chroot"
debroot_run "$root" "
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get -y -q upgrade
    apt-get build-dep -y -q --arch-only -P '$DEB_PROFILE,nocheck' '$tree'
" >"$DEBLOGS/build-deps.log" 2>&1 ||
    { tail -n 20 "$DEBLOGS/build-deps.log" >&2; die "build dependencies"; }
t_build=$(date +%s)
note "dpkg-buildpackage -B (log: $DEBLOGS/build.log)"
DEBROOT_BINDS="$ccache_dir:/ccache" debroot_run "$root" "
    # QEMU's configure calls the compiler 'cc', which Debian's ccache
    # package does not link; link it in the build chroot only
    ln -sf ../../bin/ccache /usr/lib/ccache/cc
    export CCACHE_DIR=/ccache CCACHE_BASEDIR='$tree' CCACHE_NOHASHDIR=1
    export PATH=/usr/lib/ccache:\$PATH
    export DEB_BUILD_OPTIONS='nocheck parallel=$(nproc)'
    cd '$tree'
    dpkg-buildpackage -B -us -uc -P'$DEB_PROFILE,nocheck'
" >"$DEBLOGS/build.log" 2>&1 ||
    { tail -n 30 "$DEBLOGS/build.log" >&2; die "dpkg-buildpackage failed"; }
t_end=$(date +%s)

out=$DEBWORK/out
rm -rf "$out"
mkdir -p "$out"
mv "$bdir"/*.deb "$bdir"/*.changes "$bdir"/*.buildinfo "$out"/
for p in $DEB_PACKAGES; do
    deb=$out/${p}_${newver#*:}_amd64.deb
    [ -f "$deb" ] || die "$p was not built"
done
echo "version=$newver" >"$out/BUILT"
echo "debian_source=$ver" >>"$out/BUILT"
echo "series_patches=$n" >>"$out/BUILT"
note "built in $out:"
(cd "$out" && ls -1 ./*.deb) >&2
note "times: source and patches $((t_deps - t_start)) s," \
     "chroot and build dependencies $((t_build - t_deps)) s," \
     "dpkg-buildpackage $((t_end - t_build)) s, total $((t_end - t_start)) s"
