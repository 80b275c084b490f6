#!/bin/sh
# make deb-check: the packages of 'make deb' in a clean chroot of the
# line's Debian release (LINE=7.2: Debian 12, bookworm; LINE=10.0:
# Debian 13, trixie: DEB_CODENAME in lines/LINE.deb.pin).
#
# A fresh chroot (mmdebstrap, minbase + python3, Debian's archive
# only: none of this host's packages, not its QEMU) in which
# scripts/deb-check-chroot.sh installs our packages with apt, checks the
# version, runs the demo cycle and the libvirt suite's core rows on the
# installed /usr/bin/qemu-system-x86_64 (with the release's own libvirt),
# rolls back to Debian's own packages of the same version, runs the same
# libvirt rows on them (recording where they fail) and compares help
# outputs and package listings with them.  Then lintian: no error on our packages that
# Debian's do not have.  Prints TAP; logs and outputs in $DEBWORK/check.
set -eu
. "$(dirname "$0")/common.sh"
. "$ROOT/scripts/deb-lib.sh"

[ "$(id -u)" = 0 ] || die "needs root (chroot, mount namespace)"
OUT=$DEBWORK/out
[ -f "$OUT/BUILT" ] || die "no packages in $OUT: run 'make deb'"
CHK=$DEBWORK/check
rm -rf "$CHK"
mkdir -p "$CHK"
t0=$(date +%s)

root=$DEBWORK/root-check
note "making a clean $CODENAME chroot in $root"
debroot_make "$root" minbase python3
inner=0
debroot_run "$root" "LINE='$LINE' ROOT='$ROOT' WORK='$WORK' SRC='$SRC' \
    sh '$ROOT/scripts/deb-check-chroot.sh' '$OUT' '$CHK'" \
    >"$CHK/chroot.tap" 2>&1 || inner=1
grep -v '^1\.\.' "$CHK/chroot.tap"
n=$(grep -c '^\(not \)\?ok ' "$CHK/chroot.tap" || true)

# lintian, the same lintian on both sets: errors of ours that Debian's
# packages of the same version do not have
. "$OUT/BUILT"
lint() {
    lintian --tag-display-limit 0 "$@" 2>&1 | grep '^[EWI]: ' | sort -u
}
lintian_ok=0
if command -v lintian >/dev/null &&
   ls "$CHK"/debian-debs/*.deb >/dev/null 2>&1; then
    ours=
    for p in $DEB_PACKAGES; do
        ours="$ours $OUT/${p}_${version#*:}_amd64.deb"
    done
    # shellcheck disable=SC2086
    lint $ours >"$CHK/lintian-ours.txt"
    lint "$CHK"/debian-debs/*.deb >"$CHK/lintian-debian.txt"
    grep '^E: ' "$CHK/lintian-ours.txt" >"$CHK/lintian-ours.E" || true
    grep '^E: ' "$CHK/lintian-debian.txt" >"$CHK/lintian-debian.E" || true
    new=$(grep -vxF -f "$CHK/lintian-debian.E" "$CHK/lintian-ours.E" || true)
    n=$((n + 1))
    if [ -z "$new" ]; then
        echo "ok $n - lintian: no error Debian's packages do not have" \
             "($(wc -l <"$CHK/lintian-ours.E") errors, all also Debian's;" \
             "$(grep -c '^W: ' "$CHK/lintian-ours.txt" || true) warnings," \
             "Debian's $(grep -c '^W: ' "$CHK/lintian-debian.txt" || true))"
        lintian_ok=1
    else
        echo "not ok $n - lintian: errors Debian's packages do not have"
        echo "$new" | sed 's/^/# /'
    fi
    sed 's/^/# ours: /' "$CHK/lintian-ours.E"
    # warnings: shown, not a failure (the issue's bar is errors)
    grep '^W: ' "$CHK/lintian-ours.txt" |
        grep -vxF -f "$CHK/lintian-debian.txt" | sed 's/^/# new warning: /' ||
        true
else
    n=$((n + 1))
    echo "not ok $n - lintian: not installed or no Debian packages to compare"
fi
echo "1..$n"
note "deb-check took $(( $(date +%s) - t0 )) s"
[ "$inner" = 0 ] && [ "$lintian_ok" = 1 ]
