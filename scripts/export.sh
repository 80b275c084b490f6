#!/bin/sh
# Export the work tree's branch (base..HEAD) of the line ($LINE, default
# 7.2) to patches/KIND-LINE/ with fixed, deterministic flags, and rewrite
# each folder's series file.  Exporting twice gives no diff; two machines
# give the same bytes.
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

# The folder (KIND-LINE) of each patch: the one whose series names it now
# (in $OUT, else in the project's patches/); a new patch goes where the
# patch before it is, the first one by its Upstream: trailer.  Kinds must
# follow PATCH_KINDS order.
folder_now() {
    for _k in $PATCH_KINDS; do
        for _d in "$OUT" "$ROOT/patches"; do
            if [ -f "$_d/$_k-$LINE/series" ] &&
               sed 's/#.*//' "$_d/$_k-$LINE/series" | grep -qxF "$1"; then
                echo "$_k"
                return
            fi
        done
    done
}
kind_by_trailer() {
    _u=$(sed -n 's/^Upstream: //p' "$1" | head -n 1)
    case $_u in
        "none (downstream feature)") echo feature ;;
        none*|"") echo pending ;;
        *) echo backport ;;
    esac
}
kind_rank() {
    _i=0
    for _k in $PATCH_KINDS; do
        [ "$_k" = "$1" ] && { echo $_i; return; }
        _i=$((_i + 1))
    done
}
prev= rank=0
: >"$tmp/placed"
for name in $(cat "$tmp/series.new"); do
    k=$(folder_now "$name")
    [ -n "$k" ] || k=${prev:-$(kind_by_trailer "$tmp/n-$name")}
    r=$(kind_rank "$k")
    [ "$r" -ge "$rank" ] ||
        die "$name ($k-$LINE) comes after a patch of a later kind: reorder" \
            "the branch so that the kinds follow: $PATCH_KINDS"
    echo "$k $name" >>"$tmp/placed"
    prev=$k rank=$r
done

for k in $PATCH_KINDS; do
    dir=$OUT/$k-$LINE
    awk -v k="$k" '$1 == k { print $2 }' "$tmp/placed" >"$tmp/list-$k"
    if [ ! -s "$tmp/list-$k" ] && [ ! -d "$dir" ]; then
        continue
    fi
    mkdir -p "$dir"
    for old in "$dir"/*.patch; do
        [ -e "$old" ] || continue
        grep -qxF "${old##*/}" "$tmp/list-$k" || rm -f "$old"
    done
    for name in $(cat "$tmp/list-$k"); do
        if ! cmp -s "$tmp/n-$name" "$dir/$name"; then
            cp "$tmp/n-$name" "$dir/$name"
        fi
    done
    # Keep the comment lines of the folder's series (its heading): each
    # block of comments stays in front of the patch it preceded.  A fresh
    # output directory takes them from the project's series.
    prev=$dir/series
    [ -f "$prev" ] || prev=$ROOT/patches/$k-$LINE/series
    [ -f "$prev" ] || prev=/dev/null
    awk -v prev="$prev" '
        BEGIN {
            block = ""
            head = -1
            while ((getline line < prev) > 0) {
                if (line ~ /^#/ || line ~ /^[[:space:]]*$/) {
                    block = block line "\n"
                } else if (head == -1) {
                    head = block
                    block = ""
                } else {
                    before[line] = block
                    block = ""
                }
            }
            if (head == -1) { head = block; block = "" }
            tail = block
            printf "%s", head
        }
        { printf "%s%s\n", before[$0], $0 }
        END { printf "%s", tail }
    ' "$tmp/list-$k" >"$tmp/series-$k"
    cmp -s "$tmp/series-$k" "$dir/series" || cp "$tmp/series-$k" "$dir/series"
    # the folder's other files (a cover letter) go along to another OUT
    src=$ROOT/patches/$k-$LINE
    if [ -d "$src" ] && ! [ "$src" -ef "$dir" ]; then
        for f in "$src"/*; do
            case ${f##*/} in *.patch | series) continue ;; esac
            [ -f "$f" ] && cp "$f" "$dir/"
        done
    fi
done
# the list of upstream commits the trailers name belongs with the queue
if [ -f "$ROOT/patches/upstream-commits" ] &&
   ! [ "$OUT/upstream-commits" -ef "$ROOT/patches/upstream-commits" ]; then
    cp "$ROOT/patches/upstream-commits" "$OUT/upstream-commits"
fi
note "exported $(wc -l <"$tmp/series.new") patches of line $LINE to $OUT"
