#!/bin/sh
# Export the work tree's branch (base..HEAD) to patches/ with fixed,
# deterministic flags, and rewrite patches/series.  Exporting twice gives
# no diff; two machines give the same bytes.
#
#   OUT=DIR scripts/export.sh    export somewhere else (used by tests)
set -eu
. "$(dirname "$0")/common.sh"

OUT=${OUT:-$ROOT/patches}
[ -d "$SRC/.git" ] || die "no work tree in $SRC"
git -C "$SRC" rev-parse -q --verify base >/dev/null || die "no tag 'base' in $SRC"
if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no)" ]; then
    die "uncommitted changes in $SRC: commit them first"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(
    cd "$SRC"
    git_fixed -c format.thread=false -c format.coverLetter=false \
        -c format.signOff=false \
        -c format.suffix=.patch -c format.useAutoBase=false \
        format-patch -q --zero-commit --no-signature --abbrev=12 \
        --no-numbered --subject-prefix=PATCH --no-cover-letter \
        --no-thread --no-to --no-cc --no-base --stat=76 \
        --diff-algorithm=histogram --filename-max-length=96 \
        -O scripts/git.orderfile \
        -o "$tmp" base..HEAD
)

: >"$tmp/series.new"
for p in $(ls "$tmp" | grep '\.patch$' | sort); do
    name=${p#[0-9][0-9][0-9][0-9]-}
    [ ! -e "$tmp/n-$name" ] || die "two patches named $name: reword one subject"
    mv "$tmp/$p" "$tmp/n-$name"
    echo "$name" >>"$tmp/series.new"
done

mkdir -p "$OUT"
for old in "$OUT"/*.patch; do
    [ -e "$old" ] || continue
    grep -qxF "${old##*/}" "$tmp/series.new" || rm -f "$old"
done
for name in $(cat "$tmp/series.new"); do
    if ! cmp -s "$tmp/n-$name" "$OUT/$name"; then
        cp "$tmp/n-$name" "$OUT/$name"
    fi
done
# Keep the comment lines of the series (the part headings): each block of
# comments stays in front of the patch it preceded.  A fresh output
# directory takes them from the project's series.
prev=$OUT/series
[ -f "$prev" ] || prev=$ROOT/patches/series
awk -v prev="$prev" '
    BEGIN {
        block = ""
        while ((getline line < prev) > 0) {
            if (line ~ /^#/ || line ~ /^[[:space:]]*$/) {
                block = block line "\n"
            } else {
                before[line] = block
                block = ""
            }
        }
        tail = block
    }
    { printf "%s%s\n", before[$0], $0 }
    END { printf "%s", tail }
' "$tmp/series.new" >"$tmp/series.out"
cp "$tmp/series.out" "$OUT/series"
# the list of upstream commits the trailers name belongs with the queue
if [ -f "$ROOT/patches/upstream-commits" ] &&
   ! [ "$OUT/upstream-commits" -ef "$ROOT/patches/upstream-commits" ]; then
    cp "$ROOT/patches/upstream-commits" "$OUT/upstream-commits"
fi
note "exported $(wc -l <"$tmp/series.new") patches to $OUT"
