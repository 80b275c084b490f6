#!/bin/sh
# Run QEMU's scripts/checkpatch.pl (from the base) on every patch of the
# queue, in series order.  Exits non-zero if any patch has errors.
set -eu
. "$(dirname "$0")/common.sh"

PATCHES=${PATCHES:-$ROOT/patches}
[ -x "$SRC/scripts/checkpatch.pl" ] || die "no base in $SRC: run 'make base'"

n=0 bad=0
for p in $(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$PATCHES/series"); do
    n=$((n + 1))
    rc=0
    out=$(cd "$SRC" && perl scripts/checkpatch.pl --color=never "$PATCHES/$p" 2>&1) ||
        rc=$?
    if [ $rc = 0 ]; then
        printf 'ok   %s\n' "$p"
    else
        bad=$((bad + 1))
        printf 'FAIL %s\n' "$p"
        echo "$out" | sed 's/^/    /'
    fi
done
echo "checkpatch: $n patches, $bad with errors"
[ "$bad" = 0 ]
