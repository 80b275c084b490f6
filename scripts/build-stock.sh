#!/bin/sh
# Build the stock base (tag "base", no series) into work/LINE/stock/build, with
# the same configuration as the patched build, for the cross-version
# tests and the no-regression benchmarks.  Cached: rebuilt only when the
# base changes; ccache makes the first build cheap after a patched one.
set -eu
. "$(dirname "$0")/common.sh"

STOCK=$LWORK/stock
sh "$ROOT/scripts/fetch-base.sh"
# a worktree whose repository moved is recreated
if [ -e "$STOCK/qemu/.git" ] &&
   ! git -C "$STOCK/qemu" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    rm -rf "$STOCK/qemu"
fi
if [ ! -e "$STOCK/qemu/.git" ]; then
    git -C "$SRC" worktree prune
    git -C "$SRC" worktree add -q --detach "$STOCK/qemu" base
fi
git -C "$STOCK/qemu" checkout -q --detach base
git -C "$STOCK/qemu" reset -q --hard base
SRC=$STOCK/qemu BUILD=$STOCK/build sh "$ROOT/scripts/build.sh"
