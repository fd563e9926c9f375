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
. bench/engines.sh

bench_prelude podman conmon

export ROUNDS=${ROUNDS:-20} WARMUP=${WARMUP:-3} STARTS=${STARTS:-50}
OUT=${OUT:-$REPO/bench/results/engine-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"
OUT=$(realpath -m "$OUT")

bench_build
bench_tmp engine
. "$IT_DIR/podman.sh"
on_cleanup "remove_cgroup_tree '$PM_CGROUP'"
bench_berthd engine

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
