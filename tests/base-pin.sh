#!/bin/sh
# The base reproduces from the pinned, checksummed upstream files, and a
# corrupted upstream file is refused with its name and both hashes.
set -u
. "$(dirname "$0")/../scripts/common.sh"
REAL_DL=$DL

echo "1..5"
# fetch-base.sh must work on the scratch directories only
unset BUILD LOGS
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else notok "$1"; fi; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

got=$(git -C "$SRC" rev-parse 'base^{tree}' 2>/dev/null)
check "work tree's base tree is the pinned $BASE_TREE" '[ "$got" = "$BASE_TREE" ]'

# A second, independent unpack from the verified files gives the same tree
# and the same base commit.
WORK=$tmp/w SRC=$tmp/w/qemu DL=$tmp/w/dl BASE_SRC=$REAL_DL sh "$ROOT/scripts/fetch-base.sh" >"$tmp/fresh.log" 2>&1
fresh=$(git -C "$tmp/w/qemu" rev-parse 'base^{tree}' 2>/dev/null)
sed 's/^/# /' "$tmp/fresh.log"
check "fresh unpack reproduces tree $BASE_TREE" '[ "$fresh" = "$BASE_TREE" ]'
check "fresh unpack reproduces the base commit" \
    '[ "$(git -C "$tmp/w/qemu" rev-parse base 2>/dev/null)" = "$(git -C "$SRC" rev-parse base)" ]'
rm -rf "$tmp/w"

# Corrupt one byte of a copy of the tarball: refused, nothing unpacked.
mkdir -p "$tmp/bad"
cp "$REAL_DL/$ORIG_TARBALL" "$tmp/bad/"
cp "$REAL_DL"/patches/* "$tmp/bad/"
printf 'X' | dd of="$tmp/bad/$ORIG_TARBALL" bs=1 seek=1000000 conv=notrunc 2>/dev/null
actual=$(sha256sum "$tmp/bad/$ORIG_TARBALL" | cut -d' ' -f1)
WORK=$tmp/w2 SRC=$tmp/w2/qemu DL=$tmp/w2/dl BASE_SRC=$tmp/bad sh "$ROOT/scripts/fetch-base.sh" >"$tmp/bad.log" 2>&1
rc=$?
sed 's/^/# /' "$tmp/bad.log"
check "corrupted tarball refused, naming file, expected and actual hash" \
    '[ $rc != 0 ] && grep -q "$ORIG_TARBALL.*expected sha256 $ORIG_SHA256.*actual $actual" "$tmp/bad.log" && [ ! -e "$tmp/w2/qemu" ]'

# Corrupt one upstream patch file (a stable diff where the line has them,
# else the last of Debian's build fixes): refused.
cp "$REAL_DL/$ORIG_TARBALL" "$tmp/bad/"
if [ "${STABLE_LAST:-0}" -gt 0 ]; then
    victim=$STABLE_PREFIX$(( (STABLE_LAST + 1) / 2 )).diff
    named="${STABLE_PREFIX}1.diff"
else
    for victim in $DEBIAN_FIXES; do :; done
    named=$victim
fi
echo " " >>"$tmp/bad/$victim"
WORK=$tmp/w3 SRC=$tmp/w3/qemu DL=$tmp/w3/dl BASE_SRC=$tmp/bad sh "$ROOT/scripts/fetch-base.sh" >"$tmp/bad2.log" 2>&1
rc=$?
sed 's/^/# /' "$tmp/bad2.log"
check "corrupted $victim refused" \
    '[ $rc != 0 ] && grep -q "checksum mismatch for $named" "$tmp/bad2.log" && [ ! -e "$tmp/w3/qemu" ]'
