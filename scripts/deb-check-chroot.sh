#!/bin/sh
# The part of 'make deb-check' that runs inside its clean chroot of the
# line's Debian release (scripts/deb-check.sh makes the chroot and runs
# this as root, with LINE set).
# Prints TAP; the checkout and $WORK are at the same paths as outside.
#
# Usage: deb-check-chroot.sh OUTDIR CHECKDIR
#   OUTDIR    the packages of 'make deb' (and their BUILT file)
#   CHECKDIR  where the help outputs, listings and logs are written
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/lines/${LINE:-7.2}.deb.pin"
OUT=$1
CHK=$2
. "$OUT/BUILT"                      # version, debian_source, series_patches
export DEBIAN_FRONTEND=noninteractive
QEMU_BIN=/usr/bin/qemu-system-x86_64
mkdir -p "$CHK"

n=0
failed=0
ok() {
    n=$((n + 1))
    echo "ok $n - $*"
}
not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $*"
}
# comment FILE: a file's lines as TAP comments
comment() {
    sed 's/^/# /' "$1"
}
# versions: "PKG VERSION STATUS" of the packages in lines/LINE.deb.pin
versions() {
    # shellcheck disable=SC2086
    dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n' \
        $DEB_PACKAGES 2>&1 | sed 's/ *$//'
}
# expect_versions VERSION: every package installed (ii) at VERSION
expect_versions() {
    versions >"$CHK/versions.txt"
    for p in $DEB_PACKAGES; do
        grep -qxF "$p $1 ii" "$CHK/versions.txt" || return 1
    done
}
# other_qemu: installed QEMU packages other than ours and Debian's
# arch-independent qemu-system-data (firmware, keymaps) they depend on
other_qemu() {
    dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n' \
        'qemu-*' 2>/dev/null | awk '$3 == "ii" { print $1 }' |
        grep -vxF "$(echo $DEB_PACKAGES qemu-system-data | tr ' ' '\n')" ||
        true
}
# help_outputs TAG: -machine/-device/-accel help of the installed QEMU
help_outputs() {
    for h in machine device accel; do
        "$QEMU_BIN" -$h help >"$CHK/$1-$h-help.txt" 2>&1 || return 1
    done
}

# --- 1. install our packages like an operator: apt install ./...deb
apt-get update -q >"$CHK/apt-update.log" 2>&1 || {
    tail -n 20 "$CHK/apt-update.log"
    echo "Bail out! apt-get update failed in the chroot"
    exit 1
}
debs=
for p in $DEB_PACKAGES; do
    debs="$debs $OUT/${p}_${version#*:}_amd64.deb"
done
# shellcheck disable=SC2086
if apt-get install -y -q $debs >"$CHK/install.log" 2>&1 &&
   expect_versions "$version"; then
    ok "apt install ./*.deb: $(echo $DEB_PACKAGES | wc -w) packages at $version"
    comment "$CHK/versions.txt"
else
    not_ok "apt install of our packages"
    tail -n 20 "$CHK/install.log" | comment /dev/stdin
    [ -f "$CHK/versions.txt" ] && comment "$CHK/versions.txt"
    echo "1..$n"
    exit 1
fi
others=$(other_qemu)
if [ -z "$others" ]; then
    ok "no other QEMU package installed; Debian's qemu-system-data" \
       "$(dpkg-query -W -f '${Version}' qemu-system-data)"
else
    not_ok "other QEMU packages installed: $others"
fi

# --- 2. the installed binary says our version
v=$("$QEMU_BIN" --version | head -n 1)
case $v in
    *"(Debian $version)") ok "$QEMU_BIN --version: $v" ;;
    *) not_ok "$QEMU_BIN --version: $v (expected Debian $version)" ;;
esac
help_outputs ours || not_ok "help outputs of our QEMU"

# --- 3. the demo cycle on the installed QEMU
if QEMU=$QEMU_BIN python3 "$ROOT/scripts/demo.py" >"$CHK/demo.log" 2>&1; then
    ok "demo cycle (suspend, stop, cont, migrate, wakeup) on $QEMU_BIN"
else
    not_ok "demo cycle on $QEMU_BIN"
fi
comment "$CHK/demo.log"

# --- 4. the release's libvirt on the installed QEMU (no <emulator>)
if apt-get install -y -q --no-install-recommends libvirt-daemon \
        libvirt-daemon-driver-qemu libvirt-clients \
        >"$CHK/libvirt-install.log" 2>&1 && expect_versions "$version" &&
   [ -z "$(other_qemu)" ]; then
    ok "libvirt installed ($(dpkg-query -W -f '${Version}' libvirt-daemon)), our packages unchanged"
else
    not_ok "libvirt install (or it changed the QEMU packages)"
    tail -n 20 "$CHK/libvirt-install.log" | comment /dev/stdin
fi
if INSTALLED=1 LIBVIRT_VERSION=$DEB_LIBVIRT_VERSION \
   python3 "$ROOT/tests/libvirt.py" >"$CHK/libvirt.tap" 2>&1; then
    ok "libvirt core rows on the installed QEMU" \
       "($(grep -c '^ok' "$CHK/libvirt.tap") ok)"
else
    not_ok "libvirt core rows on the installed QEMU"
fi
comment "$CHK/libvirt.tap"

