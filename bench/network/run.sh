#!/usr/bin/env bash
# The network benchmark: berthd side by side with a private dockerd (Debian's docker.io, on a
# bridge of its own, ports published through its userland proxy as dockerd does for
# 127.0.0.1; no iptables changes), in one run:
#   1. `run --rm busybox true` on each engine's bridge and with `--network none`, interleaved:
#      what the bridge adds to a run;
#   2. throughput of a published port from 127.0.0.1 to a container serving SIZE_MB from a
#      tmpfs (busybox httpd), medians over DL_ROUNDS alternating downloads.
#
#   bench/network/run.sh            # as root; a few minutes after the release build
#
# Environment: ROUNDS=15 (part 1), DL_ROUNDS=7 and SIZE_MB=256 (part 2); OUT=FILE (default
# bench/results/network-<date>.md, not committed). Traffic goes only to 127.0.0.1 and to the
# bridges this script creates; everything it starts is stopped by pid, and the bridges, nft
# table and cgroups it made are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. scripts/lib.sh
. bench/engines.sh

bench_prelude

ROUNDS=${ROUNDS:-15}
DL_ROUNDS=${DL_ROUNDS:-7}
SIZE_MB=${SIZE_MB:-256}
OUT=${OUT:-$REPO/bench/results/network-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"
OUT=$(realpath -m "$OUT")

bench_build
bench_tmp net

# A free /24 for dockerd's bridge (one no route uses).
free_subnet() {
    local i routes
    routes=$(ip -4 route show table all)
    for i in $(seq 200 250); do
        grep -q "^10\.213\.$i\." <<<"$routes" || { echo "10.213.$i"; return; }
    done
    return 1
}
DKBR=dkbench$(($$ % 100000))
sub=$(free_subnet)
ip link add "$DKBR" type bridge
on_cleanup "ip link del '$DKBR' 2>/dev/null; true"
ip addr add "$sub.1/24" dev "$DKBR"
ip link set "$DKBR" up

bench_berthd net

say "docker: private dockerd + containerd under $DK, bridge $DKBR ($sub.0/24)"
DK_NET=(--bridge="$DKBR" --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false
    --userland-proxy=true --userland-proxy-path=/usr/sbin/docker-proxy)
docker_up
unset DOCKER_HOST
DK_HOST=unix://$DK/docker.sock

{
    echo "# network benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) cores"
    echo "- berth $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- crates || echo '+changes') (release; static berth-runtime and berth-shim)"
    echo "- dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) (bridge of its own, iptables off, docker-proxy for published ports)"
    echo "- reproduce: \`bench/network/run.sh\` (ROUNDS=$ROUNDS DL_ROUNDS=$DL_ROUNDS SIZE_MB=$SIZE_MB)"
    echo "- load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT"

# Servers: a tmpfs file served by busybox httpd (sendfile) on port 80, published on 127.0.0.1.
BYTES=$((SIZE_MB * 1048576))
SERVE="head -c $BYTES /dev/zero > /data/f && exec httpd -f -p 80 -h /data"
"$BT/bin/berth" run -d --name srv --tmpfs /data:size=$((SIZE_MB + 16))m -p 127.0.0.1::80 \
    busybox:bench sh -c "$SERVE" >/dev/null
DOCKER_HOST=$DK_HOST "$DOCKER_CLI" run -d --name srv --tmpfs /data:size=$((SIZE_MB + 16))m \
    -p 127.0.0.1::80 "$DK_IMAGE" sh -c "$SERVE" >/dev/null
BPORT=$(DOCKER_HOST=$BERTH_HOST "$DOCKER_CLI" port srv 80/tcp | head -1 | sed 's/.*://')
DPORT=$(DOCKER_HOST=$DK_HOST "$DOCKER_CLI" port srv 80/tcp | head -1 | sed 's/.*://')

BERTH=$BT/bin/berth BERTH_IMAGE=busybox:bench DOCKER_CLI=$DOCKER_CLI DK_HOST=$DK_HOST \
    DK_IMAGE=$DK_IMAGE BPORT=$BPORT DPORT=$DPORT BYTES=$BYTES ROUNDS=$ROUNDS \
    DL_ROUNDS=$DL_ROUNDS OUT=$OUT python3 - <<'PY'
import os, socket, statistics, subprocess, time
E = os.environ
ROUNDS, DL = int(E["ROUNDS"]), int(E["DL_ROUNDS"])
report = []
def out(s=""):
    print(s, flush=True); report.append(s)

def run(argv, env):
    full = dict(os.environ); full.update(env)
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{p.stderr}")
    return (time.perf_counter() - t0) * 1000

B = ({"BERTH_HOST": E["BERTH_HOST"]}, E["BERTH"], E["BERTH_IMAGE"])
D = ({"DOCKER_HOST": E["DK_HOST"]}, E["DOCKER_CLI"], E["DK_IMAGE"])
cmds = {
    "berth none": (B, ["--network", "none"]),
    "berth bridge": (B, []),
    "docker none": (D, ["--network", "none"]),
    "docker bridge": (D, []),
}
times = {k: [] for k in cmds}
for r in range(3 + ROUNDS):
    for k, ((env, cli, img), net) in cmds.items():
        dt = run([cli, "run", "--rm", *net, img, "true"], env)
        if r >= 3:
            times[k].append(dt)
out("### What the bridge adds to `run --rm busybox true`")
out()
out(f"{ROUNDS} interleaved rounds after 3 warm-up rounds; medians in ms.")
out()
out("| engine | `--network none` | default bridge | bridge − none (median of per-round differences) |")
out("|---|---|---|---|")
for e in ("berth", "docker"):
    n, b = times[f"{e} none"], times[f"{e} bridge"]
    d = statistics.median([x - y for x, y in zip(b, n)])
    out(f"| {e} | {statistics.median(n):.1f} | {statistics.median(b):.1f} | **{d:.1f}** |")
out()

def download(port, n):
    deadline = time.time() + 60
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    buf = bytearray(1 << 20)
    got = 0
    t0 = time.perf_counter()
    s.sendall(b"GET /f HTTP/1.0\r\n\r\n")
    while got < n:
        k = s.recv_into(buf)
        if k == 0:
            break
        got += k
    dt = time.perf_counter() - t0
    s.close()
    if got < n:
        return None
    return got / dt / 1e6

n = int(E["BYTES"])
rates = {"berth": [], "docker": []}
for r in range(1 + DL):
    for e, port in (("berth", int(E["BPORT"])), ("docker", int(E["DPORT"]))):
        for _ in range(20):  # the server may still be starting: retry a refused or short one
            v = download(port, n)
            if v is not None:
                break
            time.sleep(0.2)
        if r >= 1 and v is not None:
            rates[e].append(v)
out(f"### Published port throughput: {n // 1048576} MiB from a container to 127.0.0.1")
out()
out(f"{DL} alternating downloads after a warm-up one; MB/s.")
out()
out("| engine | median MB/s | min | max |")
out("|---|---|---|---|")
for e in ("berth", "docker"):
    v = rates[e]
    out(f"| {e} | {statistics.median(v):.0f} | {min(v):.0f} | {max(v):.0f} |")
out()
out(f"- berth / docker = **{statistics.median(rates['berth']) / statistics.median(rates['docker']):.2f}×**")
with open(E["OUT"], "a") as f:
    f.write("\n" + "\n".join(report) + "\n")
PY
DOCKER_HOST=$DK_HOST "$DOCKER_CLI" rm -f srv >/dev/null 2>&1 || true
echo "report: $OUT"
