#!/bin/sh
# Soak: many suspend -> migrate -> wake round trips of the Linux guest
# (tests/soak.py), run through scripts/check.sh (same environment as
# make check).  Per-cycle figures go to $LOGS/soak.json.
#   SOAK_CYCLES=200 SOAK_MINUTES=60 scripts/soak.sh
set -u
. "$(dirname "$0")/common.sh"
export SOAK_CYCLES=${SOAK_CYCLES:-200}
export SOAK_MINUTES=${SOAK_MINUTES:-60}
export SOAK_JSON=$LOGS/soak.json
mkdir -p "$LOGS"
LOGS=$LOGS/soak SUITES=project/soak.py \
    TIMEOUT=$(( (${SOAK_MINUTES%.*} + 10) * 60 )) sh "$ROOT/scripts/check.sh"
rc=$?
grep -E '^(not ok|#)' "$LOGS/soak/check/project_soak.py.tap"
echo "per-cycle figures: $SOAK_JSON"
exit $rc
