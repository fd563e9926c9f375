#!/usr/bin/env bash
# Interoperability of berth-runtime with real peers, from Debian's packages:
#   - a private dockerd (docker.io 20.10) with its own containerd: --add-runtime berth=...
#   - podman 4.3 with conmon and the cgroupfs manager: --runtime .../berth-runtime
# Run as root on Debian 12. It installs what it needs, builds berth-runtime (unless
# BERTH_RUNTIME names a binary), imports a busybox image made from /bin/busybox (there is no
# registry), runs every scenario and prints one PASS/FAIL line each. Exit code 0 only when all
# pass and nothing is left behind. Everything it starts is stopped by pid and everything it
# creates is removed, on success, failure or SIGTERM. No network traffic: the peers run with
# networking disabled.
#
# Environment:
#   BERTH_RUNTIME=path   use this berth-runtime instead of building one
#   BERTH_RUNTIME_PROFILE=dev|release   the cargo profile to build it with (default dev: after
#                        scripts/test.sh's nextest run the debug binary is already built)
#   INTEROP=docker|podman|all   which peers to check (default all)
#   DOCKER=path          the docker CLI to use (default /usr/local/bin/docker, else Debian's)
#   KEEP_TMP=1           keep the temporary directory (logs) after the run
set -euo pipefail

IT_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$IT_DIR/../.." && pwd)
# shellcheck source=scripts/lib.sh
. "$REPO/scripts/lib.sh"
# shellcheck source=tests/interop/lib.sh
. "$IT_DIR/lib.sh"

[ "$(id -u)" = 0 ] || { echo "run me as root: dockerd and podman need it" >&2; exit 1; }
WHICH=${INTEROP:-all}
T_START=$SECONDS

say "packages"
PKGS=(busybox-static python3 procps util-linux iproute2)
case $WHICH in docker | all) PKGS+=(docker.io containerd runc) ;; esac
case $WHICH in podman | all) PKGS+=(podman conmon runc) ;; esac
# Installing docker.io would start the system's dockerd and containerd (which make docker0
# and iptables rules): a policy-rc.d that forbids service starts keeps them stopped.
policy_made=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# made by berth tests/interop/run.sh while installing packages\nexit 101\n' \
        >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_made=1
fi
rc=0
need_packages "${PKGS[@]}" || rc=$?
[ -z "$policy_made" ] || rm -f /usr/sbin/policy-rc.d
[ "$rc" = 0 ] || { echo "could not install ${PKGS[*]}" >&2; exit 1; }

if [ -z "${BERTH_RUNTIME:-}" ]; then
    profile=${BERTH_RUNTIME_PROFILE:-dev}
    case $profile in
    dev) profile_dir=debug ;;
    release) profile_dir=release ;;
    *) echo "BERTH_RUNTIME_PROFILE must be dev or release, not $profile" >&2; exit 1 ;;
    esac
    say "cargo build --profile $profile -p berth-runtime"
    need_packages "${BUILD_PACKAGES[@]}"
    (cd "$REPO" && cargo build --profile "$profile" -p berth-runtime --quiet)
    target_dir=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    BERTH_RUNTIME=$target_dir/$profile_dir/berth-runtime
fi
BERTH_RUNTIME=$(readlink -f "$BERTH_RUNTIME")
[ -x "$BERTH_RUNTIME" ] || { echo "no berth-runtime at $BERTH_RUNTIME" >&2; exit 1; }
export BERTH_RUNTIME
echo "berth-runtime: $BERTH_RUNTIME ($("$BERTH_RUNTIME" --version | head -1))"

IT_TMP=$(mktemp -d /tmp/berth-interop.XXXXXX)
chmod 755 "$IT_TMP"
touch "$IT_TMP/.start"
export IT_TMP
# The peers' working directory: conmon drops an empty "oom" file into its cwd on an OOM kill.
cd "$IT_TMP"

IT_IFACES_BEFORE=$(peer_interfaces)

finish() {
    local rc=$?
    set +e
    trap - INT TERM
    say "cleaning up"
    cleanup_all
    if ! check_left_behind; then
        rc=1
    elif [ -n "${KEEP_TMP:-}" ]; then
        echo "kept $IT_TMP"
    else
        rm -rf "$IT_TMP"
    fi
    [ "$rc" = 0 ] && echo "interop: all checks passed in $((SECONDS - T_START)) s" ||
        echo "interop: FAILED (exit code $rc)" >&2
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

IMAGE_TAR=$IT_TMP/busybox.tar
# shellcheck source=tests/interop/docker.sh
. "$IT_DIR/docker.sh"
# shellcheck source=tests/interop/podman.sh
. "$IT_DIR/podman.sh"

# Clean-up steps run last-registered first: containers, daemons (registered as they start),
# then stragglers and mounts, cgroups, and what the peers put in fixed places.
#
# dockerd, containerd and podman create a few things in fixed places whatever their roots:
# remove those the run created (they did not exist before). berth-runtime's default root
# (podman's containers live there) goes only if nothing but its seccomp cache is left in it.
for p in /run/docker /run/containerd /run/containers; do remember_absent "$p"; done
remember_absent /etc/docker key.json
# podman import keeps a blob-info cache there whatever its --root (containers/image).
remember_absent /var/lib/containers cache/blob-info-cache-v1.boltdb
[ -e /run/berth-runtime ] || on_cleanup "remove_runtime_root_if_unused /run/berth-runtime"
on_cleanup "remove_cgroup_tree '$DK_CGROUP'; remove_cgroup_tree '$PM_CGROUP'"
# conmon makes its console sockets in /tmp whatever TMPDIR says and leaves them
# when the runtime fails: those made during the run go.
on_cleanup "remove_conmon_term_sockets"
on_cleanup "stop_stragglers '$IT_TMP'; unmount_below '$IT_TMP'"

make_busybox_tar "$IMAGE_TAR"

if [ "$WHICH" = docker ] || [ "$WHICH" = all ]; then
    say "docker: private dockerd + containerd under $DK"
    if docker_up; then
        docker_scenarios
    else
        scenario "docker: daemon starts" false
    fi
    docker_down
fi

if [ "$WHICH" = podman ] || [ "$WHICH" = all ]; then
    say "podman: private storage under $PM"
    if podman_up; then
        podman_scenarios
    else
        scenario "podman: set-up" false
    fi
    podman_down
fi

echo
[ "$IT_FAILED" = 0 ] || printf 'failed: %s\n' "${IT_FAILED_NAMES[@]}"
echo "interop: $IT_PASSED passed, $IT_FAILED failed"
[ "$IT_FAILED" = 0 ]
