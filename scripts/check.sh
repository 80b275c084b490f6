#!/bin/sh
# Run the test suites and print one closing line "N passed, N failed".
#
# Suites:
#   qtest/NAME     QEMU qtests listed in tests/qtests (upstream's
#                  migration-test and the ones the series adds), run
#                  against the build in $BUILD with --tap
#   project/NAME   the project's own tests: every executable tests/*.sh
#                  and tests/*.py, each printing TAP
#   qtest-L/NAME   the qtests of tests/qtests that the tree of line L
#                  (CHECK_LINES, default "10.2 10.0") has, against that line's
#                  build in work/L/build (made by 'make check' first)
#   project-L/NAME the per-line project tests for line L (CHECK_TESTS in
#                  lines/L.pin, else PER_LINE_TESTS)
#
# Every test point (TAP "ok"/"not ok" line) counts; a suite that exits
# non-zero with no failed point, or reports fewer points than its plan,
# counts one more failure.  TAP logs are kept in $LOGS/check/.
#
#   SUITES="qtest/migration-test"   run only these suites
#   TIMEOUT=SECONDS                 per suite (default 1800)
set -u
. "$(dirname "$0")/common.sh"

TIMEOUT=${TIMEOUT:-1800}

# KVM: the series' qtests (suspend-test, cpr-test) run each case under TCG
# and, where KVM works, under KVM too, as PATH/tcg and PATH/kvm (a KVM case
# is skipped, saying why, on a host without it).  Upstream's migration-test
# takes KVM when it works ("-accel kvm -accel tcg"); there its suspend cases
# run a second time with /dev/kvm hidden, under TCG, as the suite
# qtest/migration-test@tcg.  The real-guest suites pin TCG themselves.
# HIDE_KVM=1 hides /dev/kvm from every test (a private mount namespace).
if [ "${HIDE_KVM:-0}" = 1 ] && [ -e /dev/kvm ] && [ -z "${CHECK_KVM_HIDDEN:-}" ]
then
    if unshare --mount true 2>/dev/null; then
        export CHECK_KVM_HIDDEN=1
        exec unshare --mount sh -c \
            'mount --bind /dev/null /dev/kvm && exec sh "$0" "$@"' "$0" "$@"
    fi
    die "HIDE_KVM=1: cannot hide /dev/kvm (no unshare)"
fi
LOGDIR=$LOGS/check
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

export ROOT WORK SRC BUILD
export QEMU="$BUILD/qemu-system-x86_64"
export QEMU_IMG="$BUILD/qemu-img"
export QTEST_QEMU_BINARY="$QEMU"
export QTEST_QEMU_IMG="$QEMU_IMG"
export PYTHONPATH="$SRC/python${PYTHONPATH:+:$PYTHONPATH}"

# KVM works for this QEMU: it starts with -accel kvm alone
kvm_works() {
    [ -z "${CHECK_KVM_HIDDEN:-}" ] && [ -e /dev/kvm ] || return 1
    echo quit | timeout 30 "$QEMU" -accel kvm -machine none -nodefaults \
        -display none -monitor stdio >/dev/null 2>&1
}

CHECK_LINES=${CHECK_LINES-10.2 10.0}
# the per-line project tests: CHECK_TESTS of the line's pin, else these
PER_LINE_TESTS="base-pin.sh export-roundtrip.sh wire-format.py"

line_tests() {
    (. "$ROOT/lines/$1.pin" && echo "${CHECK_TESTS:-$PER_LINE_TESTS}")
}

all_suites() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/tests/qtests" |
        while read -r t; do
            echo "qtest/$t"
            if [ "$t" = migration-test ] && kvm_works &&
                unshare --mount true 2>/dev/null; then
                echo "qtest/$t@tcg"
            fi
        done
    for t in "$ROOT"/tests/*.sh "$ROOT"/tests/*.py; do
        [ -x "$t" ] && echo "project/${t##*/}"
    done
    for l in $CHECK_LINES; do
        for t in $(line_tests "$l"); do
            echo "project-$l/$t"
        done
        sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/tests/qtests" |
            while read -r t; do
                [ -f "$WORK/$l/qemu/tests/qtest/$t.c" ] && echo "qtest-$l/$t"
            done
    done
    return 0
}

