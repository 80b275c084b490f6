#!/bin/sh
# Run the benchmarks of bench/ against the build in $BUILD.
#   BENCH="cpr" scripts/bench.sh     only these (default: all)
set -eu
. "$(dirname "$0")/common.sh"
export ROOT WORK SRC BUILD
export QEMU="$BUILD/qemu-system-x86_64"
for b in ${BENCH:-$(cd "$ROOT/bench" && ls *.py | sed 's/\.py$//')}; do
    echo "== bench/$b.py"
    python3 "$ROOT/bench/$b.py" ${BENCH_ARGS:-}
done
