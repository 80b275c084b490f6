# Clean Debian environments of the line's suite (DEB_CODENAME in
# lines/LINE.deb.pin) for 'make deb' and 'make deb-check': chroots made
# by mmdebstrap from Debian's archive, used inside a private
# mount namespace so that nothing stays mounted.  Sourced, not executed
# (after common.sh).

. "$ROOT/lines/$LINE.deb.pin"

DEBWORK=${DEBWORK:-$LWORK/deb}
DEBLOGS=$LOGS/deb/$LINE             # the logs of 'make deb' of this line
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CODENAME=${DEB_CODENAME:-bookworm}

# deb_apt_init: a private apt state in $DEBWORK/apt that knows the
# suite's packages and sources (deb and deb-src of $CODENAME, -updates
# and -security), whatever the host's own apt lists; deb_apt CMD ARGS
# runs apt-get or apt-cache on it.  apt checks the indexes' signatures
# with the host's keyring.
deb_apt_init() {
    _a=$DEBWORK/apt
    rm -rf "$_a"
    mkdir -p "$_a/lists/partial" "$_a/cache/archives/partial"
    for _s in "$MIRROR $CODENAME" "$MIRROR $CODENAME-updates" \
              "$SECURITY_MIRROR $CODENAME-security"; do
        echo "deb [arch=amd64] $_s main"
        echo "deb-src $_s main"
    done >"$_a/sources.list"
    deb_apt apt-get update >"$DEBLOGS/apt-update.log" 2>&1 ||
        die "apt-get update of $CODENAME failed: see $DEBLOGS/apt-update.log"
}
deb_apt() {
    _cmd=$1
    shift
    "$_cmd" -o Dir::Etc::SourceList="$DEBWORK/apt/sources.list" \
        -o Dir::Etc::SourceParts="$DEBWORK/apt/none" \
        -o Dir::State::Lists="$DEBWORK/apt/lists" \
        -o Dir::Cache="$DEBWORK/apt/cache" \
        -o Dir::State::status=/dev/null "$@"
}

# debroot_make DIR VARIANT PKGS: a fresh chroot of $CODENAME in DIR ($CODENAME,
# -updates and -security, deb and deb-src), with PKGS (comma-separated)
debroot_make() {
    _dir=$1
    rm -rf "$_dir" "$_dir.tmp"
    mkdir -p "$(dirname "$_dir")"
    mmdebstrap --quiet --variant="$2" ${3:+--include="$3"} "$CODENAME" \
        "$_dir.tmp" \
        "deb $MIRROR $CODENAME main" \
        "deb $MIRROR $CODENAME-updates main" \
        "deb $SECURITY_MIRROR $CODENAME-security main" \
        "deb-src $MIRROR $CODENAME main" \
        "deb-src $MIRROR $CODENAME-updates main" \
        "deb-src $SECURITY_MIRROR $CODENAME-security main" ||
        die "mmdebstrap $CODENAME into $_dir failed"
    # as Debian's installer writes it: the host's name resolves (libvirt
    # migrates to the destination's host name)
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$(hostname)" \
        >"$_dir.tmp/etc/hosts"
    mv "$_dir.tmp" "$_dir"
}

# debroot_run DIR CMD...: run CMD (a shell command line) as root inside
# the chroot DIR, with /proc, /sys, /dev, the checkout ($ROOT) and $WORK
# mounted at the same paths, in a private mount namespace.  Extra bind
# mounts: DEBROOT_BINDS="HOSTDIR:CHROOTDIR ...".
debroot_run() {
    _dir=$1
    shift
    cp /etc/resolv.conf "$_dir/etc/resolv.conf" 2>/dev/null || true
    mkdir -p "$_dir$ROOT"
    _binds=${DEBROOT_BINDS:-}
    case $WORK in
        "$ROOT"/*) ;;
        *) _binds="$_binds $WORK:$WORK" ;;
    esac
    DIR=$_dir CMD=$* BINDS=$_binds ROOTDIR=$ROOT \
    unshare --mount --propagation private sh -eu -c '
        # the chroot its own mount point: mount namespaces inside it
        # (the libvirt suite) can then change its propagation
        mount --bind "$DIR" "$DIR"
        mount -t proc proc "$DIR/proc"
        mount --rbind /sys "$DIR/sys"
        mount --rbind /dev "$DIR/dev"
        mount --bind "$ROOTDIR" "$DIR$ROOTDIR"
        for b in $BINDS; do
            mkdir -p "$DIR${b#*:}"
            mount --bind "${b%%:*}" "$DIR${b#*:}"
        done
        exec chroot "$DIR" /usr/bin/env -i HOME=/root TERM=dumb \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            LANG=C.UTF-8 /bin/sh -euc "$CMD"'
}
