#!/bin/sh
# Compile the C files that the series changes and that scripts/build.sh
# never compiles: build.sh configures with --disable-xen --disable-usb-redir,
# so e.g. hw/i386/xen/xen-hvm.c and hw/usb/redirect.c are left out.
#
# Configures (once; anew when the flags change) a second build directory
# $EXTRA_BUILD from the work tree $SRC with build.sh's flags, but
# --enable-xen --enable-usb-redir, and ccache as build.sh.  Then builds
# just the object files of the .c files in 'git diff base HEAD', looked up
# among the targets of 'ninja -t targets all' (a file may have several
# objects; a file with none, such as a test, is skipped with a note).
# Their objects are removed first, so every run compiles them (ccache
# makes that cheap) and shows their warnings.  Fails if a compile fails.
#
#   scripts/compile-extra.sh
#   SRC=... EXTRA_BUILD=... scripts/compile-extra.sh
set -eu
. "$(dirname "$0")/common.sh"

EXTRA_BUILD=${EXTRA_BUILD:-$LWORK/build-extra}

[ -f "$SRC/VERSION" ] || die "no QEMU tree in $SRC; run 'make base' first"
git -C "$SRC" rev-parse -q --verify base >/dev/null || die "no tag 'base' in $SRC"

flags=$(echo "$CONFIGURE_FLAGS" |
    sed -e 's/--disable-xen$/--enable-xen/' -e 's/--disable-xen /--enable-xen /' \
        -e 's/--disable-usb-redir$/--enable-usb-redir/' \
        -e 's/--disable-usb-redir /--enable-usb-redir /')
for f in --enable-xen --enable-usb-redir; do
    case " $(echo $flags) " in
        *" $f "*) ;;
        *) die "could not turn $f on in: $(echo $CONFIGURE_FLAGS)" ;;
    esac
done

use_ccache
configure_once "$SRC" "$EXTRA_BUILD" "$flags"

# The object targets of each changed C file: meson names the object of
# dir/file.c "<target>.p/dir_file.c.o".
# (build.ninja first regenerated if a meson.build changed since).
log=$EXTRA_BUILD/compile-extra.log
ninja -C "$EXTRA_BUILD" build.ninja >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; die "regenerating $EXTRA_BUILD/build.ninja failed"; }
targets=$(mktemp)
trap 'rm -f "$targets"' EXIT
ninja -C "$EXTRA_BUILD" -t targets all | sed 's/: [^:]*$//' >"$targets"

objs= nobj=0 nfile=0 plan=
for f in $(git -C "$SRC" diff --name-only --diff-filter=d base HEAD -- '*.c'); do
    o=$(awk -v want="$(echo "$f" | tr / _).o" '
        { i = index($0, ".p/") }
        i > 0 && substr($0, i + 3) == want { print }' "$targets")
    if [ -z "$o" ]; then
        note "$f: no object in $EXTRA_BUILD (a test or another target's file): skipped"
        continue
    fi
    nfile=$((nfile + 1))
    for t in $o; do
        objs="$objs $t"
        nobj=$((nobj + 1))
        plan="$plan$t ($f)
"
    done
done
if [ -z "$objs" ]; then
    echo "compile-extra: no changed C file has an object in $EXTRA_BUILD: nothing to compile"
    exit 0
fi

(cd "$EXTRA_BUILD" && rm -f $objs)
jobs=${JOBS:-$(nproc)}
note "compiling $nobj objects of $nfile changed files in $EXTRA_BUILD ($jobs jobs)"
rc=0
ninja -C "$EXTRA_BUILD" -j "$jobs" -k 0 $objs >>"$log" 2>&1 || rc=$?
nwarn=$(grep -c 'warning:' "$log" || true)
if [ "$rc" != 0 ]; then
    grep -v '^\[[0-9]*/[0-9]*\] ' "$log" | tail -n 60 >&2
    die "compile failed (rc $rc; whole log: $log)"
fi
if [ "$nwarn" != 0 ]; then
    note "$nwarn compiler warnings:"
    grep -A 3 'warning:' "$log" | grep -v -e '^\[[0-9]*/[0-9]*\] ' -e '^--$' >&2
fi
printf '%s' "$plan" | sed 's/^/compiled /'
echo "compile-extra: $nobj objects of $nfile changed files compiled" \
    "(Xen and usbredir on), $nwarn warnings"
