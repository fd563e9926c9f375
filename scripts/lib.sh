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

# Builds the programs that run once per container as static executables, with the `helper`
# profile (release, abort on panic): berth-runtime as static-pie on glibc (libseccomp linked
# in), berth-shim on musl when rustup can add that target (0.9 MiB RSS against 1.3 MiB on
# glibc; BENCHMARKS.md), else on glibc too. Static programs start faster (no dynamic loading,
# fewer relocations on every exec) and use less memory. Prints the directory holding both.
# Needs libseccomp-dev (its static library).
build_static_helpers() {
    local tdir=${CARGO_TARGET_DIR:-$PWD/target}/static
    local gnu=x86_64-unknown-linux-gnu musl=x86_64-unknown-linux-musl shim_target
    RUSTFLAGS="-C target-feature=+crt-static" LIBSECCOMP_LINK_TYPE=static \
        LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu \
        cargo build --profile helper --quiet -p berth-runtime \
        --target $gnu --target-dir "$tdir" >&2
    shim_target=$gnu
    if rustup target list --installed 2>/dev/null | grep -qx $musl \
        || rustup target add $musl >/dev/null 2>&1; then
        shim_target=$musl
    else
        echo "note: rustup cannot add $musl; berth-shim is built on glibc" >&2
    fi
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --profile helper --quiet -p berth-shim \
        --target $shim_target --target-dir "$tdir" >&2
    mkdir -p "$tdir/bin"
    ln -f "$tdir/$gnu/helper/berth-runtime" "$tdir/bin/berth-runtime"
    ln -f "$tdir/$shim_target/helper/berth-shim" "$tdir/bin/berth-shim"
    echo "$tdir/bin"
}
