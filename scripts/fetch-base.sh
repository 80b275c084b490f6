#!/bin/sh
# Fetch, verify and unpack the upstream base of the line ($LINE, default
# 7.2; pinned in lines/LINE.pin) into $SRC as a git repository whose first
# commit is tagged "base".
#
# Sources of the upstream files, in order of preference:
#   BASE_SRC=DIR    a directory supplied by the user holding the orig
#                   tarball and either Debian's debian.tar.xz or the
#                   patch files themselves (flat or under debian/patches/)
#   $DL             files fetched and verified earlier
#   BASE_CACHE=DIR  an offline cache, filled after every verified fetch
#   apt-get source --download-only qemu[=DEB_SOURCE_VERSION]: from the
#                   system's deb-src entries (scripts/setup-deps.sh), or,
#                   when the pin names DEB_SUITE, from a private apt list
#                   of that suite's deb-src in $DL/apt (the system's apt
#                   configuration is not touched)
#
# Every file is verified against the pin before use.  A wrong checksum
# stops with the file name, the expected and the actual hash.
set -eu
. "$(dirname "$0")/common.sh"

FORCE=${FORCE:-0}

stable_diffs() {
    i=1
    while [ "$i" -le "${STABLE_LAST:-0}" ]; do
        echo "$STABLE_PREFIX$i.diff"
        i=$((i + 1))
    done
}

fix_sha() {
    var=SHA256_$(echo "$1" | tr '.-' '__')
    eval "echo \${$var}"
}

