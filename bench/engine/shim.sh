#!/usr/bin/env bash
# Per-container monitor memory: STARTS containers under a private berthd with the shim as
# installed (static, `build_static_helpers`), optionally beside a second berthd running another
# shim binary (BEFORE=path, e.g. a static berth-shim built from an older commit), containers
# started alternately on both. Every container logs a line a second (so the json-file log
# writer is busy, as in a real service); after SETTLE seconds, VmRSS and PSS of every process
# of each berthd's exec root running the shim binary are summed (the shim and, for older
# shims, its forked log writer) and divided by the containers.
#
#   bench/engine/shim.sh                         # as root; the release build, then a minute
#   BEFORE=/tmp/berth-shim.old bench/engine/shim.sh
#
# Environment: STARTS=50 SETTLE=5 BEFORE=; OUT=FILE (default
# bench/results/shim-<date>.md, not committed). Everything it starts is stopped by pid and
# removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. scripts/lib.sh
. bench/engines.sh

bench_prelude

STARTS=${STARTS:-50} SETTLE=${SETTLE:-5} BEFORE=${BEFORE:-}
OUT=${OUT:-$REPO/bench/results/shim-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"
OUT=$(realpath -m "$OUT")
[ -z "$BEFORE" ] || BEFORE=$(realpath "$BEFORE")

bench_build
bench_tmp shim

declare -A HOSTS ROOTS
variants=(now)
bench_berthd now berth-now
HOSTS[now]=$BERTH_HOST ROOTS[now]=$BT/run
if [ -n "$BEFORE" ]; then
    variants+=(before)
    bench_berthd before berth-before
    # berthd runs the shim next to its own binary; no container has started one yet.
    cp "$BEFORE" "$BT/bin/berth-shim"
    HOSTS[before]=$BERTH_HOST ROOTS[before]=$BT/run
fi
BERTH=$BT/bin/berth

{
    echo "# shim memory benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) cores; load at start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- now: berth-shim of $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- crates Cargo.toml || echo '+changes') ($(stat -c %s "$HELPERS/berth-shim") bytes)"
    [ -z "$BEFORE" ] || echo "- before: $BEFORE ($(stat -c %s "$BEFORE") bytes)"
    echo "- $STARTS containers per variant: \`run -d --network none busybox sh -c 'while :; do echo line \$i; i=\$((i+1)); sleep 1; done'\`, measured $SETTLE s after the last start"
    echo "- reproduce: \`${BEFORE:+BEFORE=$BEFORE }STARTS=$STARTS bench/engine/shim.sh\`"
    echo
} >"$OUT"

say "$STARTS containers per variant (${variants[*]})"
for _ in $(seq "$STARTS"); do
    for v in "${variants[@]}"; do
        BERTH_HOST=${HOSTS[$v]} "$BERTH" run -d --network none busybox:bench \
            sh -c 'i=0; while :; do echo line $i; i=$((i+1)); sleep 1; done' >/dev/null
    done
done
sleep "$SETTLE"

{
    echo "| shim | containers | processes | threads | RSS MiB per container | max RSS MiB of one process | PSS MiB per container |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for v in "${variants[@]}"; do
        python3 - "$v" "${ROOTS[$v]}" "$(BERTH_HOST=${HOSTS[$v]} "$BERTH" ps -q | wc -l)" <<'EOF'
import os, sys
name, root, containers = sys.argv[1], sys.argv[2], int(sys.argv[3])
procs = threads = rss = pss = top = 0
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        if os.path.basename(cmd[0]) != b"berth-shim" or root.encode() not in b" ".join(cmd):
            continue
        st = {l.split(":")[0]: l.split()[1] for l in open(f"/proc/{p}/status") if ":" in l and len(l.split()) > 1}
        r = int(st["VmRSS"])
        s = next(int(l.split()[1]) for l in open(f"/proc/{p}/smaps_rollup") if l.startswith("Pss:"))
    except (OSError, KeyError, StopIteration):
        continue
    procs += 1
    threads += int(st["Threads"])
    rss += r
    pss += s
    top = max(top, r)
n = max(containers, 1)
print(f"| {name} | {containers} | {procs} | {threads} | {rss / 1024 / n:.2f} | {top / 1024:.2f} | {pss / 1024 / n:.2f} |")
EOF
    done
} | tee -a "$OUT"
echo "report: $OUT"
