#!/bin/sh
# Check the trailers of the queue's patches (called by scripts/lint.sh).
# The commit message of every patch (the lines before its '---' line)
# must hold
#   exactly one Upstream: trailer, one of the three kinds
#     Upstream: <12 lowercase hex digits> ("<subject>")
#         an upstream commit listed, with this exact subject, in
#         patches/upstream-commits ("<12-hex-id> <release> <subject>"
#         lines)
#     Upstream: none - QEMU 10.0 still <text>
#         a fix for behaviour upstream still gets wrong (its tests and
#         test hooks too)
#     Upstream: none (downstream feature)
#         our own feature (its tests too)
#   exactly one each of the DEP-3 lines
#     Origin: backport, <URL>      for an upstream equivalent, with
#     Applied-Upstream: <release>, <URL>
#         URL = https://gitlab.com/qemu-project/qemu/-/commit/<id>,
#         release = the first release the list gives
#     Origin: vendor               for the other two kinds (and no
#                                  Applied-Upstream: line)
#     Forwarded: no | not-needed | <http(s) URL>
#     Last-Update: YYYY-MM-DD
#   and a Signed-off-by: Name <address> line.
# A trailer is one line, however long.  A line posted upstream as it is
# (TRAILERS=posting in its pin) carries none of these: only Signed-off-by.
# A line that backports another line's series (TRAILERS=backport and
# BACKPORT_OF=<line> in its pin: 10.0 backports 10.2) names, in each
# patch, the patch it backports, by number and subject, as DEP-3 lines:
#     Origin: backport, <line> series patch <N>/<M> ("<subject>")
#         patch N of the M patches of that line, with this exact subject
#     Forwarded: no | not-needed | <http(s) URL>
#     Last-Update: YYYY-MM-DD
# and a Signed-off-by: Name <address> line (no Upstream: trailer: the
# patch it names says where it stands upstream).
#
#   scripts/check-trailers.sh [PATCH...]   default: the line's patches
#
# Prints "FAIL <patch>: <reason>" for each violation (and
# "FAIL upstream-commits: ..." for a malformed list), then a summary line
# "trailers: N patches, M failing".  Exits 1 on any violation.
set -eu
. "$(dirname "$0")/common.sh"

LIST=${UPSTREAM_COMMITS:-$PATCHES/upstream-commits}