# count LOG RC -> prints "passed failed skipped"
count() {
    awk -v rc="$2" '
        /^ok / { if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) s++; else p++; n++; next }
        /^not ok / { if ($0 ~ /# *[Tt][Oo][Dd][Oo]/) s++; else f++; n++; next }
        /^1\.\.[0-9]+/ { sub(/^1\.\./, ""); plan = $0 + 0; next }
        /^Bail out!/ { bail = 1 }
        END {
            if (plan > n) f += plan - n
            else if ((rc != 0 || bail) && f == 0) f++
            printf "%d %d %d\n", p, f, s
        }' "$1"
}

total_p=0 total_f=0 total_s=0
suites=${SUITES:-$(all_suites)}
for s in $suites; do
    kind=${s%%/*} name=${s#*/}
    log=$LOGDIR/$(echo "$s" | tr '/' '_').tap
    start=$(date +%s)
    case $kind in
        qtest)
            bin=$BUILD/tests/qtest/${name%@tcg}
            if [ -x "$bin" ] && [ "$name" != "${name%@tcg}" ]; then
                # its suspend cases again, with /dev/kvm hidden: TCG
                paths=$(cd "$BUILD" && "$bin" -l | grep '^/.*/suspend' |
                        sed 's/^/-p /')
                (cd "$BUILD" && echo "# accelerator: tcg (/dev/kvm hidden)" &&
                 timeout -k 10 "$TIMEOUT" unshare --mount sh -c \
                    'mount --bind /dev/null /dev/kvm && exec "$@"' sh \
                    "$bin" --tap -k $paths) >"$log" 2>&1
                rc=$?
            elif [ -x "$bin" ]; then
                (cd "$BUILD" &&
                 if [ "$name" = migration-test ]; then
                     if kvm_works; then a=kvm; else a=tcg; fi
                     echo "# accelerator: $a (-accel kvm -accel tcg)"
                 fi
                 timeout -k 10 "$TIMEOUT" "$bin" --tap -k) >"$log" 2>&1
                rc=$?
            else
                echo "Bail out! $bin not built" >"$log"
                rc=1
            fi
            ;;
        project)
            (cd "$ROOT" && timeout -k 10 "$TIMEOUT" "$ROOT/tests/$name") \
                >"$log" 2>&1
            rc=$?
            ;;
        project-*)
            # the line's own trees and binaries, none of the default line's
            case $name in *.py) run=python3 ;; *) run=sh ;; esac
            (cd "$ROOT" && LINE=${kind#project-} SRC= BUILD= DL= QEMU= \
                QEMU_IMG= PYTHONPATH= \
                timeout -k 10 "$TIMEOUT" $run "$ROOT/tests/$name") >"$log" 2>&1
            rc=$?
            ;;
        qtest-*)
            lb=$WORK/${kind#qtest-}/build
            if [ -x "$lb/tests/qtest/$name" ]; then
                (cd "$lb" && QTEST_QEMU_BINARY=$lb/qemu-system-x86_64 \
                    QTEST_QEMU_IMG=$lb/qemu-img \
                    timeout -k 10 "$TIMEOUT" "./tests/qtest/$name" --tap -k) \
                    >"$log" 2>&1
                rc=$?
            else
                echo "Bail out! $lb/tests/qtest/$name not built" >"$log"
                rc=1
            fi
            ;;
        *)
            echo "Bail out! unknown suite $s" >"$log"
            rc=1
            ;;
    esac
    [ "$rc" = 124 ] && echo "Bail out! timed out after ${TIMEOUT}s" >>"$log"
    set -- $(count "$log" "$rc")
    total_p=$((total_p + $1)) total_f=$((total_f + $2)) total_s=$((total_s + $3))
    printf '%-40s %3d passed, %d failed, %d skipped (%ds)\n' \
        "$s" "$1" "$2" "$3" "$(($(date +%s) - start))"
    if [ "$2" != 0 ]; then
        grep -E '^(not ok|Bail out!)|ERROR|assert' "$log" | head -n 20 | sed 's/^/    /'
    fi
done

echo "TAP logs: $LOGDIR"
if [ "$total_s" != 0 ]; then
    echo "$total_p passed, $total_f failed, $total_s skipped"
else
    echo "$total_p passed, $total_f failed"
fi
[ "$total_f" = 0 ]
