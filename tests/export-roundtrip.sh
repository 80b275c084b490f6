#!/bin/sh
# The queue of the line ($LINE, default 7.2) round-trips: importing its
# patches (patches/KIND-LINE/, in kind order) onto base in a scratch clone
# and exporting it again gives the line's folders byte for byte, and a
# second export gives no diff.  Also: every patch applies with 'git am'
# with no fuzz (git am never fuzzes) and each folder's series names
# exactly its patch files.
set -u
. "$(dirname "$0")/../scripts/common.sh"

echo "1..5"
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else notok "$1"; fi; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
list=$(line_patches)
folders=
for k in $PATCH_KINDS; do
    [ -d "$PATCHES/$k-$LINE" ] && folders="$folders $k-$LINE"
done

missing=0
for p in $list; do [ -f "$PATCHES/$p" ] || missing=1; done
extra=0
for d in $folders; do
    for f in "$PATCHES/$d"/*.patch; do
        [ -e "$f" ] || continue
        echo "$list" | grep -qxF "$d/${f##*/}" || extra=1
    done
done
check "the series files of$folders name exactly their patch files ($(echo "$list" | grep -c .) patches)" \
    '[ $missing = 0 ] && [ $extra = 0 ]'

git clone -q --no-checkout "$SRC" "$tmp/q" && git -C "$tmp/q" checkout -q -B series base
applied=1
for p in $list; do
    git -C "$tmp/q" am -q -3 "$PATCHES/$p" >>"$tmp/am.log" 2>&1 || { applied=0; break; }
done
check "every patch applies on base with git am" '[ $applied = 1 ]'

# same_folders A B: the line's folders of A and B are identical
same_folders() {
    for d in $folders; do
        diff -r "$1/$d" "$2/$d" || return 1
    done
}
SRC=$tmp/q OUT=$tmp/out1 sh "$ROOT/scripts/export.sh" 2>>"$tmp/export.log"
SRC=$tmp/q OUT=$tmp/out2 sh "$ROOT/scripts/export.sh" 2>>"$tmp/export.log"
check "import + export reproduces$folders byte for byte" \
    'same_folders "$PATCHES" "$tmp/out1" >"$tmp/d1" 2>&1'
sed 's/^/# /' "$tmp/d1" | head -n 40
check "exporting twice gives no diff" 'diff -r "$tmp/out1" "$tmp/out2" >/dev/null'
sed "s/^/# /" "$tmp/export.log"

# Determinism with a non-empty queue, whatever patches/ holds today: a
# commit exported from one clone, imported into another and exported
# again gives the same bytes.
(
    cd "$tmp/q" &&
    echo "round-trip probe" >>README.rst &&
    git add README.rst &&
    GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" \
        git commit -q -m "probe: round-trip" -m "Signed-off-by: Probe <probe@example.org>"
) && SRC=$tmp/q OUT=$tmp/outA sh "$ROOT/scripts/export.sh" 2>>"$tmp/export.log"
git clone -q --no-checkout "$SRC" "$tmp/q2" && git -C "$tmp/q2" checkout -q -B series base
listA=$(PATCHES=$tmp/outA; line_patches)
for p in $listA; do
    git -C "$tmp/q2" am -q -3 "$tmp/outA/$p" >>"$tmp/am.log" 2>&1
done
SRC=$tmp/q2 OUT=$tmp/outB sh "$ROOT/scripts/export.sh" 2>>"$tmp/export.log"
check "a commit exported, re-imported elsewhere and exported again is byte-identical" \
    '[ -n "$listA" ] && [ "$listA" = "$(PATCHES=$tmp/outB; line_patches)" ] && diff -r "$tmp/outA" "$tmp/outB" >/dev/null'
