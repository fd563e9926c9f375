#!/usr/bin/env bash
# berth's main job, end to end, on a fresh Debian 12 machine (as root):
# installs what it needs, builds berth, makes a busybox bundle from the host's busybox-static,
# and runs a container in it with berth-runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "run me as root: containers need it" >&2; exit 1; }
need_packages "${BUILD_PACKAGES[@]}" busybox-static python3

echo "==> building berth (release)"
cargo build --release --quiet -p berth-runtime
export BERTH_RUNTIME=$PWD/target/release/berth-runtime

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
root=$work/state
trap '"$BERTH_RUNTIME" --root "$root" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "==> making a busybox bundle in $work/bundle"
make_busybox_bundle "$work/bundle" sh -c \
    'echo "hello from a berth container: $(hostname), pid $$, $(id)"; echo "kernel $(uname -r), $(ls /bin | wc -l) busybox applets"; cat /proc/self/cgroup | head -3'

echo "==> berth-runtime run"
"$BERTH_RUNTIME" --root "$root" run --bundle "$work/bundle" demo
echo "==> done"
