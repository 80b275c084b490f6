#!/bin/sh
# Lint the queue, in series order:
#  - QEMU's scripts/checkpatch.pl (from the base) on every patch: an error
#    or a warning fails the patch;
#  - the trailers of every patch's message (scripts/check-trailers.sh:
#    one Upstream: trailer naming patches/upstream-commits or saying
#    "none", the DEP-3 lines, Signed-off-by);
#  - then scripts/compile-extra.sh compiles the changed C files that the
#    normal build leaves out (Xen, usbredir), from the work tree $SRC;
#  - kernel-doc: files the series changes that the manual includes
#    (".. kernel-doc::" in docs/) must not warn more than in the base
#    (our build has --disable-docs; Debian's package builds the manual).
# Prints "ok   <patch>" or "FAIL <patch>: <reason>" lines; exits non-zero
# if anything fails.  LINT_COMPILE=0 skips the compile.
set -eu
. "$(dirname "$0")/common.sh"

[ -x "$SRC/scripts/checkpatch.pl" ] || die "no base in $SRC: run 'make base'"

list=$(line_patches)
files=
for p in $list; do
    files="$files $PATCHES/$p"
done

# Trailers of every patch at once; their FAIL lines are shown per patch.
trc=0
# shellcheck disable=SC2086
trailers=$(PATCHES=$PATCHES sh "$ROOT/scripts/check-trailers.sh" $files) || trc=$?
case $trc in
    0 | 1) ;;
    *) die "scripts/check-trailers.sh failed (rc $trc)" ;;
esac
# a broken patches/upstream-commits
# (check-trailers.sh names a patch by its file name, without the folder)
echo "$trailers" | grep '^FAIL ' |
    grep -vF "$(printf '%s\n' $list | sed 's|^.*/|FAIL |; s/$/: /')" || true

n=0 bad=0 cpbad=0 trbad=0
for p in $list; do
    n=$((n + 1))
    fail=0
    rc=0
    out=$(cd "$SRC" && perl scripts/checkpatch.pl --color=never "$PATCHES/$p" 2>&1) ||
        rc=$?
    total=$(echo "$out" | sed -n 's/^total: \([0-9]*\) errors, \([0-9]*\) warnings,.*/\1 \2/p' |
        tail -n 1)
    errors=${total% *} warnings=${total#* }
    if [ -z "$total" ]; then
        printf 'FAIL %s: checkpatch printed no "total:" line (rc %s)\n' "$p" "$rc"
        fail=1
    elif [ "$rc" != 0 ] || [ "$errors" != 0 ] || [ "$warnings" != 0 ]; then
        printf 'FAIL %s: checkpatch: %s errors, %s warnings\n' "$p" "$errors" "$warnings"
        fail=1
    fi
    if [ "$fail" = 1 ]; then
        cpbad=$((cpbad + 1))
        echo "$out" | sed 's/^/    /'
    fi
    t=$(echo "$trailers" | grep -F "FAIL ${p##*/}: " || true)
    if [ -n "$t" ]; then
        echo "$t"
        trbad=$((trbad + 1))
        fail=1
    fi
    if [ "$fail" = 0 ]; then
        printf 'ok   %s\n' "$p"
    else
        bad=$((bad + 1))
    fi
done
echo "checkpatch: $n patches, $cpbad with errors or warnings"
echo "trailers: $n patches, $trbad with violations"

compiled=skipped
if [ "${LINT_COMPILE:-1}" != 0 ]; then
    if sh "$ROOT/scripts/compile-extra.sh"; then
        compiled=ok
    else
        compiled=FAIL
        echo "FAIL compile-extra: changed files do not compile with Xen and usbredir on"
    fi
fi

kdoc=ok
for f in $(cd "$SRC" && grep -rhs '^\.\. kernel-doc:: ' docs |
           awk '{ print $3 }' | sort -u); do
    git -C "$SRC" diff --quiet base HEAD -- "$f" 2>/dev/null && continue
    [ -f "$SRC/$f" ] || continue
    now=$(cd "$SRC" && perl scripts/kernel-doc -none "$f" 2>&1 |
          grep -c 'warning:' || true)
    git -C "$SRC" show "base:$f" >"$WORK/kdoc-base.tmp" 2>/dev/null ||
        : >"$WORK/kdoc-base.tmp"
    was=$(cd "$SRC" && perl scripts/kernel-doc -none "$WORK/kdoc-base.tmp" 2>&1 |
          grep -c 'warning:' || true)
    rm -f "$WORK/kdoc-base.tmp"
    if [ "$now" -gt "$was" ]; then
        kdoc=FAIL
        echo "FAIL kernel-doc: $f has $now warnings, $was in the base:"
        (cd "$SRC" && perl scripts/kernel-doc -none "$f" 2>&1 |
         grep 'warning:' | sed 's/^/    /')
    fi
done
[ "$kdoc" = ok ] || bad=$((bad + 1))
echo "lint: $n patches, $bad failing; compile-extra: $compiled; kernel-doc: $kdoc"
[ "$bad" = 0 ] && [ "$trc" = 0 ] && [ "$compiled" != FAIL ]
