# shellcheck shell=bash
# Shared set-up for the benchmarks that run berthd beside the peers (bench/engine,
# bench/network). Source it from the repository's root after scripts/lib.sh.
#
#   bench_prelude [PKG...]       root check, packages (docker.io and friends, plus PKGs)
#   bench_build                  release berthd and berth, static helpers: sets TARGET, HELPERS
#   bench_tmp NAME               a private work dir IT_TMP with the interop checks' helpers
#                                (tests/interop/lib.sh, docker.sh) loaded, clean-up on exit,
#                                and a busybox image tar at IMAGE_TAR
#   bench_berthd NAME [DIR]      a private release berthd (own roots, socket, bridge, nft table,
#                                cgroup parent) under $IT_TMP/DIR (default berth) with
#                                busybox:bench imported: sets BT, BERTHD_PID, BERTH_HOST

# Root check and the packages every engine benchmark needs, plus "$@" (peers' packages,
# installed without starting their services).
bench_prelude() {
    [ "$(id -u)" = 0 ] || { echo "run me as root" >&2; exit 1; }
    need_packages "${BUILD_PACKAGES[@]}" busybox-static python3 iproute2 procps util-linux nftables
    need_packages_no_start docker.io containerd runc "$@"
}

bench_build() {
    echo "==> release build (berthd, berth; berth-runtime and berth-shim as installed)" >&2
    cargo build --release --quiet -p berthd -p berth-cli
    HELPERS=$(build_static_helpers)
    TARGET=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
}

bench_tmp() {
    IT_TMP=$(mktemp -d "/tmp/berth-bench-$1.XXXXXX")
    chmod 755 "$IT_TMP"
    export IT_TMP
    IT_DIR=$REPO/tests/interop
    . "$IT_DIR/lib.sh"
    # The peers run their usual runtime (runc), not berth-runtime.
    BERTH_RUNTIME=$(command -v runc)
    IMAGE_TAR=$IT_TMP/busybox.tar
    . "$IT_DIR/docker.sh"
    cd "$IT_TMP"
    trap bench_finish EXIT
    trap 'exit 130' INT TERM
    on_cleanup "stop_stragglers '$IT_TMP'; unmount_below '$IT_TMP'"
    on_cleanup "remove_cgroup_tree '$DK_CGROUP'"
    make_busybox_tar "$IMAGE_TAR"
}

bench_finish() {
    local rc=$?
    set +e
    say "cleaning up"
    cleanup_all
    rm -rf "$IT_TMP"
    exit "$rc"
}

bench_berthd() {
    local tag=$$ b
    BT=$IT_TMP/${2:-berth}
    mkdir -p "$BT/bin"
    for b in "$TARGET/release/berthd" "$TARGET/release/berth" "$HELPERS/berth-runtime" "$HELPERS/berth-shim"; do
        cp "$b" "$BT/bin/"
    done
    local bridge="b$1$((tag % 100000))" nft="berth-bench-$1-$tag" cg="berth-bench-$1-$tag"
    "$BT/bin/berthd" --data-root "$BT/data" --exec-root "$BT/run" -H "unix://$BT/berth.sock" \
        --pidfile "$BT/berthd.pid" --bridge "$bridge" --nft-table "$nft" \
        --cgroup-parent "/$cg" >"$BT/berthd.log" 2>&1 &
    BERTHD_PID=$!
    on_cleanup "remove_cgroup_tree '$cg'; ip link del '$bridge' 2>/dev/null; nft delete table ip '$nft' 2>/dev/null; true"
    on_cleanup "stop_daemon $BERTHD_PID berthd 30"
    export BERTH_HOST=unix://$BT/berth.sock
    on_cleanup "export BERTH_HOST='$BERTH_HOST'; '$BT/bin/berth' rm -f \$('$BT/bin/berth' ps -aq) >/dev/null 2>&1; true"
    wait_until 30 "$BT/bin/berth" version >/dev/null || { tail "$BT/berthd.log"; return 1; }
    "$BT/bin/berth" import "$IMAGE_TAR" busybox:bench >/dev/null
}
