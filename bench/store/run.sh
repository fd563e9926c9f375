#!/bin/sh
# Reproduces the numbers in crates/berth-store/DB.md: clean build time of each engine, binary size, and the
# runtime workload of src/main.rs. Run from anywhere (it cds to its own directory); uses $TARGET (default
# /tmp/berth-dbbench-target) and $DATA (default /tmp/berth-dbbench-data) and leaves them behind.
set -eu
cd "$(dirname "$0")"
TARGET=${TARGET:-/tmp/berth-dbbench-target}
DATA=${DATA:-/tmp/berth-dbbench-data}
cargo fetch -q
for feat in none sqlite redb; do
    flag=""; [ "$feat" = none ] || flag="--features $feat"
    for profile in dev release; do
        rm -rf "$TARGET/$feat-$profile"
        echo "$feat $profile: load average before build: $(cut -d" " -f1-3 /proc/loadavg)"
        # Wall time depends on what else runs on the machine; CPU time (user+sys) much less.
        /usr/bin/time -f "$feat: clean $profile build %e s wall, %U s user + %S s sys" \
            cargo build -q --timings --profile "$profile" $flag --target-dir "$TARGET/$feat-$profile"
        # The slowest compilation units, from cargo's --timings report.
        python3 - "$TARGET/$feat-$profile/cargo-timings/cargo-timing.html" <<'PY' || true
import json, re, sys
html = open(sys.argv[1]).read()
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);", html, re.S).group(1))
for u in sorted(units, key=lambda u: -u["duration"])[:4]:
    print(f"    {u['name']} {u['version']} {u.get('target','').strip()}: {u['duration']:.1f} s")
PY
    done
    echo "$feat: release binary $(stat -c %s "$TARGET/$feat-release/release/berth-dbbench") bytes"
done
"$TARGET/none-release/release/berth-dbbench" "$DATA/none"
for mode in normal full; do "$TARGET/sqlite-release/release/berth-dbbench" "$DATA/sqlite-$mode" $mode; done
for mode in immediate none; do "$TARGET/redb-release/release/berth-dbbench" "$DATA/redb-$mode" $mode; done
