# Common settings for the project's scripts.  Sourced, not executed.
# Everything fetched, unpacked or built lives under $WORK (ignored by git).

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/work}
SRC=${SRC:-$WORK/qemu}              # QEMU work tree (git: tag "base" + series)
BUILD=${BUILD:-$WORK/build}         # meson build directory of $SRC
DL=${DL:-$WORK/downloads}           # verified upstream files
LOGS=${LOGS:-$WORK/logs}

# Base commit identity: fixed, so the base commit is the same everywhere.
BASE_IDENT_NAME="QEMU upstream base"
BASE_IDENT_EMAIL="qemu-devel@nongnu.org"
BASE_DATE="2025-12-01T00:00:00Z"

. "$ROOT/base.pin"

die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
}

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# Fixed git configuration for every command that writes or exports
# commits, so user configuration cannot change the result.
git_fixed() {
    git -c core.autocrlf=false -c core.fileMode=true -c diff.noprefix=false \
        -c diff.mnemonicPrefix=false -c diff.renames=true \
        -c format.signature= -c core.abbrev=12 "$@"
}
