#!/bin/sh
# The Debian source package of 'make deb' of the line (LINE=7.2:
# bookworm's qemu, LINE=10.0: trixie's), prepared without building it:
# the series applies after Debian's own patches, the packaging patch
# applies, its build profile selects exactly the x86 host packages of
# lines/LINE.deb.pin, and the main build's configure options with the
# profile differ from Debian's only as that pin says (DEB_CONFIGURE_DIFF:
# the target list) (the microvm build's are unchanged); and a patch that
# does not apply stops it, named.  'make deb' itself is too long for
# make check; this is the part of it that a change to the series can
# break.
set -u
. "$(dirname "$0")/../scripts/common.sh"
. "$ROOT/lines/$LINE.deb.pin"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }

echo "1..6"
if ! command -v dh_listpackages >/dev/null; then
    echo "Bail out! debhelper is not installed (make deps-test installs it)"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"

# 1. the series and the packaging patch apply (build-deb.sh's steps 1-3)
tree=$(PREPARE_ONLY=1 DEBWORK=$tmp LOGS=$tmp/logs \
       sh "$ROOT/scripts/build-deb.sh" 2>"$tmp/prepare.log")
rc=$?
sed 's/^/# /' "$tmp/prepare.log"
if [ "$rc" != 0 ] || [ ! -d "$tree/debian" ]; then
    notok "prepare Debian's source package with the series"
    echo "Bail out! nothing to check"
    exit 1
fi
applied=$(grep -c '^suspend/' "$tree/.pc/applied-patches")
names=$(line_patches)
want=$(echo "$names" | wc -l)
if [ "$applied" = "$want" ]; then
    ok "Debian's patches, then the series ($applied patches) and" \
       "$DEB_PACKAGING apply"
else
    notok "$applied of $want patches applied"
fi
cd "$tree" || exit 1

# 2. with the profile: exactly the pin's packages
got=$(DEB_BUILD_PROFILES=$DEB_PROFILE dh_listpackages -a 2>/dev/null | sort)
exp=$(echo $DEB_PACKAGES | tr ' ' '\n' | sort)
if [ "$got" = "$exp" ]; then
    ok "profile $DEB_PROFILE builds: $(echo $got)"
else
    notok "profile $DEB_PROFILE builds: $(echo $got); expected $(echo $exp)"
fi

# 3. without it: every architecture-dependent package, as Debian's
got=$(dh_listpackages -a 2>/dev/null | sort)
exp=$(awk '/^Package:/ { p = $2 } /^Architecture:/ && $2 != "all" { print p }' \
      debian/control | sort)
if [ "$got" = "$exp" ]; then
    ok "without the profile: Debian's $(echo "$got" | wc -l) packages"
else
    notok "without the profile: $(echo $got); expected $(echo $exp)"
fi

# configure command of a build directory, one option per line
configure_opts() {
    DEB_BUILD_PROFILES=$1 make -s -n -f debian/rules "b/$2/configured" \
        2>/dev/null | sed -n '/configure /,$p' | tr -s ' \t\\' '\n' |
        grep '^-' | grep -v '^-$'
}

# 4. the main build: Debian's options but for what the pin names (the
# target list; on 7.2 also linux-user off, as Debian's rules derive it
# from qemu-user being built: it is not)
configure_opts "" qemu >"$tmp/qemu.debian"
configure_opts "$DEB_PROFILE" qemu >"$tmp/qemu.x86only"
extra=$(diff "$tmp/qemu.debian" "$tmp/qemu.x86only" | grep '^[<>]')
# (a target list with a space: only its first half starts with -; the
# whole of it is checked on the raw configure line)
targets=$(DEB_BUILD_PROFILES=$DEB_PROFILE make -s -n -f debian/rules \
          b/qemu/configured 2>/dev/null | grep -c -F -- "$DEB_TARGET_LIST")
if [ -s "$tmp/qemu.debian" ] && [ "$extra" = "$DEB_CONFIGURE_DIFF" ] &&
   [ "$targets" = 1 ]; then
    ok "main build: Debian's $(wc -l <"$tmp/qemu.debian") configure" \
       "options, changed only by: $(echo $DEB_CONFIGURE_DIFF)"
else
    notok "main build's configure options differ from Debian's" \
          "(target list found $targets times):"
    echo "$extra" | sed 's/^/# /'
fi

# 5. the microvm build (qemu-system-x86_64-microvm): unchanged
configure_opts "" microvm >"$tmp/microvm.debian"
configure_opts "$DEB_PROFILE" microvm >"$tmp/microvm.x86only"
if [ -s "$tmp/microvm.debian" ] &&
   cmp -s "$tmp/microvm.debian" "$tmp/microvm.x86only"; then
    ok "microvm build: Debian's $(wc -l <"$tmp/microvm.debian") configure" \
       "options, unchanged"
else
    notok "microvm build's configure options differ from Debian's"
    diff "$tmp/microvm.debian" "$tmp/microvm.x86only" | sed 's/^/# /'
fi

# 6. a patch that does not apply to Debian's tree stops the build and is
# named: one context line of the middle patch changed, in a copy
cd / || exit 1
mkdir "$tmp/patches"
cp -R "$ROOT/patches/." "$tmp/patches/"
victim=$(echo "$names" | sed -n "$((want / 2 + 1))p")
awk '!done && /^@@/ { hunk = 1 }
     !done && hunk && /^ / { print $0 " /* changed */"; done = 1; next }
     { print }' "$ROOT/patches/$victim" >"$tmp/patches/$victim"
PATCHES=$tmp/patches PREPARE_ONLY=1 DEBWORK=$tmp LOGS=$tmp/logs \
    sh "$ROOT/scripts/build-deb.sh" >/dev/null 2>"$tmp/broken.log"
rc=$?
expect="error: debian/patches/suspend/${victim#*/} does not apply to Debian's qemu"
if cmp -s "$ROOT/patches/$victim" "$tmp/patches/$victim"; then
    notok "no context line to change in $victim"
elif [ "$rc" != 0 ] && grep -qF "$expect" "$tmp/broken.log"; then
    ok "a patch that no longer applies stops the build, named: $victim"
else
    notok "a broken $victim: exit $rc, not the expected error"
    tail -n 5 "$tmp/broken.log" | sed 's/^/# /'
fi
exit "$failed"
