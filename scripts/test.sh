#!/usr/bin/env bash
# berth's whole test suite (as root, on Debian 12): installs every package the tests need,
# checks formatting and lints, runs the unit and integration tests against the real kernel,
# then the interoperability checks with real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "run me as root: the tests create namespaces, mounts and cgroups" >&2; exit 1; }
need_packages "${BUILD_PACKAGES[@]}" busybox-static python3 iproute2 procps util-linux tar openssl tini skopeo curl
# The peers the tests compare with: a real dockerd (berth-cli's tests), podman (interop).
need_packages_no_start docker.io containerd runc podman conmon

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo nextest"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi
if [ -x tests/interop/run.sh ]; then
    echo "==> interop"
    tests/interop/run.sh
fi
echo "==> all tests passed"
