#!/usr/bin/env bash
# The network benchmark: berthd side by side with a private dockerd (Debian's docker.io, on a
# bridge of its own, ports published through its userland proxy as dockerd does for
# 127.0.0.1; no iptables changes), in one run:
#   1. `run --rm busybox true` on each engine's bridge and with `--network none`, interleaved:
#      what the bridge adds to a run;
#   2. throughput of a published port: iperf3 (Debian's, in one image imported alike into
#      both engines) serving in a container, published on 127.0.0.1 and on the engine's own
#      bridge gateway address, the host's iperf3 client connecting to each, both directions,
#      IP_ROUNDS interleaved rounds, beside the same client talking to an iperf3 server on the
#      host's own 127.0.0.1 (no container, no NAT): the kernel's ceiling for one TCP stream;
#   3. a large HTTP download: busybox httpd serving SIZE_MB from a tmpfs, fetched from
#      127.0.0.1 by a Python client, DL_ROUNDS alternating downloads.
#
#   bench/network/run.sh            # as root; a few minutes after the release build
#
# Environment: ROUNDS=15 (part 1), IP_ROUNDS=7 IP_SECS=3 (part 2), DL_ROUNDS=7 and
# SIZE_MB=256 (part 3); OUT=FILE (default bench/results/network-<date>.md, not committed).
# Traffic goes only to 127.0.0.1 and to the bridges this script creates; everything it starts
# is stopped by pid, and the bridges, nft table and cgroups it made are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. scripts/lib.sh
. bench/engines.sh

bench_prelude iperf3

ROUNDS=${ROUNDS:-15}
IP_ROUNDS=${IP_ROUNDS:-7}
IP_SECS=${IP_SECS:-3}
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
    echo "- reproduce: \`bench/network/run.sh\` (ROUNDS=$ROUNDS IP_ROUNDS=$IP_ROUNDS IP_SECS=$IP_SECS DL_ROUNDS=$DL_ROUNDS SIZE_MB=$SIZE_MB)"
    echo "- $(iperf3 --version | head -1 | cut -d' ' -f1-2) (Debian's, server in the container, client on the host)"
    echo "- load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT"

# iperf3 servers: one image for both engines, the busybox rootfs plus Debian's iperf3 and the
# shared libraries it loads; published on 127.0.0.1 and on the engine's bridge gateway.
IPERF_TAR=$IT_TMP/iperf3.tar
rm -rf "$IT_TMP/iperf-rootfs"
mkdir -p "$IT_TMP/iperf-rootfs"
tar -C "$IT_TMP/iperf-rootfs" -xf "$IMAGE_TAR"
for f in /usr/bin/iperf3 $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
    mkdir -p "$IT_TMP/iperf-rootfs$(dirname "$f")"
    cp -L "$f" "$IT_TMP/iperf-rootfs$f"
done
tar -C "$IT_TMP/iperf-rootfs" -cf "$IPERF_TAR" .
"$BT/bin/berth" import "$IPERF_TAR" iperf3:bench >/dev/null
DOCKER_HOST=$DK_HOST "$DOCKER_CLI" import "$IPERF_TAR" iperf3:bench >/dev/null
BGW=$(DOCKER_HOST=$BERTH_HOST "$DOCKER_CLI" network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}')
DGW=$sub.1
"$BT/bin/berth" run -d --name ip3 -p 127.0.0.1::5201 -p "$BGW::5201" iperf3:bench \
    iperf3 -s -p 5201 >/dev/null
DOCKER_HOST=$DK_HOST "$DOCKER_CLI" run -d --name ip3 -p 127.0.0.1::5201 -p "$DGW::5201" \
    iperf3:bench iperf3 -s -p 5201 >/dev/null
hostport() { # hostport HOST IP: the host port publishing 5201 on IP
    DOCKER_HOST=$1 "$DOCKER_CLI" port ip3 5201/tcp | grep "^$2:" | head -1 | sed 's/.*://'
}
# The ceiling: an iperf3 server on the host itself, on a free loopback port.
HOST_IP3_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
iperf3 -s -B 127.0.0.1 -p "$HOST_IP3_PORT" >/dev/null 2>&1 &
HOST_IP3_PID=$!
on_cleanup "kill $HOST_IP3_PID 2>/dev/null; wait $HOST_IP3_PID 2>/dev/null; true"
BIP_LO=$(hostport "$BERTH_HOST" 127.0.0.1) BIP_GW=$(hostport "$BERTH_HOST" "$BGW")
DIP_LO=$(hostport "$DK_HOST" 127.0.0.1) DIP_GW=$(hostport "$DK_HOST" "$DGW")

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
    DL_ROUNDS=$DL_ROUNDS OUT=$OUT IP_ROUNDS=$IP_ROUNDS IP_SECS=$IP_SECS BGW=$BGW DGW=$DGW \
    BIP_LO=$BIP_LO BIP_GW=$BIP_GW HOST_IP3_PORT=$HOST_IP3_PORT DIP_LO=$DIP_LO DIP_GW=$DIP_GW python3 - <<'PY'