if [ $# = 0 ]; then
    for p in $(line_patches); do
        set -- "$@" "$PATCHES/$p"
    done
    [ $# != 0 ] || die "line $LINE has no patches in $PATCHES"
fi

bad=0

# A line whose patches are posted upstream as they are (TRAILERS=posting
# in its pin, 10.2): no trailers of ours, only Signed-off-by.
if [ "${TRAILERS:-dep3}" = posting ]; then
    n=0 failing=0
    for f in "$@"; do
        n=$((n + 1))
        msg=$(awk '/^---$/ { exit } { print }' "$f")
        why=
        echo "$msg" | grep -qE '^Signed-off-by: [^<]+ <[^>]+>$' ||
            why="no Signed-off-by: Name <address> line"
        t=$(echo "$msg" | grep -E '^(Upstream|Origin|Forwarded|Last-Update|Applied-Upstream):' |
            head -n 1)
        [ -z "$t" ] || why="a packaging trailer in a patch for upstream: $t"
        if [ -n "$why" ]; then
            echo "FAIL ${f##*/}: $why"
            failing=$((failing + 1))
        fi
    done
    echo "trailers: $n patches, $failing failing"
    [ "$failing" = 0 ]
    exit
fi

# The awk both kinds of checks share: fail(), the dates, the commit
# message's lines (state 0 mail headers, 1 message, 2 after "---") and its
# Origin:/Forwarded:/Last-Update:/Signed-off-by: lines; check_tail() from
# END checks the last three.
MSG_AWK='
    function fail(msg) { printf "FAIL %s: %s\n", name, msg; bad = 1 }
    function leap(y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
    function valid_date(s,    y, m, d, mdays) {
        if (s !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/)
            return 0
        y = substr(s, 1, 4) + 0; m = substr(s, 6, 2) + 0; d = substr(s, 9, 2) + 0
        if (m < 1 || m > 12 || d < 1)
            return 0
        mdays = substr("312831303130313130313031", 2 * m - 1, 2) + 0
        if (m == 2 && leap(y))
            mdays = 29
        return d <= mdays
    }
    function check_tail() {
        if (nfwd == 0)
            fail("no Forwarded: line")
        else if (nfwd > 1)
            fail(nfwd " Forwarded: lines, want exactly one")
        else if (fwd != "Forwarded: no" && fwd != "Forwarded: not-needed" &&
                 fwd !~ /^Forwarded: https?:\/\/[^[:space:]]+$/)
            fail("\"" fwd "\", want \"Forwarded: no\", \"Forwarded: not-needed\" or \"Forwarded: <URL>\"")
        if (nlast == 0)
            fail("no Last-Update: line")
        else if (nlast > 1)
            fail(nlast " Last-Update: lines, want exactly one")
        else if (substr(last, 1, 13) != "Last-Update: " || !valid_date(substr(last, 14)))
            fail("\"" last "\", want \"Last-Update: YYYY-MM-DD\" with a real date")
        if (nsob == 0)
            fail("no Signed-off-by: line")
    }
    state == 0 { if ($0 == "") state = 1; next }
    state == 2 { next }
    $0 == "---" { state = 2; next }
    /^Origin:/ { norigin++; origin = $0 }
    /^Forwarded:/ { nfwd++; fwd = $0 }
    /^Last-Update:/ { nlast++; last = $0 }
    /^Signed-off-by:/ {
        nsob++
        if ($0 !~ /^Signed-off-by: [^<]*[^<[:space:]] <[^<>[:space:]]+@[^<>[:space:]]+>$/)
            fail("malformed \"" $0 "\" (want \"Signed-off-by: Name <address>\")")
    }
'

# A backport line: each patch names the patch of BACKPORT_OF's series it
# backports.
if [ "${TRAILERS:-dep3}" = backport ]; then
    [ -n "${BACKPORT_OF:-}" ] || die "TRAILERS=backport needs BACKPORT_OF in lines/$LINE.pin"
    # "<N>/<M> <subject>" for every patch of that line, in series order
    of=$(line_patches_of "$BACKPORT_OF" | while read -r p; do echo "$PATCHES/$p"; done)
    [ -n "$of" ] || die "line $BACKPORT_OF has no patches in $PATCHES"
    m=$(echo "$of" | wc -l)
    idx=$(i=0; for f in $of; do
              i=$((i + 1))
              printf '%s/%s ' "$i" "$m"
              awk '/^Subject: / { s = $0; sub(/^Subject: (\[PATCH[^]]*\] )?/, "", s); on = 1; next }
                   on && /^[ \t]/ { sub(/^[ \t]+/, " "); s = s $0; next }
                   on { print s; exit }' "$f"
          done)
    n=0 failing=0
    for f in "$@"; do
        n=$((n + 1))
        if ! INDEX=$idx awk -v name="${f##*/}" -v of="$BACKPORT_OF" "$MSG_AWK"'
            BEGIN {
                k = split(ENVIRON["INDEX"], lines, "\n")
                for (i = 1; i <= k; i++) {
                    sp = index(lines[i], " ")
                    if (sp)
                        subj[substr(lines[i], 1, sp - 1)] = substr(lines[i], sp + 1)
                }
                state = 0
            }
            /^Upstream:/ { nup++ }
            END {
                if (state != 2) {
                    fail("no \"---\" line after the commit message")
                    exit 1
                }
                if (nup)
                    fail("an Upstream: trailer in a backport (the patch it names says it)")
                pre = "Origin: backport, " of " series patch "
                if (norigin != 1) {
                    fail((norigin + 0) " Origin: lines, want exactly one \"" pre "<N>/<M> (\"<subject>\")\"")
                } else if (substr(origin, 1, length(pre)) != pre) {
                    fail("\"" origin "\", want \"" pre "<N>/<M> (\"<subject>\")\"")
                } else {
                    r = substr(origin, length(pre) + 1)
                    sp = index(r, " ")
                    num = substr(r, 1, sp - 1)
                    want = "(\"" subj[num] "\")"
                    if (!(num in subj))
                        fail("\"" origin "\": " of " has no patch " num)
                    else if (substr(r, sp + 1) != want)
                        fail("\"" origin "\": patch " num " of " of " is " want)
                }
                check_tail()
                exit bad
            }' "$f"; then
            failing=$((failing + 1))
        fi
    done
    echo "trailers: $n patches, $failing failing"
    [ "$failing" = 0 ]
    exit
fi

# The list: comments and blank lines aside, "<12-hex-id> <release>
# <subject>" with each id once.
if [ -f "$LIST" ]; then
    awk -v name="${LIST##*/}" '
        function fail(msg) { printf "FAIL %s: line %d: %s\n", name, NR, msg; bad = 1 }
        /^#/ || /^[[:space:]]*$/ { next }
        {
            id = substr($0, 1, 12)
            rest = substr($0, 14)
            rel = rest
            sub(/ .*/, "", rel)
            subj = substr(rest, length(rel) + 2)
            if (length(id) != 12 || id ~ /[^0-9a-f]/ || substr($0, 13, 1) != " " ||
                rel !~ /^[0-9]+\.[0-9]+$/ ||
                subj !~ /[^[:space:]]/ || subj ~ /^[[:space:]]/ || subj ~ /[[:space:]]$/)
                fail("not \"<12 lowercase hex digits> <release> <subject>\": " $0)
            else if (id in seen)
                fail("commit " id " listed twice (first on line " seen[id] ")")
            else
                seen[id] = NR
        }
        END { exit bad }
    ' "$LIST" || bad=1
else
    echo "FAIL ${LIST##*/}: missing ($LIST)"
    LIST=/dev/null
    bad=1
fi

n=0 failing=0
for f in "$@"; do
    n=$((n + 1))
    if [ ! -f "$f" ]; then
        echo "FAIL ${f##*/}: no such file"
        failing=$((failing + 1))
        continue
    fi
    awk -v name="${f##*/}" -v list="$LIST" "$MSG_AWK"'
        function starts(s, p) { return substr(s, 1, length(p)) == p }
        function ends(s, p) { return length(s) >= length(p) && substr(s, length(s) - length(p) + 1) == p }
        function blank(s) { return s !~ /[^[:space:]]/ }
        function ishex12(s) { return length(s) == 12 && s !~ /[^0-9a-f]/ }
        function check_upstream(l,    r, id, subj) {
            r = substr(l, 11)
            if (!starts(l, "Upstream: ")) {
                fail("malformed trailer \"" l "\" (want \"Upstream: \" and one space)")
            } else if (starts(r, "none - QEMU 10.0 still ")) {
                if (blank(substr(r, 24)))
                    fail("empty text in \"" l "\"")
            } else if (r == "none (downstream feature)") {
                # our own feature
            } else if (starts(r, "none")) {
                fail("malformed trailer \"" l "\" (want \"Upstream: none - QEMU 10.0 still <text>\" or \"Upstream: none (downstream feature)\")")
            } else if (ishex12(substr(r, 1, 12)) && substr(r, 13, 3) == " (\"" &&
                       length(r) >= 17 && ends(r, "\")")) {
                id = substr(r, 1, 12)
                subj = substr(r, 16, length(r) - 17)
                if (!(id in listed))
                    fail("Upstream: commit " id " is not in upstream-commits")
                else if (subj != listed[id])
                    fail("Upstream: subject of " id " is \"" subj "\", upstream-commits has \"" listed[id] "\"")
                upstream_id = id
            } else {
                fail("malformed trailer \"" l "\" (want \"Upstream: <12-hex-id> (\"<subject>\")\", \"Upstream: none - QEMU 10.0 still <text>\" or \"Upstream: none (downstream feature)\", on one line)")
            }
        }
        BEGIN {
            while ((getline line < list) > 0) {
                if (line ~ /^#/ || blank(line) || (substr(line, 1, 12) in listed))
                    continue
                rel = substr(line, 14)
                sub(/ .*/, "", rel)
                listed[substr(line, 1, 12)] = substr(line, 15 + length(rel))
                release[substr(line, 1, 12)] = rel
            }
            close(list)
            state = 0       # 0 mail headers, 1 commit message, 2 after "---"
        }
        /^Upstream:/ { up[++nup] = $0 }
        /^Applied-Upstream:/ { napplied++; applied = $0 }
        END {
            if (state != 2) {
                fail("no \"---\" line after the commit message")
                exit 1
            }
            if (nup == 0)
                fail("no Upstream: trailer")
            else if (nup > 1)
                fail(nup " Upstream: trailers, want exactly one")
            for (i = 1; i <= nup; i++)
                check_upstream(up[i])

            url = "https://gitlab.com/qemu-project/qemu/-/commit/" upstream_id
            want = upstream_id != "" ? "Origin: backport, " url : "Origin: vendor"
            if (norigin == 0)
                fail("no \"" want "\" line")
            else if (norigin > 1)
                fail(norigin " Origin: lines, want exactly one")
            else if (origin != want)
                fail("\"" origin "\", want \"" want "\"")
            if (upstream_id == "" && napplied > 0)
                fail("\"" applied "\" in a patch that is not an upstream equivalent")
            else if (upstream_id != "" && napplied != 1)
                fail(napplied + 0 " Applied-Upstream: lines, want exactly one")
            else if (upstream_id != "" &&
                     applied != "Applied-Upstream: " release[upstream_id] ", " url)
                fail("\"" applied "\", want \"Applied-Upstream: " release[upstream_id] ", " url "\"")

            check_tail()
            exit bad
        }
    ' "$f" || failing=$((failing + 1))
done

echo "trailers: $n patches, $failing failing"
[ "$bad" = 0 ] && [ "$failing" = 0 ]
