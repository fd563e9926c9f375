#!/usr/bin/env bash
# Save, load and export throughput of a ~200 MB image: berthd against a private dockerd
# (Debian's docker.io 20.10), both driven by the same docker CLI. Reproduces the numbers in BENCHMARKS.md.
#
#   cargo build --release -p berthd -p berth-cli -p berth-shim -p berth-runtime
#   bench/saveload/run.sh                  # as root; RUNS=5 SIZE_MB=200 by default
#
# The image is busybox plus one layer of SIZE_MB of random data (a committed container), made
# in each daemon. Per run and daemon: `docker save IMAGE > /dev/null` (the daemon's streaming
# only), then `docker save -o FILE`, `docker rmi`, and `docker load -i FILE` (each daemon loads
# its own archive), and berthd also loads docker's archive (the same bytes docker loads, with
# uncompressed layers). Export: `docker export` of the container the image was committed from
# (busybox plus the big file) to /dev/null. Throughput = archive bytes / wall time; medians of
# RUNS interleaved runs.
# Everything it starts is stopped by pid; the dockerd is the tests' watchdog-run one
# (crates/berth-cli/tests/dockerd-watchdog.sh) under its own base directory, so it stops and
# cleans up by itself once this script's lease is gone.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${RUNS:-5}
SIZE_MB=${SIZE_MB:-200}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BIN=${BIN:-$TARGET/release}
DOCKER=${DOCKER:-/usr/local/bin/docker}
[ "$(id -u)" = 0 ] || { echo "run me as root" >&2; exit 1; }
for b in berthd berth berth-shim berth-runtime; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: cargo build --release -p berthd -p berth-cli -p berth-shim -p berth-runtime" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/bsl.XXXXXX)
DBASE=/tmp/berth-bench-saveload-dockerd
BERTHD_PID=
cleanup() {
    set +e
    if [ -n "$BERTHD_PID" ]; then
        DOCKER_HOST=unix://$TMP/berth.sock "$DOCKER" rm -f bigmaker >/dev/null 2>&1
        kill -TERM "$BERTHD_PID" 2>/dev/null; wait "$BERTHD_PID" 2>/dev/null
    fi
    grep " $TMP/" /proc/self/mounts | cut -d' ' -f2 | sort -r | while read -r m; do umount -l "$m"; done
    rmdir /sys/fs/cgroup/*/berth-bench-saveload 2>/dev/null
    # berthd leaves its bridge and nft table for containers that outlive it: ours go.
    ip link del bbsaveload 2>/dev/null
    nft delete table ip berth-bench-saveload 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# The private dockerd: hold its lease for this script's life (fd 9), start the watchdog if needed.
mkdir -p "$DBASE"
exec 9>>"$DBASE/lease"
flock -s 9
if ! DOCKER_HOST=unix://$DBASE/run/docker.sock "$DOCKER" version >/dev/null 2>&1; then
    # 9>&-: the watchdog must not inherit our lease, or it would never see it released.
    setsid --fork "$REPO/crates/berth-cli/tests/dockerd-watchdog.sh" "$DBASE" </dev/null >/dev/null 2>&1 9>&-
fi
for _ in $(seq 600); do
    DOCKER_HOST=unix://$DBASE/run/docker.sock "$DOCKER" version >/dev/null 2>&1 && break
    sleep 0.2
done

"$BIN/berthd" --data-root "$TMP/data" --exec-root "$TMP/x" -H "unix://$TMP/berth.sock" \
    --pidfile "$TMP/berthd.pid" --bridge bbsaveload --nft-table berth-bench-saveload \
    --cgroup-parent /berth-bench-saveload >"$TMP/berthd.log" 2>&1 9>&- &
BERTHD_PID=$!
for _ in $(seq 600); do
    DOCKER_HOST=unix://$TMP/berth.sock "$DOCKER" version >/dev/null 2>&1 && break
    sleep 0.1
done

# busybox root filesystem, imported into both.
mkdir -p "$TMP/rootfs/bin" "$TMP/rootfs/tmp" "$TMP/rootfs/etc"
cp /bin/busybox "$TMP/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$TMP/rootfs/bin/$a"; done
tar -C "$TMP/rootfs" -cf "$TMP/busybox.tar" .

declare -A HOST=([berth]="unix://$TMP/berth.sock" [docker]="unix://$DBASE/run/docker.sock")
d() { local who=$1; shift; DOCKER_HOST=${HOST[$who]} DOCKER_CONFIG=$TMP/cfg "$DOCKER" "$@"; }
for who in berth docker; do
    d "$who" rm -f bigmaker >/dev/null 2>&1 || true
    d "$who" rmi -f bench-big:1 >/dev/null 2>&1 || true
    d "$who" import "$TMP/busybox.tar" bench-busybox:1 >/dev/null
    d "$who" run --name bigmaker --network none bench-busybox:1 \
        sh -c "head -c $((SIZE_MB * 1000000)) /dev/urandom > /big" >/dev/null
    d "$who" commit bigmaker bench-big:1 >/dev/null
done
declare -A EXPORT_SIZE
for who in berth docker; do EXPORT_SIZE[$who]=$(d "$who" export bigmaker | wc -c); done

now() { date +%s.%N; }
: >"$TMP/times"
for run in $(seq "$RUNS"); do
    for who in berth docker; do
        t0=$(now); d "$who" save bench-big:1 >/dev/null; t1=$(now)
        d "$who" save -o "$TMP/$who.tar" bench-big:1
        size=$(stat -c %s "$TMP/$who.tar")
        d "$who" rmi bench-big:1 >/dev/null
        sync
        t2=$(now); d "$who" load -q -i "$TMP/$who.tar" >/dev/null; t3=$(now)
        echo "$who $run $size $t0 $t1 $t2 $t3" >>"$TMP/times"
        echo "run $run $who: save $(echo "$t1 - $t0" | bc) s, load $(echo "$t3 - $t2" | bc) s ($size bytes)" >&2
        t4=$(now); d "$who" export bigmaker >/dev/null; t5=$(now)
        echo "$who-export $run ${EXPORT_SIZE[$who]} $t4 $t5 0 1" >>"$TMP/times"
        echo "run $run $who: export $(echo "$t5 - $t4" | bc) s (${EXPORT_SIZE[$who]} bytes)" >&2
    done
    # The same bytes into both: docker's archive (uncompressed layers) into berthd, then
    # berth's own image back for the next run.
    size=$(stat -c %s "$TMP/docker.tar")
    d berth rmi bench-big:1 >/dev/null
    sync
    t2=$(now); d berth load -q -i "$TMP/docker.tar" >/dev/null; t3=$(now)
    echo "berth-from-docker-archive $run $size 0 1 $t2 $t3" >>"$TMP/times"
    echo "run $run berth, docker's archive: load $(echo "$t3 - $t2" | bc) s ($size bytes)" >&2
    d berth rmi bench-big:1 >/dev/null
    d berth load -q -i "$TMP/berth.tar" >/dev/null
done
for who in berth docker; do
    d "$who" rm -f bigmaker >/dev/null 2>&1 || true
    d "$who" rmi -f bench-big:1 bench-busybox:1 >/dev/null 2>&1 || true
done

python3 - "$TMP/times" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
res = {}
for who, run, size, t0, t1, t2, t3 in rows:
    size = int(size)
    r = res.setdefault(who, {"save": [], "load": [], "size": size})
    r["save"].append(size / 1e6 / (float(t1) - float(t0)))
    r["load"].append(size / 1e6 / (float(t3) - float(t2)))
med = statistics.median
print(f"| daemon | archive MB | save MB/s (median) | load MB/s (median) | export MB | export MB/s (median) |")
print(f"|---|---:|---:|---:|---:|---:|")
for who in ("berth", "docker"):
    r, e = res[who], res[who + "-export"]
    print(f"| {who} | {r['size']/1e6:.0f} | {med(r['save']):.0f} | {med(r['load']):.0f} | {e['size']/1e6:.0f} | {med(e['save']):.0f} |")
x = res["berth-from-docker-archive"]
print(f"| berth, loading docker's archive | {x['size']/1e6:.0f} | | {med(x['load']):.0f} | | |")
b, d = res["berth"], res["docker"]
be, de = res["berth-export"], res["docker-export"]
def ratios(p, q):
    # Per-round ratios (the runs are interleaved): median, min, max.
    rs = sorted(a / b for a, b in zip(p, q))
    return f"{med(rs):.1f}x ({rs[0]:.1f}-{rs[-1]:.1f})"
print()
print(f"| ratio berth / docker: median of per-round ratios (range) | value |")
print(f"|---|---:|")
print(f"| save | {ratios(b['save'], d['save'])} |")
print(f"| load of each daemon's own archive | {ratios(b['load'], d['load'])} |")
print(f"| load of docker's archive | {ratios(x['load'], d['load'])} |")
print(f"| export | {ratios(be['save'], de['save'])} |")
PY