# Copy the needed files from directory $1 into $DL if they are there.
# Returns 0 when the orig tarball and every patch were found.
take_from_dir() {
    d=$1
    [ -d "$d" ] || return 1
    [ -f "$d/$ORIG_TARBALL" ] || return 1
    pdir=
    first=$(for f in $(stable_diffs) $DEBIAN_FIXES; do echo "$f"; done |
            head -n 1)
    if [ -f "$d/$first" ]; then
        pdir=$d
    elif [ -f "$d/patches/$first" ]; then
        pdir=$d/patches
    elif [ -f "$d/debian/patches/$first" ]; then
        pdir=$d/debian/patches
    else
        deb=$(ls "$d"/*.debian.tar.xz 2>/dev/null | sort -V | tail -n 1)
        [ -n "$deb" ] || return 1
        rm -rf "$DL/unpack"
        mkdir -p "$DL/unpack"
        tar -C "$DL/unpack" -xJf "$deb" debian/patches
        pdir=$DL/unpack/debian/patches
    fi
    mkdir -p "$DL/patches"
    for f in $(stable_diffs) $DEBIAN_FIXES; do
        [ -f "$pdir/$f" ] || { note "$f missing in $pdir"; return 1; }
        [ "$pdir/$f" -ef "$DL/patches/$f" ] || cp "$pdir/$f" "$DL/patches/$f"
    done
    [ "$d/$ORIG_TARBALL" -ef "$DL/$ORIG_TARBALL" ] ||
        cp "$d/$ORIG_TARBALL" "$DL/$ORIG_TARBALL"
    rm -rf "$DL/unpack"
    return 0
}

have_all() {
    [ -f "$DL/$ORIG_TARBALL" ] || return 1
    for f in $(stable_diffs) $DEBIAN_FIXES; do
        [ -f "$DL/patches/$f" ] || return 1
    done
}

fetch_apt() {
    command -v apt-get >/dev/null || die "apt-get not found; use BASE_SRC=DIR"
    tmp=$DL/apt
    rm -rf "$tmp"
    mkdir -p "$tmp"
    pkg=$SOURCE_PACKAGE${DEB_SOURCE_VERSION:+=$DEB_SOURCE_VERSION}
    opts=
    if [ -n "${DEB_SUITE:-}" ]; then
        # the suite's deb-src index in a private apt state under $tmp
        mkdir -p "$tmp/lists/partial"
        echo "deb-src ${MIRROR:-http://deb.debian.org/debian} $DEB_SUITE main" \
            >"$tmp/sources.list"
        opts="-o Dir::Etc::SourceList=$tmp/sources.list
              -o Dir::Etc::SourceParts=$tmp/none -o Dir::State::Lists=$tmp/lists"
        note "reading the deb-src index of $DEB_SUITE"
        # shellcheck disable=SC2086
        apt-get $opts update >"$tmp/update.log" 2>&1 ||
            die "apt-get update of $DEB_SUITE's deb-src failed; see" \
                "$tmp/update.log"
    fi
    note "fetching Debian source package '$pkg' with apt-get"
    # shellcheck disable=SC2086
    (cd "$tmp" && chmod 0777 . && apt-get $opts source --download-only "$pkg") \
        >"$tmp/apt.log" 2>&1 ||
        die "apt-get source failed (is there a deb-src entry? run" \
            "scripts/setup-deps.sh); see $tmp/apt.log"
    take_from_dir "$tmp" || die "the source package lacks a needed file"
    rm -rf "$tmp"
}

check_sum() {
    name=$1 expected=$2 actual=$3
    if [ "$expected" != "$actual" ]; then
        die "checksum mismatch for $name: expected sha256 $expected," \
            "actual $actual"
    fi
}

verify() {
    check_sum "$ORIG_TARBALL" "$ORIG_SHA256" "$(sha256_of "$DL/$ORIG_TARBALL")"
    if [ "${STABLE_LAST:-0}" -gt 0 ]; then
        actual=$(cd "$DL/patches" && cat $(stable_diffs) | sha256sum |
                 cut -d' ' -f1)
        check_sum "${STABLE_PREFIX}1.diff ... $STABLE_PREFIX$STABLE_LAST.diff (concatenated)" \
            "$STABLE_SHA256" "$actual"
    fi
    for f in $DEBIAN_FIXES; do
        check_sum "$f" "$(fix_sha "$f")" "$(sha256_of "$DL/patches/$f")"
    done
}

base_ok() {
    [ -d "$SRC/.git" ] || return 1
    t=$(git -C "$SRC" rev-parse -q --verify 'base^{tree}' 2>/dev/null) ||
        return 1
    [ -n "$BASE_TREE" ] && [ "$t" = "$BASE_TREE" ]
}

if [ "$FORCE" != 1 ] && base_ok; then
    note "base already in $SRC (tree $BASE_TREE)"
    exit 0
fi

mkdir -p "$DL"
if [ -n "${BASE_SRC:-}" ]; then
    take_from_dir "$BASE_SRC" ||
        die "BASE_SRC=$BASE_SRC lacks $ORIG_TARBALL or the patches"
elif have_all; then
    :
elif [ -n "${BASE_CACHE:-}" ] && take_from_dir "$BASE_CACHE"; then
    note "using offline cache $BASE_CACHE"
else
    fetch_apt
fi
verify
note "upstream files verified"
if [ -n "${BASE_CACHE:-}" ] && ! [ "$DL" -ef "$BASE_CACHE" ]; then
    mkdir -p "$BASE_CACHE/patches"
    cp "$DL/$ORIG_TARBALL" "$BASE_CACHE/"
    cp "$DL"/patches/* "$BASE_CACHE/patches/"
    mv "$BASE_CACHE/patches"/* "$BASE_CACHE/" && rmdir "$BASE_CACHE/patches"
fi

if [ -e "$SRC" ]; then
    if [ -d "$SRC/.git" ] && [ "$FORCE" != 1 ] &&
       [ -n "$(git -C "$SRC" rev-list base.. 2>/dev/null)" ]; then
        die "$SRC holds commits on top of a different base; export them" \
            "(make export) and rerun with FORCE=1"
    fi
fi

stage=$WORK/base-unpack.$$
rm -rf "$stage"
mkdir -p "$stage"
trap 'rm -rf "$stage"' EXIT
note "unpacking $ORIG_TARBALL"
tar -C "$stage" --no-same-owner -xJf "$DL/$ORIG_TARBALL"
top=$(ls "$stage")
[ "$(echo "$top" | wc -l)" = 1 ] || die "unexpected tarball layout"
tree=$stage/$top
for f in $(stable_diffs) $DEBIAN_FIXES; do
    out=$(cd "$tree" && patch -p1 --fuzz=0 --no-backup-if-mismatch \
        --forward -s -i "$DL/patches/$f" 2>&1) ||
        die "$f does not apply without fuzz: $out"
    if find "$tree" -name '*.rej' | grep -q .; then
        die "$f left rejected hunks"
    fi
done
[ "$(cat "$tree/VERSION")" = "$BASE_VERSION" ] ||
    die "VERSION reads $(cat "$tree/VERSION"), expected $BASE_VERSION"

(
    cd "$tree"
    git init -q -b base-import .
    git_fixed add -A -f .
    GIT_AUTHOR_NAME=$BASE_IDENT_NAME GIT_AUTHOR_EMAIL=$BASE_IDENT_EMAIL \
    GIT_COMMITTER_NAME=$BASE_IDENT_NAME GIT_COMMITTER_EMAIL=$BASE_IDENT_EMAIL \
    GIT_AUTHOR_DATE=$BASE_DATE GIT_COMMITTER_DATE=$BASE_DATE \
        git_fixed commit -q --no-verify --no-gpg-sign \
            -m "QEMU $BASE_VERSION base" -m "$BASE_BODY"
    git tag base
    git branch -q -m base-import series
)
got=$(git -C "$tree" rev-parse 'base^{tree}')
if [ -z "$BASE_TREE" ]; then
    note "lines/$LINE.pin has no BASE_TREE yet; this tree is $got"
elif [ "$got" != "$BASE_TREE" ]; then
    die "base tree mismatch: expected $BASE_TREE, actual $got"
fi

rm -rf "$SRC"
mv "$tree" "$SRC"
note "base QEMU $BASE_VERSION ready in $SRC (tree $got)"
