#!/bin/sh
# Run the demo against the built QEMU in $BUILD.
set -eu
. "$(dirname "$0")/common.sh"
[ -x "$BUILD/qemu-system-x86_64" ] || die "no build in $BUILD: run 'make build'"
export ROOT WORK SRC BUILD
exec python3 "$ROOT/scripts/demo.py" "$@"
