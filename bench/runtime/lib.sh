# Shared set-up for the runtime benchmark (run.sh) and its profile (profile.sh). Source it from
# the repository root after scripts/lib.sh; do not run it.
#
# Provides: bench_setup (packages, berth-runtime, bundles, work dir, clean-up trap), the
# variables below, `wrapped CMD...` and `machine_facts`.
#   BERTH     the berth-runtime binary under test
#   WORK      private work dir (bundles, runtime roots, plans), removed on exit
#   BUNDLE    busybox bundle: config from `berth-runtime spec`, args ["/bin/true"], terminal false
#   BUNDLE_SC the same rootfs and config plus Docker's capabilities and a Docker-like seccomp profile
#   TAG       prefix of every container id and cgroup this run creates (bench-rt<pid>)
#   WRAP      1 when runtimes must run in a private mount namespace (crun on a hybrid host)

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TAG=bench-rt$$
EMPTY=""
WRAP=0
BUNDLE=""
BUNDLE_SC=""

# Where Docker's seccomp profile is read from at run time (never committed here): $DOCKER_SECCOMP,
# the reference copy in shared/ beside the repository, or podman's copy of the same format.
find_docker_seccomp() {
    local c
    for c in "${DOCKER_SECCOMP:-}" "$PWD/../shared/reference/docker-seccomp/default.json" \
        /usr/share/containers/seccomp.json; do
        [ -n "$c" ] && [ -f "$c" ] && { realpath "$c"; return 0; }
    done
    return 1
}

# Runs a command in the benchmark's mount namespace: on a hybrid cgroup host whose cgroup2
# mount lists controllers, crun 1.8.1 refuses to run ("cgroups in hybrid mode not supported"),
# so everything that is compared with crun runs in a private mount namespace in which an empty
# file is bind-mounted over /sys/fs/cgroup/unified/cgroup.controllers. The host is not changed.
wrapped() {
    if [ "$WRAP" = 1 ]; then
        unshare -m --propagation private -- sh -c 'mount --bind "$0" /sys/fs/cgroup/unified/cgroup.controllers && exec "$@"' "$EMPTY" "$@"
    else
        "$@"
    fi
}

bench_cleanup() {
    set +e
    local root id rt
    # Any container of ours still there (an interrupted run): delete it with its own runtime.
    for root in "$WORK"/root-*; do
        [ -d "$root" ] || continue
        for id in "$root"/"$TAG"*; do
            [ -e "$id" ] || continue
            id=$(basename "$id")
            case "$root" in
                *-runc*) rt=runc ;;
                *-crun*) rt=crun ;;
                *) rt=$BERTH ;;
            esac
            wrapped "$rt" --root "$root" delete --force "$id" >/dev/null 2>&1
        done
    done
    # Cgroups left by a runtime that was killed half-way (deepest first).
    find /sys/fs/cgroup -mindepth 2 -maxdepth 8 -depth -type d -name "$TAG*" -exec rmdir {} \; 2>/dev/null
    if grep -q " $WORK" /proc/self/mountinfo; then
        echo "warning: mounts left under $WORK:" >&2
        grep " $WORK" /proc/self/mountinfo >&2
    else
        rm -rf "$WORK"
    fi
}

# Checks that nothing of ours is left: no cgroup, no state dir, no mount, no process.
bench_check_clean() {
    local left
    left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 8 -type d -name "$TAG*" 2>/dev/null)
    left+=$(find "$WORK" -path "$WORK/root-*/$TAG*" 2>/dev/null)
    left+=$(grep " $WORK" /proc/self/mountinfo || true)
    left+=$(pgrep -f -- "$TAG" | grep -v "^$$\$" || true)
    if [ -n "$left" ]; then
        echo "left behind:"; echo "$left"
        return 1
    fi
    echo "clean-up check: no cgroup, state directory, mount or process of this run is left"
}

bench_setup() {
    [ "$(id -u)" = 0 ] || { echo "run me as root: runtimes create namespaces, mounts and cgroups" >&2; exit 1; }
    need_packages "${BUILD_PACKAGES[@]}" runc crun busybox-static time python3 procps util-linux "$@"
    if [ -n "${BERTH_RUNTIME:-}" ]; then
        BERTH=$(realpath "$BERTH_RUNTIME")
    elif [ "${DYNAMIC:-0}" = 1 ]; then
        echo "==> cargo build --release -p berth-runtime (dynamically linked)" >&2
        cargo build --release --quiet -p berth-runtime
        BERTH=$(realpath "${CARGO_TARGET_DIR:-target}/release/berth-runtime")
    else
        # The build berth ships (scripts/demo.sh installs it): static-pie.
        echo "==> static-pie release build of berth-runtime (scripts/lib.sh build_static_helpers)" >&2
        BERTH=$(realpath "$(build_static_helpers)/berth-runtime")
    fi
    WORK=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    EMPTY=$WORK/empty
    : >"$EMPTY"
    # (cgroupfs files report size 0, so read it.)
    if grep -q . /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then WRAP=1; fi

    # One bundle for every runtime. crun 1.8.1 refuses an ociVersion above 1.1 ("unknown
    # version specified"), so the shared config says 1.0.2 (what runc 1.1.5's spec writes).
    BUNDLE=$WORK/bundle
    BERTH_RUNTIME=$BERTH make_busybox_bundle "$BUNDLE" /bin/true
    python3 - "$BUNDLE/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["ociVersion"] = "1.0.2"
json.dump(c, open(p, "w"), indent=2)
PY
    # The Docker-like bundle shares the rootfs (root.path is absolute).
    BUNDLE_SC=$WORK/bundle-seccomp
    mkdir -p "$BUNDLE_SC"
    local prof
    if prof=$(find_docker_seccomp); then
        SECCOMP_SOURCE=$prof
        SECCOMP_SUMMARY=$(python3 "$BENCH_DIR/seccomp_profile.py" "$prof" "$BUNDLE/config.json" \
            "$BUNDLE_SC/config.json" "$BUNDLE/rootfs")
    else
        BUNDLE_SC=""
    fi
    mkdir -p "$WORK/plans"
}

# Prints the machine facts as Markdown bullets.
machine_facts() {
    local cpu mem v1 v2
    cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)
    v1=$(findmnt -n -t cgroup -o TARGET | xargs -r -n1 basename | tr '\n' ' ')
    v2=$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null || true)
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'); $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
    echo "- $(nproc) CPUs ($cpu), $mem RAM; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ -d /sys/fs/cgroup/unified ]; then
        echo "- cgroups: hybrid; v1 hierarchies: ${v1% }; cgroup2 at /sys/fs/cgroup/unified with controllers: ${v2:-none}"
    elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        echo "- cgroups: unified (cgroup2 only)"
    else
        echo "- cgroups: legacy; v1 hierarchies: ${v1% }"
    fi
    echo "- bundle and runtime state roots in $WORK ($(findmnt -n -o FSTYPE -T "$WORK"))"
    echo "- berth-runtime $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates 2>/dev/null || echo '+changes'), release build ($BERTH)"
    echo "- $(runc --version | head -1) ($(dpkg-query -W -f='${Version}' runc)); $(crun --version | head -1) ($(dpkg-query -W -f='${Version}' crun)); libseccomp $(dpkg-query -W -f='${Version}' libseccomp2)"
    if [ "$WRAP" = 1 ]; then
        echo "- crun needs the private mount namespace here (cgroup2 lists controllers on this hybrid host): the timer runs inside one, with an empty file bind-mounted over /sys/fs/cgroup/unified/cgroup.controllers, so all runtimes of a wrapped table run there at no per-run cost"
    fi
}
