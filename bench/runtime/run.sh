#!/usr/bin/env bash
# The runtime benchmark: `run` + delete of /bin/true in a busybox bundle, berth-runtime side by
# side with Debian's runc and crun, timed in interleaved rounds (see pairtime.py).
#
#   bench/runtime/run.sh            # as root; ~15 s after the build with the default rounds
#
# Environment:
#   ROUNDS=40 WARMUP=5 RSS_ROUNDS=10   timed rounds, uncounted warm-up rounds, peak-RSS rounds
#   BERTH_RUNTIME=PATH                 use this berth-runtime instead of building one
#   DYNAMIC=1                          build the dynamically linked one (default: static-pie, as shipped)
#   COMPARE=PATH                       also time this other berth-runtime build against it
#                                      (before/after of a change)
#   OUT=FILE                           where the Markdown report goes (default:
#                                      bench/results/runtime-<date>.md, not committed)
#   DOCKER_SECCOMP=FILE                Docker-format seccomp profile for scenario 3
#
# Scenarios:
#   1. all three runtimes, in the private mount namespace crun needs on a hybrid host
#   2. berth-runtime and runc on the host itself (no mount namespace around them)
#   3. a Docker-like config (Docker's capabilities and seccomp profile): berth-runtime with an
#      empty seccomp cache (first run) and with its cache, runc, crun
# Each reports min/median/max wall time, median CPU time and peak RSS, and the medians of the
# per-round ratios. A benchmark, not a test: nothing here passes or fails on timings.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
. bench/runtime/lib.sh

ROUNDS=${ROUNDS:-40}
WARMUP=${WARMUP:-5}
RSS_ROUNDS=${RSS_ROUNDS:-10}
OUT=${OUT:-bench/results/runtime-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"

bench_setup
if [ -n "${COMPARE:-}" ]; then COMPARE=$(realpath "$COMPARE"); fi

# plan NAME TITLE RATIOS_JSON ENTRY...   where ENTRY is "name|root|binary|bundle[|clear]"
plan() {
    local file=$WORK/plans/$1.json title=$2 ratios=$3
    shift 3
    python3 - "$file" "$title" "$ratios" "$ROUNDS" "$WARMUP" "$RSS_ROUNDS" "$TAG" "$WORK" "$@" <<'PY'
import json, sys
file, title, ratios, rounds, warmup, rss, tag, work, *entries = sys.argv[1:]
cmds = []
for i, e in enumerate(entries):
    name, root, binary, bundle, *clear = e.split("|")
    root = f"{work}/root-{root}"
    cmds.append({
        "name": name,
        "argv": [binary, "--root", root, "run", "--bundle", bundle, f"{tag}-{i}"],
        "clear": [f"{root}/{c}" for c in clear],
    })
json.dump({"title": title, "rounds": int(rounds), "warmup": int(warmup), "rss_rounds": int(rss),
           "commands": cmds, "ratios": json.loads(ratios)}, open(file, "w"), indent=1)
PY
    echo "$file"
}

RUNC=$(command -v runc)
CRUN=$(command -v crun)
W=""
[ "$WRAP" = 1 ] && W=" (private mount namespace)"

{
    echo "## Runtime benchmark: run + delete of /bin/true"
    echo
    machine_facts
    echo "- bundle: Debian's static busybox; config from \`berth-runtime spec\`, args [\"/bin/true\"], terminal false, ociVersion 1.0.2; every runtime gets --root in a private directory and deletes the container when it exits (\`run\` without --keep/--detach)"
    echo "- command: \`$0\` with ROUNDS=$ROUNDS WARMUP=$WARMUP RSS_ROUNDS=$RSS_ROUNDS; order rotates each round (A B C, B C A, ...)"
    if [ -n "${COMPARE:-}" ]; then echo "- berth-compare: $COMPARE"; fi
} | tee "$OUT"

entries=("berth|berth|$BERTH|$BUNDLE" "runc|runc|$RUNC|$BUNDLE" "crun|crun|$CRUN|$BUNDLE")
ratios='[["berth","runc"],["berth","crun"],["crun","runc"]]'
if [ -n "${COMPARE:-}" ]; then
    entries+=("berth-compare|berth-compare|$COMPARE|$BUNDLE")
    ratios='[["berth","runc"],["berth","crun"],["crun","runc"],["berth","berth-compare"],["berth-compare","runc"]]'
fi
p=$(plan plain "1. run + delete, all three runtimes$W" "$ratios" "${entries[@]}")
wrapped python3 bench/runtime/pairtime.py "$p" | tee -a "$OUT"

p=$(plan host "2. run + delete on the host itself (no mount namespace around the runtimes)" \
    '[["berth","runc"]]' "berth|berth-host|$BERTH|$BUNDLE" "runc|runc-host|$RUNC|$BUNDLE")
python3 bench/runtime/pairtime.py "$p" | tee -a "$OUT"

if [ -n "$BUNDLE_SC" ]; then
    echo -e "\nDocker-like config: Docker's 14 default capabilities and a seccomp profile derived from \`$SECCOMP_SOURCE\`: $SECCOMP_SUMMARY. berth-runtime caches compiled filters under <root>/.seccomp-cache; \"berth first\" removes that cache (untimed) before every run." | tee -a "$OUT"
    p=$(plan seccomp "3. run + delete with a Docker-like seccomp profile$W" \
        '[["berth cached","runc"],["berth first","runc"],["berth cached","crun"],["berth first","berth cached"],["crun","runc"]]' \
        "berth first|sc-berth-first|$BERTH|$BUNDLE_SC|.seccomp-cache" \
        "berth cached|sc-berth|$BERTH|$BUNDLE_SC" \
        "runc|sc-runc|$RUNC|$BUNDLE_SC" \
        "crun|sc-crun|$CRUN|$BUNDLE_SC")
    wrapped python3 bench/runtime/pairtime.py "$p" | tee -a "$OUT"
else
    echo -e "\n(no Docker-format seccomp profile found: set DOCKER_SECCOMP; scenario 3 skipped)" | tee -a "$OUT"
fi

echo | tee -a "$OUT"
bench_check_clean | tee -a "$OUT"
echo "report: $OUT" >&2
