#!/bin/sh
# Bisectability check: apply the line's patches ($LINE, default 7.2) one at
# a time in a separate work tree (work/LINE/series/qemu, build in
# work/LINE/series/build, warm
# and incremental through ccache), and at every step build and run the
# quick gate of tests/gate.  Prints one line per patch; exits non-zero if
# any step fails.  For developers before resolving a series issue.
#   FROM=N make check-series   apply patches 1..N-1 without building,
#                              then build and gate from patch N on
#   TO=M                       stop after patch M (with FROM: N..M only)
set -eu
. "$(dirname "$0")/common.sh"

TREE=$LWORK/series/qemu
TBUILD=$LWORK/series/build
LOGDIR=$LOGS/check-series-$LINE
mkdir -p "$LOGDIR" "$LWORK/series"

sh "$ROOT/scripts/fetch-base.sh"
if [ ! -d "$TREE/.git" ] && [ ! -f "$TREE/.git" ]; then
    git -C "$SRC" worktree prune
    git -C "$SRC" worktree add -q --detach "$TREE" base
fi
git -C "$TREE" am --abort >/dev/null 2>&1 || true
git -C "$TREE" checkout -q --detach base
git -C "$TREE" reset -q --hard base

gate() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/tests/gate" |
    while read -r bin args; do
        if [ ! -x "$TBUILD/tests/qtest/$bin" ]; then
            echo "skip $bin (not in the tree yet)"
            continue
        fi
        (cd "$TBUILD" && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
            QTEST_QEMU_IMG=./qemu-img timeout -k 10 900 \
            "./tests/qtest/$bin" --tap -k $args) || return 1
    done
}

step() {
    label=$1 log=$LOGDIR/$2.log
    start=$(date +%s)
    if ! SRC=$TREE BUILD=$TBUILD sh "$ROOT/scripts/build.sh" >"$log" 2>&1; then
        printf '%-64s BUILD FAILED (%s)\n' "$label" "$log"
        return 1
    fi
    if ! gate >>"$log" 2>&1; then
        printf '%-64s GATE FAILED (%s)\n' "$label" "$log"
        return 1
    fi
    pts=$(grep -c '^ok ' "$log" || true)
    printf '%-64s ok: builds, gate %s passed (%ds)\n' "$label" "$pts" \
        "$(($(date +%s) - start))"
}

FROM=${FROM:-0}
TO=${TO:-0}
fail=0
i=0
[ "$FROM" -gt 0 ] || step "base" 000-base || fail=1
for p in $(line_patches); do
    i=$((i + 1))
    if ! git -C "$TREE" am -q -3 "$PATCHES/$p" >"$LOGDIR/am.log" 2>&1; then
        printf '%-64s DOES NOT APPLY\n' "$p"
        fail=1
        break
    fi
    if [ "$i" -lt "$FROM" ]; then
        continue
    fi
    step "$p" "$(printf %03d "$i")" || fail=1
    if [ "$TO" -gt 0 ] && [ "$i" -ge "$TO" ]; then
        break
    fi
done
# the scratch tree holds no work of its own: leave it at base
git -C "$TREE" am --abort >/dev/null 2>&1 || true
git -C "$TREE" checkout -q --detach base
[ "$FROM" -gt 0 ] || FROM=1
[ "$fail" = 0 ] && echo "check-series: patches $FROM..$i build and pass the gate"
exit $fail