# --- 5. rollback to Debian's own packages of the same source version
# Debian's binary version of each package: the newest version
# built from source $debian_source (a binNMU has +bN)
debvers=
debspecs=
for p in $DEB_PACKAGES; do
    dv=
    for cand in $(apt-cache madison "$p" | awk -F' [|] ' '{ print $2 }'); do
        src=$(apt-cache show "$p=$cand" |
              sed -n 's/^Source: [^ ]* (\(.*\))$/\1/p' | head -n 1)
        if [ "${src:-$cand}" = "$debian_source" ]; then
            dv=$cand
            break
        fi
    done
    [ -n "$dv" ] || { not_ok "Debian has no $p of $debian_source"; continue; }
    debvers="$debvers $dv"
    debspecs="$debspecs $p=$dv"
done
debver=$(echo $debvers | tr ' ' '\n' | sort -u)
mkdir -p "$CHK/debian-debs"
chmod 0777 "$CHK/debian-debs"
# shellcheck disable=SC2086
(cd "$CHK/debian-debs" && apt-get download -q $debspecs) \
    >"$CHK/download.log" 2>&1 || not_ok "apt-get download $debspecs"
# shellcheck disable=SC2086
if apt-get install -y -q --allow-downgrades $debspecs \
        >"$CHK/rollback.log" 2>&1 &&
   [ "$(echo "$debver" | wc -l)" = 1 ] && expect_versions "$debver" &&
   apt-get check >>"$CHK/rollback.log" 2>&1 &&
   [ -z "$(dpkg --audit)" ]; then
    ok "rollback: apt-get install --allow-downgrades of Debian's $debver," \
       "apt-get check and dpkg --audit clean"
    comment "$CHK/versions.txt"
else
    not_ok "rollback to Debian's $debver"
    tail -n 20 "$CHK/rollback.log" | comment /dev/stdin
fi
v=$("$QEMU_BIN" --version | head -n 1)
case $v in
    *"(Debian $debver)") ok "after rollback $QEMU_BIN --version: $v" ;;
    *) not_ok "after rollback $QEMU_BIN --version: $v" ;;
esac
help_outputs debian || not_ok "help outputs of Debian's QEMU"

# --- 5b. the same libvirt rows on Debian's own QEMU, each row in a chain
# of its own (boot, what it needs, the row): recorded, and they must tell
# it from ours (rows that pass on both would prove nothing new)
INSTALLED=1 INSTALLED_KIND=debian ROWS_APART=1 \
LIBVIRT_VERSION=$DEB_LIBVIRT_VERSION \
    python3 "$ROOT/tests/libvirt.py" >"$CHK/libvirt-debian.tap" 2>&1 || true
# the rows whose own chain failed: "not ok N - debian [ROW]: ..."
grep '^not ok ' "$CHK/libvirt-debian.tap" | grep -v '(not run: ' |
    sed -n 's/^not ok [0-9]* - debian \[\([^]]*\)\]: .*/\1/p' |
    sort -u >"$CHK/libvirt-debian.failed"
nfail=$(wc -l <"$CHK/libvirt-debian.failed")
nrows=$(grep -c '^ok [0-9]* - debian \[[^]]*\]: boot' "$CHK/libvirt-debian.tap" ||
        true)
if [ "$nfail" -gt 0 ] && grep -q '^ok' "$CHK/libvirt.tap" &&
   ! grep -q '^not ok' "$CHK/libvirt.tap"; then
    ok "libvirt rows on Debian's own $debver: $nfail of $nrows fail there" \
       "($(tr '\n' ';' <"$CHK/libvirt-debian.failed" | sed 's/;$//;s/;/; /g')), all pass on ours"
else
    not_ok "libvirt rows on Debian's own $debver do not tell it from ours" \
           "($nfail of $nrows fail there)"
fi
comment "$CHK/libvirt-debian.tap"

# --- 6. the x86 binaries are Debian's plus the series: help outputs
for h in machine device accel; do
    if cmp -s "$CHK/ours-$h-help.txt" "$CHK/debian-$h-help.txt"; then
        ok "-$h help equal to Debian's" \
           "($(wc -l <"$CHK/ours-$h-help.txt") lines)"
    else
        not_ok "-$h help differs from Debian's"
        diff -u "$CHK/debian-$h-help.txt" "$CHK/ours-$h-help.txt" |
            head -n 40 | comment /dev/stdin
    fi
done

# --- 7. package contents: dpkg-deb -c, without sizes and dates
listing() {
    dpkg-deb -c "$1" | awk '{ $3 = ""; $4 = ""; $5 = ""; print }' |
        sed 's/   */ /' | sort
}
for p in $DEB_PACKAGES; do
    ours=$OUT/${p}_${version#*:}_amd64.deb
    theirs=$(ls "$CHK/debian-debs/${p}_"*_amd64.deb 2>/dev/null | head -n 1)
    [ -n "$theirs" ] || { not_ok "$p: no Debian package to compare"; continue; }
    listing "$ours" >"$CHK/$p.ours.list"
    listing "$theirs" >"$CHK/$p.debian.list"
    # a binNMU carries its own changelog (changelog.Debian.amd64.gz): that
    # is the version, not the contents
    grep -v "/usr/share/doc/$p/changelog.Debian.amd64.gz$" \
        "$CHK/$p.debian.list" >"$CHK/$p.debian.cmp" || true
    if cmp -s "$CHK/$p.ours.list" "$CHK/$p.debian.cmp"; then
        ok "$p: dpkg-deb -c equal to Debian's ($(wc -l <"$CHK/$p.ours.list")" \
           "entries; the binNMU changelog aside)"
    else
        not_ok "$p: dpkg-deb -c differs from Debian's"
        diff -u "$CHK/$p.debian.cmp" "$CHK/$p.ours.list" | sed 1,2d |
            grep '^[-+]' | head -n 40 | comment /dev/stdin
    fi
done

echo "1..$n"
[ "$failed" = 0 ]