import json, os, socket, statistics, subprocess, time
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

def iperf(host, port, reverse):
    argv = ["iperf3", "-c", host, "-p", str(port), "-t", E["IP_SECS"], "-O", "1", "-J"]
    if reverse:
        argv.append("-R")
    for _ in range(50):  # the server may be starting or finishing the last test: retry
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            return json.loads(p.stdout)["end"]["sum_received"]["bits_per_second"] / 8e6
        except (ValueError, KeyError):
            time.sleep(0.3)
    raise SystemExit(f"failed: {' '.join(argv)}\n{p.stdout[-500:]}{p.stderr}")

IR = int(E["IP_ROUNDS"])
HOST = ("127.0.0.1", E["HOST_IP3_PORT"])
paths = [  # (row, berth (host, port), docker (host, port), reverse)
    ("container → 127.0.0.1", ("127.0.0.1", E["BIP_LO"]), ("127.0.0.1", E["DIP_LO"]), True),
    ("127.0.0.1 → container", ("127.0.0.1", E["BIP_LO"]), ("127.0.0.1", E["DIP_LO"]), False),
    ("container → bridge gateway", (E["BGW"], E["BIP_GW"]), (E["DGW"], E["DIP_GW"]), True),
    ("bridge gateway → container", (E["BGW"], E["BIP_GW"]), (E["DGW"], E["DIP_GW"]), False),
]
ENGINES = ("berth", "docker", "host")
ip3 = {(row, e): [] for row, *_ in paths for e in ENGINES}
for r in range(1 + IR):
    for row, b, d, rev in paths:
        # Rotate which of the three goes first, so none always follows another.
        order = [("berth", b), ("docker", d), ("host", HOST)]
        order = order[r % 3:] + order[:r % 3]
        for e, (host, port) in order:
            v = iperf(host, int(port), rev)
            if r >= 1:
                ip3[(row, e)].append(v)
out("### Published port throughput: iperf3 (one TCP stream), host client ↔ container server")
out()
out(f"{IR} interleaved rounds of {E['IP_SECS']} s each (after 1 s omitted) after a warm-up "
    "round; MB/s (10⁶ bytes per second) received. berth publishes by DNAT in the kernel "
    "(127.0.0.1 through the `route_localnet` hairpin); dockerd here by `docker-proxy`. "
    "\"host\" is the same client and server with no container at all (both on the host's "
    "127.0.0.1, in the same direction): what one TCP stream can do on this machine.")
out()
out("| path | berth median | docker median | host median | berth / docker, median of per-round ratios (min–max) | berth / host | docker / host |")
out("|---|---|---|---|---|---|---|")
def per_round(a, b):
    return [x / y for x, y in zip(a, b)]
for row, *_ in paths:
    bv, dv, hv = (ip3[(row, e)] for e in ENGINES)
    ratios = per_round(bv, dv)
    out(f"| {row} | {statistics.median(bv):.0f} | {statistics.median(dv):.0f} | "
        f"{statistics.median(hv):.0f} | "
        f"**{statistics.median(ratios):.2f}×** ({min(ratios):.2f}–{max(ratios):.2f}) | "
        f"{statistics.median(per_round(bv, hv)):.2f} | {statistics.median(per_round(dv, hv)):.2f} |")
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
        if v is None:
            raise SystemExit(f"{e}: no complete download from port {port}")
        if r >= 1:
            rates[e].append(v)
out(f"### HTTP download: {n // 1048576} MiB from busybox httpd in a container to 127.0.0.1")
out()
out(f"{DL} alternating downloads after a warm-up one; MB/s.")
out()
out("| engine | median MB/s | min | max |")
out("|---|---|---|---|")
for e in ("berth", "docker"):
    v = rates[e]
    out(f"| {e} | {statistics.median(v):.0f} | {min(v):.0f} | {max(v):.0f} |")
out()
ratios = [x / y for x, y in zip(rates["berth"], rates["docker"])]
out(f"- berth / docker: median of per-round ratios **{statistics.median(ratios):.2f}×** "
    f"({min(ratios):.2f}–{max(ratios):.2f})")
with open(E["OUT"], "a") as f:
    f.write("\n" + "\n".join(report) + "\n")
PY
DOCKER_HOST=$DK_HOST "$DOCKER_CLI" rm -f srv ip3 >/dev/null 2>&1 || true
echo "report: $OUT"
