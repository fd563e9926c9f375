#!/usr/bin/env bash
# Runs the OCI runtime-tools validation programs against berth-runtime, runc and crun and prints
# a table of TAP pass/fail/skip counts per program and runtime.
#
#   tests/runtime-tools/run.sh                 # as root
#
# Environment:
#   RUNTIME_TOOLS_SRC=DIR   a GOPATH-style tree holding src/github.com/opencontainers/runtime-tools
#                           with cmd/runtimetest and validation/ (default: Debian's
#                           /usr/share/gocode, whose golang-github-opencontainers-runtime-tools-dev
#                           ships only the libraries, so the run stops there with a message)
#   RUNTIMES="berth runc crun"  which runtimes to run (berth is the one built here)
#   BERTH_RUNTIME=PATH      use this berth-runtime instead of building one
#   PROGRAMS="create kill"  run only these validation programs
#   OUT=DIR                 keep the TAP output of every run here (default: a temp dir, removed)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "run me as root: runtimes create namespaces, mounts and cgroups" >&2; exit 1; }
need_packages "${BUILD_PACKAGES[@]}" golang-go runc crun busybox-static tar util-linux \
    golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev \
    golang-github-hashicorp-go-multierror-dev golang-github-mrunalp-fileutils-dev \
    golang-golang-x-sys-dev golang-github-urfave-cli-dev golang-github-sirupsen-logrus-dev \
    golang-gocapability-dev

SRC=${RUNTIME_TOOLS_SRC:-/usr/share/gocode}
PKG=github.com/opencontainers/runtime-tools
if [ ! -d "$SRC/src/$PKG/validation" ] || [ ! -d "$SRC/src/$PKG/cmd/runtimetest" ]; then
    cat >&2 <<MSG
no runtime-tools validation programs under $SRC/src/$PKG:
Debian's golang-github-opencontainers-runtime-tools-dev ships only the library packages
(generate, specerror, validate, ...), not cmd/runtimetest nor validation/, and the Debian mirror
here has no source packages. Point RUNTIME_TOOLS_SRC at a GOPATH tree holding a runtime-tools
checkout (src/$PKG) and run again.
MSG
    exit 2
fi

RUNTIMES=${RUNTIMES:-berth runc crun}
WORK=$(mktemp -d /tmp/berth-rtools.XXXXXX)
KEEP=${OUT:-}
cleanup() {
    set +e
    [ -n "$KEEP" ] || rm -rf "$WORK"
}
trap cleanup EXIT
OUTDIR=${KEEP:-$WORK/tap}
mkdir -p "$OUTDIR" "$WORK/bin"

if [ -n "${BERTH_RUNTIME:-}" ]; then
    BERTH=$(realpath "$BERTH_RUNTIME")
elif [[ " $RUNTIMES " == *" berth "* ]]; then
    echo "==> cargo build --release -p berth-runtime" >&2
    cargo build --release --quiet -p berth-runtime
    BERTH=$(realpath "${CARGO_TARGET_DIR:-target}/release/berth-runtime")
fi

