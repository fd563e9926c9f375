#!/usr/bin/env bash
# berth's main job, end to end, on a fresh Debian 12 machine (as root): installs what it
# needs, builds berth, installs it in /usr/local/bin, starts berthd (unless one already
# answers on /run/berth/berth.sock), makes a busybox base image from the host's
# busybox-static and runs containers with the berth CLI (and with docker's, if present).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "run me as root: containers need it" >&2; exit 1; }
need_packages "${BUILD_PACKAGES[@]}" busybox-static tini

echo "==> building berth (release; berth-runtime and berth-shim as static-pie)"
cargo build --release --quiet -p berthd -p berth-cli
static=$(build_static_helpers)
rel=${CARGO_TARGET_DIR:-target}/release
for b in "$rel/berthd" "$rel/berth" "$static/berth-runtime" "$static/berth-shim"; do
    n=$(basename "$b")
    install -m 0755 "$b" "/usr/local/bin/$n.new"
    mv -f "/usr/local/bin/$n.new" "/usr/local/bin/$n"
done

sock=/run/berth/berth.sock
export BERTH_HOST=unix://$sock
if berth version >/dev/null 2>&1; then
    echo "==> berthd is already running"
else
    echo "==> starting berthd (log: /var/log/berthd.log; stop it with: kill \$(cat /run/berth/berthd.pid))"
    setsid berthd >>/var/log/berthd.log 2>&1 < /dev/null &
    for _ in $(seq 1 100); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
    berth version >/dev/null
fi

echo "==> berth image bootstrap busybox"
berth image bootstrap busybox
berth images

echo "==> berth run --rm busybox ..."
berth run --rm busybox sh -c 'echo "hello from a berth container: $(hostname), $(id)"; echo "kernel $(uname -r), $(ls /bin | wc -l) busybox applets"'

echo "==> a detached container: run -d, ps, logs, exec, rm"
berth rm -f demo-web >/dev/null 2>&1 || true
berth run -d --name demo-web --memory 64m busybox sh -c 'while true; do date; sleep 1; done'
berth ps
sleep 1.5
berth logs --tail 2 demo-web
berth exec demo-web cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || berth exec demo-web cat /sys/fs/cgroup/memory.max
berth rm -f demo-web

if [ -x /usr/local/bin/docker ] || command -v docker >/dev/null; then
    echo "==> the docker CLI against berthd"
    DOCKER_HOST=$BERTH_HOST docker run --rm busybox echo "hello from docker run on berthd"
fi
echo "==> done: berthd keeps running; try: berth run -it --rm busybox sh"
