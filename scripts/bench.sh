#!/bin/sh
# Run the benchmarks of bench/ against the build in $BUILD (bench/lib_*.py
# are their shared code, not benchmarks).
#   BENCH="cpr" scripts/bench.sh     only these (default: all)
#   BENCH_ARGS="--sizes 256 --runs 1" scripts/bench.sh   passed to each
set -eu
. "$(dirname "$0")/common.sh"
export ROOT WORK SRC BUILD
export QEMU="$BUILD/qemu-system-x86_64"
all=$(cd "$ROOT/bench" && ls *.py | grep -v '^lib_' | sed 's/\.py$//')
for b in ${BENCH:-$all}; do
    echo "== bench/$b.py"
    python3 "$ROOT/bench/$b.py" ${BENCH_ARGS:-}
done
