#!/usr/bin/env bash
# The commit/diff benchmark: `docker commit` and `docker diff` of a container that changed
# FILES small files (default 1000), berthd side by side with a private dockerd (Debian docker.io,
# overlay2), both driven through their Engine API over their unix sockets (no CLI start-up in
# the timings), in interleaved rounds (see bench.py).
#
#   bench/commit/run.sh              # as root; builds the release daemon if needed
#
# Environment:
#   ROUNDS=15 FILES=1000     timed rounds (one commit and one diff per daemon each), files
#   BIN=DIR                  berthd, berth-shim, berth-runtime to use (default: the release
#                            build in $CARGO_TARGET_DIR or target/, built when missing)
#   TMPFS=1                  both daemons' data roots on one private tmpfs (takes the shared
#                            disk's journal and writeback out of the numbers: what remains is
#                            each engine's own work)
#   OUT=FILE                 Markdown report (default bench/results/commit-<date>.md, not committed)
# A benchmark, not a test: nothing here passes or fails on timings.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-15}
FILES=${FILES:-1000}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release}
OUT=${OUT:-bench/results/commit-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"
if [ ! -x "$BIN/berthd" ] || [ ! -x "$BIN/berth-shim" ] || [ ! -x "$BIN/berth-runtime" ]; then
    cargo build --release -p berthd -p berth-shim -p berth-runtime
fi
BIN=$(realpath "$BIN")

# Short paths: the shims' sockets live under the exec root and must fit in sockaddr_un.
WORK=$(mktemp -d /tmp/bc.XXXXXX)
TAG=bc$$
BERTHD_PID=""
DOCKERD_PID=""

cleanup() {
    set +e
    for s in "$WORK/berth.sock" "$WORK/docker.sock"; do
        [ -S "$s" ] || continue
        ids=$(DOCKER_HOST=unix://$s DOCKER_CONFIG=$WORK/cfg timeout 60 docker ps -aq 2>/dev/null)
        [ -z "$ids" ] || DOCKER_HOST=unix://$s DOCKER_CONFIG=$WORK/cfg timeout 60 docker rm -f $ids >/dev/null 2>&1
    done
    for p in $BERTHD_PID $DOCKERD_PID; do kill -TERM "$p" 2>/dev/null; done
    for p in $BERTHD_PID $DOCKERD_PID; do
        i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$p" 2>/dev/null
    done
    # containerd and shims dockerd started for itself (their command lines name our dir).
    for d in /proc/[0-9]*; do
        case "$(cat "$d/cmdline" 2>/dev/null | tr '\0' ' ')" in
        *"$WORK/"*) kill -KILL "${d#/proc/}" 2>/dev/null ;;
        esac
    done
    grep " $WORK" /proc/self/mounts | cut -d' ' -f2 | sort -r | while read -r m; do umount -l "$m"; done
    for c in /sys/fs/cgroup/*/"$TAG"; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null; done
    ip link del "$TAG" 2>/dev/null
    nft delete table ip "berth-$TAG" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# A busybox root filesystem as a tarball (Debian's busybox-static and its applets).
mkdir -p "$WORK/rootfs"/{bin,etc,tmp,root,proc,sys,dev,var}
cp /bin/busybox "$WORK/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$WORK/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$WORK/rootfs/etc/passwd"
printf 'root:x:0:\n' >"$WORK/rootfs/etc/group"
tar -C "$WORK/rootfs" -cf "$WORK/busybox.tar" .

wait_sock() {
    local i=0
    until curl -sf --unix-socket "$1" http://x/_ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 600 ] || { echo "daemon at $1 did not start; log:" >&2; cat "$2" >&2; exit 1; }
        sleep 0.1
    done
}

DATA=$WORK
if [ "${TMPFS:-0}" = 1 ]; then
    mkdir -p "$WORK/fs"
    mount -t tmpfs -o size=4g,mode=0700 bench-commit "$WORK/fs"
    DATA=$WORK/fs
fi
"$BIN/berthd" --data-root "$DATA/b/data" --exec-root "$WORK/b/x" \
    -H "unix://$WORK/berth.sock" --pidfile "$WORK/berthd.pid" \
    --bridge "$TAG" --nft-table "berth-$TAG" --cgroup-parent "/$TAG" \
    >"$WORK/berthd.log" 2>&1 &
BERTHD_PID=$!
mkdir -p "$WORK/d"
echo '{}' >"$WORK/d/daemon.json"
dockerd --config-file "$WORK/d/daemon.json" --data-root "$DATA/d/data" \
    --exec-root "$WORK/d/x" --pidfile "$WORK/d/dockerd.pid" \
    -H "unix://$WORK/docker.sock" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
    --userland-proxy=false --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$TAG" \
    >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
wait_sock "$WORK/berth.sock" "$WORK/berthd.log"
wait_sock "$WORK/docker.sock" "$WORK/dockerd.log"
for s in berth docker; do
    DOCKER_HOST=unix://$WORK/$s.sock DOCKER_CONFIG=$WORK/cfg docker import "$WORK/busybox.tar" busybox:bench >/dev/null
done

DRIVER=$(DOCKER_HOST=unix://$WORK/docker.sock DOCKER_CONFIG=$WORK/cfg docker info -f '{{.Driver}}')
{
    echo "# commit and diff of $FILES changed small files"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r);"
    echo "berthd $(git rev-parse --short HEAD) ($BIN), dockerd $(dockerd --version | sed 's/Docker version //') with $DRIVER;"
    echo "data roots on $(stat -f -c %T "$DATA")."
    echo
    python3 bench/commit/bench.py "$WORK/berth.sock" "$WORK/docker.sock" "$ROUNDS" "$FILES"
} | tee "$OUT"
echo "report: $OUT" >&2