# Build in GOPATH mode: the given tree first, Debian's Go packages after it.
export GO111MODULE=off GOPATH="$SRC:/usr/share/gocode" GOCACHE="$WORK/gocache" GOFLAGS=
echo "==> building runtimetest and the validation programs from $SRC/src/$PKG" >&2
CGO_ENABLED=0 go build -o "$WORK/bin/runtimetest" "$PKG/cmd/runtimetest"
programs=()
for dir in "$SRC/src/$PKG"/validation/*/; do
    name=$(basename "$dir")
    [ "$name" = util ] && continue
    if [ -n "${PROGRAMS:-}" ] && [[ " $PROGRAMS " != *" $name "* ]]; then continue; fi
    ls "$dir"*.go >/dev/null 2>&1 || continue
    if go build -o "$WORK/bin/$name.t" "$PKG/validation/$name" 2>"$WORK/build-$name.log"; then
        programs+=("$name")
    else
        echo "warning: $name does not build (see below); left out" >&2
        sed 's/^/    /' "$WORK/build-$name.log" >&2
    fi
done

# The programs untar ./rootfs-amd64.tar.gz into each bundle, whose root.path is "." : a busybox
# rootfs at the top of the archive.
R=$WORK/rootfs
mkdir -p "$R"/{bin,dev,proc,sys,tmp,etc,root}
cp /bin/busybox "$R/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
tar -C "$R" -czf "$WORK/bin/rootfs-$(go env GOARCH).tar.gz" .

# crun 1.8 refuses a hybrid cgroup host whose cgroup2 mount lists controllers: its runs go in a
# private mount namespace with an empty file over cgroup.controllers (as bench/runtime does).
: >"$WORK/empty"
CRUN_WRAP=0
if grep -q . /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then CRUN_WRAP=1; fi

runtime_path() {
    case $1 in
        berth) echo "$BERTH" ;;
        *) command -v "$1" ;;
    esac
}

# run_one RUNTIME PROGRAM: the TAP output goes to $OUTDIR/RUNTIME/PROGRAM.tap (stderr to .err).
run_one() {
    local rt=$1 prog=$2 rtp dir=$OUTDIR/$1
    rtp=$(runtime_path "$rt")
    mkdir -p "$dir"
    (
        cd "$WORK/bin"
        if [ "$rt" = crun ] && [ "$CRUN_WRAP" = 1 ]; then
            RUNTIME=$rtp timeout 300 unshare -m --propagation private -- sh -c \
                'mount --bind "$0" /sys/fs/cgroup/unified/cgroup.controllers && exec "$@"' \
                "$WORK/empty" "./$prog.t"
        else
            RUNTIME=$rtp timeout 300 "./$prog.t"
        fi
    ) >"$dir/$prog.tap" 2>"$dir/$prog.err" || echo "# exit status $?" >>"$dir/$prog.tap"
}

# counts FILE: "pass fail skip" (TODO lines count as skipped; a run with no test line is a fail)
counts() {
    awk '
        /^ok [0-9]+ # SKIP/ || /^(not )?ok [0-9]+ # TODO/ { s++; next }
        /^ok [0-9]+/ { p++; next }
        /^not ok [0-9]+/ { f++; next }
        END { if (p + f + s == 0) f = 1; printf "%d %d %d\n", p, f, s }' "$1"
}

start=$(date +%s)
for prog in "${programs[@]}"; do
    for rt in $RUNTIMES; do
        echo "==> $rt $prog" >&2
        run_one "$rt" "$prog"
    done
done
elapsed=$(( $(date +%s) - start ))

# The table: one row per program, pass/fail/skip per runtime; "<<" marks a program in which
# berth-runtime fails more checks than another runtime.
{
    printf '| program |'
    for rt in $RUNTIMES; do printf ' %s pass/fail/skip |' "$rt"; done
    printf '\n|---|'
    for rt in $RUNTIMES; do printf -- '---|'; done
    printf '\n'
    declare -A tp tf ts
    for rt in $RUNTIMES; do tp[$rt]=0; tf[$rt]=0; ts[$rt]=0; done
    for prog in "${programs[@]}"; do
        printf '| %s |' "$prog"
        worse=""
        read -r bp bf bs < <(counts "$OUTDIR/berth/$prog.tap" 2>/dev/null || echo "0 0 0")
        for rt in $RUNTIMES; do
            read -r p f s < <(counts "$OUTDIR/$rt/$prog.tap")
            printf ' %s/%s/%s |' "$p" "$f" "$s"
            tp[$rt]=$(( tp[$rt] + p )); tf[$rt]=$(( tf[$rt] + f )); ts[$rt]=$(( ts[$rt] + s ))
            [ "$rt" != berth ] && [[ " $RUNTIMES " == *" berth "* ]] && [ "$bf" -gt "$f" ] && worse=" <<"
        done
        printf '%s\n' "$worse"
    done
    printf '| **total** |'
    for rt in $RUNTIMES; do printf ' %s/%s/%s |' "${tp[$rt]}" "${tf[$rt]}" "${ts[$rt]}"; done
    printf '\n'
} | tee "$WORK/table.md"
echo
if [ -n "$KEEP" ]; then where="TAP output in $OUTDIR"; else where="set OUT=DIR to keep the TAP output"; fi
echo "${#programs[@]} programs x $(echo $RUNTIMES | wc -w) runtimes in ${elapsed}s; $where"
[ "$CRUN_WRAP" = 1 ] && echo "crun ran in a private mount namespace with cgroup.controllers hidden (hybrid cgroup host)"
exit 0
