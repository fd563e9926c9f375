# Shared helpers for berth's scripts. Source it; do not run it.

# Installs Debian packages that are missing (quietly; only as root).
need_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Packages needed to build berth.
BUILD_PACKAGES=(libseccomp-dev pkg-config gcc)

# Makes an OCI bundle in $1 whose rootfs is Debian's static busybox with its applets, and
# whose config.json is berth-runtime's default with the process changed to "${@:2}".
make_busybox_bundle() {
    local dir=$1; shift
    local rt=${BERTH_RUNTIME:?}
    mkdir -p "$dir/rootfs"/{bin,dev,proc,sys,tmp,etc,root}
    cp /bin/busybox "$dir/rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
    echo 'root:x:0:' > "$dir/rootfs/etc/group"
    rm -f "$dir/config.json"
    "$rt" spec --bundle "$dir"
    python3 - "$dir/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
c = json.load(open(path))
c["process"]["args"] = args
c["process"]["terminal"] = False
json.dump(c, open(path, "w"), indent=2)
PY
}

# Installs packages without letting their services start (docker.io and containerd would
# start the system's daemons, which make docker0 and iptables rules): a policy-rc.d that
# forbids service starts is in place while apt runs.
need_packages_no_start() {
    local made= rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# made by berth scripts/lib.sh while installing packages\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made=1
    fi
    need_packages "$@" || rc=$?
    [ -z "$made" ] || rm -f /usr/sbin/policy-rc.d
    return $rc
}

# Builds the programs that run once per container (berth-runtime, berth-shim) as static-pie
# executables (glibc and libseccomp linked in): they start faster (no dynamic loading, fewer
# relocations on every exec and re-exec) and use less memory (BENCHMARKS.md). Prints the
# directory holding them. Needs libseccomp-dev (its static library).
build_static_helpers() {
    local tdir=${CARGO_TARGET_DIR:-$PWD/target}/static
    RUSTFLAGS="-C target-feature=+crt-static" LIBSECCOMP_LINK_TYPE=static \
        LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu \
        cargo build --release --quiet -p berth-runtime -p berth-shim \
        --target x86_64-unknown-linux-gnu --target-dir "$tdir" >&2
    echo "$tdir/x86_64-unknown-linux-gnu/release"
}
