#!/bin/sh
# The line's series as qemu-devel takes it: 'git format-patch
# --cover-letter' of the work tree's branch (base..HEAD, imported from
# patches/ by 'make queue'), numbered, with the cover letter's subject and
# body from patches/pending-LINE/cover-letter (first line the subject,
# then a blank line, then the body), into $LWORK/posting.  Then QEMU's
# checkpatch on every patch.  For a line posted upstream (10.2).
#
#   LINE=10.2 make posting
set -eu
. "$(dirname "$0")/common.sh"

COVER=$PATCHES/pending-$LINE/cover-letter
OUT=$LWORK/posting
[ -d "$SRC/.git" ] || die "no work tree in $SRC"
[ -f "$COVER" ] || die "no cover letter: $COVER"
n=$(git -C "$SRC" rev-list --count base..HEAD)
[ "$n" -gt 0 ] || die "no patches on base in $SRC"

rm -rf "$OUT"
mkdir -p "$OUT"
git_fixed -C "$SRC" format-patch -q --cover-letter --numbered \
    --subject-prefix=PATCH --no-signature --base=base --thread=shallow \
    -o "$OUT" base..HEAD
cl=$OUT/0000-cover-letter.patch
subject=$(head -n 1 "$COVER")
awk -v subject="$subject" -v body="$COVER" '
    /\*\*\* SUBJECT HERE \*\*\*/ { sub(/\*\*\* SUBJECT HERE \*\*\*/, subject) }
    /^\*\*\* BLURB HERE \*\*\*$/ {
        skip = 2
        while ((getline line < body) > 0)
            if (skip > 0) skip--
            else print line
        next
    }
    { print }
' "$cl" >"$cl.new"
mv "$cl.new" "$cl"
note "$n patches and the cover letter in $OUT"
fails=0
for p in "$OUT"/0*.patch; do
    [ "$p" = "$cl" ] && continue
    (cd "$SRC" && perl scripts/checkpatch.pl --color=never "$p") \
        >"$p.checkpatch" 2>&1 || true
    # an error or a warning fails the patch, as in make lint
    if ! grep -q '^total: 0 errors, 0 warnings' "$p.checkpatch"; then
        fails=$((fails + 1))
        echo "FAIL ${p##*/}:"
        grep -E '^(ERROR|WARNING)' "$p.checkpatch" | sed 's/^/    /'
    fi
done
echo "posting: $n patches, checkpatch failing on $fails"
[ "$fails" = 0 ]
