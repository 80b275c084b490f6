#!/bin/sh
# Import the queue of the line ($LINE, default 7.2): branch "series" = tag
# "base" + one commit per patch of patches/KIND-LINE/ (kinds in order, each
# folder in the order of its series file), applied with 'git am -3'.
#
#   scripts/queue.sh         import; refuses to drop work that is not
#                            exported (commits or edits that differ from
#                            patches/)
#   FORCE=1 scripts/queue.sh import even so (the old branch is kept as
#                            series-backup-<date>)
#   AUTO=1 scripts/queue.sh  import only when the work tree is missing or
#                            is exactly at base; otherwise build what is
#                            there (the developer's work) and say so
set -eu
. "$(dirname "$0")/common.sh"

FORCE=${FORCE:-0}
AUTO=${AUTO:-0}

sh "$ROOT/scripts/fetch-base.sh"

series_list() {
    line_patches
}

# Does the work tree's branch export to exactly what patches/ holds?
matches_patches() {
    out=$(mktemp -d)
    OUT=$out sh "$ROOT/scripts/export.sh" 2>/dev/null || { rm -rf "$out"; return 1; }
    ok=0
    if [ "$(PATCHES=$out; line_patches)" = "$(series_list)" ]; then
        for p in $(series_list); do
            cmp -s "$out/$p" "$PATCHES/$p" || ok=1
        done
    else
        ok=1
    fi
    rm -rf "$out"
    return $ok
}

dirty=$(git -C "$SRC" status --porcelain --untracked-files=no)
ahead=$(git -C "$SRC" rev-list --count base..HEAD)
if [ -z "$dirty" ] && matches_patches; then
    note "work tree already matches patches/ ($ahead patches)"
    exit 0
fi
if [ "$AUTO" = 1 ] && { [ -n "$dirty" ] || [ "$ahead" != 0 ]; }; then
    note "work tree differs from patches/: building it as it is" \
         "(run 'make export' to keep it, 'make queue FORCE=1' to drop it)"
    exit 0
fi
if [ "$FORCE" != 1 ] && { [ -n "$dirty" ] || [ "$ahead" != 0 ]; }; then
    die "work tree $SRC has work that is not in patches/:" \
        "run 'make export', or 'make queue FORCE=1' to replace it"
fi

cd "$SRC"
if [ "$ahead" != 0 ] || [ -n "$dirty" ]; then
    backup=series-backup-$(date +%Y%m%d-%H%M%S)
    git branch -f "$backup" HEAD
    note "old branch kept as $backup"
    git reset -q --hard
fi
git am --abort >/dev/null 2>&1 || true
git checkout -q -B series base
n=0
for p in $(series_list); do
    [ -f "$PATCHES/$p" ] || die "the series names $p, which is missing"
    git am -q -3 --keep-cr "$PATCHES/$p" ||
        die "$p does not apply: fix it in $SRC ('git am --show-current-patch')"
    n=$((n + 1))
done
note "imported $n patches onto base in $SRC (branch series)"
