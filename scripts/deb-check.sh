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
# outputs and package listings with them.  Then lintian: no error on our
# packages that Debian's do not have; and, for a line whose pin names
# DEB_CROSS_FROM, the cross-version rows between that line's packages and
# ours.  Prints TAP; logs and outputs in $DEBWORK/check.
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
# Cross-version on the installed packages (DEB_CROSS_FROM in the pin: the
# older Debian line, 7.2 for 10.0): its packages of 'make deb' in a clean
# chroot of its own release, ours again in this one, then the deb rows of
# tests/cross-version.py (live migration both ways, every guest state)
# and tests/cpr-interop.py (cprsave on the older package, load with
# migrate-incoming on ours): a host upgraded from one release to the
# next, by migration or by kexec.
cross_ok=1
if [ -n "${DEB_CROSS_FROM:-}" ]; then
    from_out=$WORK/$DEB_CROSS_FROM/deb/out
    xroot=$DEBWORK/root-cross-$DEB_CROSS_FROM
    if [ -f "$from_out/BUILT" ]; then
        # shellcheck disable=SC1090
        from_pkgs=$(. "$ROOT/lines/$DEB_CROSS_FROM.deb.pin" &&
                    echo "$DEB_PACKAGES")
        from_codename=$(. "$ROOT/lines/$DEB_CROSS_FROM.deb.pin" &&
                        echo "$DEB_CODENAME")
        from_version=$(sed -n 's/^version=//p' "$from_out/BUILT")
        from_debs=
        for p in $from_pkgs; do
            from_debs="$from_debs $from_out/${p}_${from_version#*:}_amd64.deb"
        done
        note "making a clean $from_codename chroot with the $DEB_CROSS_FROM packages"
        (CODENAME=$from_codename && debroot_make "$xroot" minbase "")
        our_debs=
        for p in $DEB_PACKAGES; do
            our_debs="$our_debs $OUT/${p}_${version#*:}_amd64.deb"
        done
        if debroot_run "$xroot" "export DEBIAN_FRONTEND=noninteractive
                apt-get update -q && apt-get install -y -q $from_debs" \
                >"$CHK/cross-install.log" 2>&1 &&
           debroot_run "$root" "export DEBIAN_FRONTEND=noninteractive
                apt-get install -y -q --allow-downgrades $our_debs" \
                >>"$CHK/cross-install.log" 2>&1; then
            n=$((n + 1))
            echo "ok $n - $from_codename chroot with our $from_version;" \
                 "ours ($version) back in the $CODENAME one"
            # the older line's tree: its boot block (the one make check's
            # cross-version rows use: the 10.0 tree's does not stay in S3
            # on QEMU 7.2) and python/qemu
            xsrc=$WORK/$DEB_CROSS_FROM/qemu
            [ -d "$xsrc/python" ] ||
                LINE=$DEB_CROSS_FROM AUTO=1 sh "$ROOT/scripts/queue.sh" \
                    >"$CHK/cross-queue.log" 2>&1 || true
            for t in cross-version.py cpr-interop.py; do
                env "DEB_ROOT_$(echo "$DEB_CROSS_FROM" | tr . _)=$xroot" \
                    "DEB_ROOT_$(echo "$LINE" | tr . _)=$root" DEB_ONLY=1 \
                    ROOT="$ROOT" WORK="$WORK" SRC="$xsrc" \
                    LINE="$DEB_CROSS_FROM" \
                    python3 "$ROOT/tests/$t" >"$CHK/$t.tap" 2>&1 || true
                while IFS= read -r l; do
                    case $l in
                        "ok "* | "not ok "*)
                            st=${l%% [0-9]*}
                            rest=${l#"$st "}
                            n=$((n + 1))
                            echo "$st $n ${rest#* }"
                            [ "$st" = ok ] || cross_ok=0 ;;
                        "#"*) echo "$l" ;;
                    esac
                done <"$CHK/$t.tap"
                grep -q '^ok ' "$CHK/$t.tap" || {
                    n=$((n + 1))
                    echo "not ok $n - $t ran no row"
                    tail -n 5 "$CHK/$t.tap" | sed 's/^/# /'
                    cross_ok=0
                }
            done
        else
            n=$((n + 1))
            echo "not ok $n - install for the cross-version rows"
            tail -n 20 "$CHK/cross-install.log" | sed 's/^/# /'
            cross_ok=0
        fi
    else
        n=$((n + 1))
        echo "not ok $n - no packages of the $DEB_CROSS_FROM line for the" \
             "cross-version rows: run 'make deb LINE=$DEB_CROSS_FROM' first"
        cross_ok=0
    fi
fi

echo "1..$n"
note "deb-check took $(( $(date +%s) - t0 )) s"
[ "$inner" = 0 ] && [ "$lintian_ok" = 1 ] && [ "$cross_ok" = 1 ]
