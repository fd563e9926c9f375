#!/usr/bin/env bash
# The engine benchmark: berthd (with berth's CLI and with the docker CLI) side by side with a
# private dockerd + containerd (Debian's docker.io) and podman (Debian's, runc as its runtime),
# in one run on one machine:
#   - idle daemon memory; `run --rm --network none busybox true`; the default bridge's cost;
#   - STARTS detached starts; `ps -a` with those containers; shim memory per container.
#
#   bench/engine/run.sh             # as root; a few minutes after the release build
#
# Environment: ROUNDS=20 WARMUP=3 STARTS=50; OUT=FILE (default
# bench/results/engine-<date>.md, not committed). A benchmark, not a test: nothing here
# passes or fails on timings. Everything it starts is stopped by pid and removed at the end
# (the interop checks' helpers: tests/interop/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "run me as root" >&2; exit 1; }
need_packages "${BUILD_PACKAGES[@]}" busybox-static python3 iproute2 procps util-linux nftables
need_packages_no_start docker.io containerd runc podman conmon

export ROUNDS=${ROUNDS:-20} WARMUP=${WARMUP:-3} STARTS=${STARTS:-50}
OUT=${OUT:-$REPO/bench/results/engine-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"
OUT=$(realpath -m "$OUT")

echo "==> release build (berthd, berth; berth-runtime and berth-shim as installed)" >&2
cargo build --release --quiet -p berthd -p berth-cli
helpers=$(build_static_helpers)
target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

IT_TMP=$(mktemp -d /tmp/berth-bench-engine.XXXXXX)
chmod 755 "$IT_TMP"
export IT_TMP
IT_DIR=$REPO/tests/interop
. "$IT_DIR/lib.sh"
# The peers run their usual runtime (runc), not berth-runtime.
BERTH_RUNTIME=$(command -v runc)
IMAGE_TAR=$IT_TMP/busybox.tar
. "$IT_DIR/docker.sh"
. "$IT_DIR/podman.sh"
cd "$IT_TMP"

finish() {
    local rc=$?
    set +e
    say "cleaning up"
    cleanup_all
    rm -rf "$IT_TMP"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM
on_cleanup "stop_stragglers '$IT_TMP'; unmount_below '$IT_TMP'"
on_cleanup "remove_cgroup_tree '$DK_CGROUP'; remove_cgroup_tree '$PM_CGROUP'"

make_busybox_tar "$IMAGE_TAR"

# berthd: its own roots, socket, bridge, nft table and cgroup parent.
BT=$IT_TMP/berth
mkdir -p "$BT/bin"
for b in "$target/release/berthd" "$target/release/berth" "$helpers/berth-runtime" "$helpers/berth-shim"; do
    cp "$b" "$BT/bin/"
done
tag=$$
BRIDGE=bbench$((tag % 100000))
NFT=berth-bench-$tag
BT_CGROUP=berth-bench-$tag
"$BT/bin/berthd" --data-root "$BT/data" --exec-root "$BT/run" -H "unix://$BT/berth.sock" \
    --pidfile "$BT/berthd.pid" --bridge "$BRIDGE" --nft-table "$NFT" \
    --cgroup-parent "/$BT_CGROUP" >"$BT/berthd.log" 2>&1 &
BERTHD_PID=$!
on_cleanup "remove_cgroup_tree '$BT_CGROUP'; ip link del '$BRIDGE' 2>/dev/null; nft delete table ip '$NFT' 2>/dev/null; true"
on_cleanup "stop_daemon $BERTHD_PID berthd 30"
export BERTH_HOST=unix://$BT/berth.sock
on_cleanup "'$BT/bin/berth' rm -f \$('$BT/bin/berth' ps -aq) >/dev/null 2>&1; true"
wait_until 30 "$BT/bin/berth" version >/dev/null || { tail "$BT/berthd.log"; exit 1; }
"$BT/bin/berth" import "$IMAGE_TAR" busybox:bench >/dev/null

say "docker: private dockerd + containerd under $DK"
docker_up
say "podman: private storage under $PM"
podman_up
unset DOCKER_HOST

{
    echo "# engine benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) cores"
    echo "- berth $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- crates || echo '+changes') (release; static berth-runtime and berth-shim)"
    echo "- dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) with containerd $(containerd --version | awk '{print $3}') and runc; podman $(podman --version | awk '{print $3}') with conmon and runc; docker CLI $("$DOCKER_CLI" --version | awk '{print $3}' | tr -d ,)"
    echo "- reproduce: \`bench/engine/run.sh\` (ROUNDS=$ROUNDS STARTS=$STARTS)"
} >"$OUT"

BERTH=$BT/bin/berth BERTH_IMAGE=busybox:bench BERTHD_PID=$BERTHD_PID BERTH_EXEC_ROOT=$BT/run \
    DOCKER_CLI=$DOCKER_CLI DK_HOST=unix://$DK/docker.sock DK_IMAGE=$DK_IMAGE DK_ROOT=$DK \
    DOCKERD_PID=$DK_DOCKERD_PID CONTAINERD_PID=$DK_CONTAINERD_PID \
    PM_CMD=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${PM_CMD[@]}") \
    PM_RUN=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' --cgroup-parent "/$PM_CGROUP") \
    PM_IMAGE=$PM_IMAGE PM_ROOT=$PM OUT=$OUT \
    python3 "$REPO/bench/engine/measure.py"
echo "report: $OUT"
