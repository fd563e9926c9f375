#!/usr/bin/env bash
# Where `run` + delete of /bin/true spends its time, for berth-runtime next to crun and runc, on
# the same bundle as run.sh:
#   1. system calls per process (strace -f), the top ones for berth-runtime (strace -c -f)
#   2. phases of a run from kernel tracepoints (perf): start, re-exec, clone, pivot_root,
#      exec of the program, its exit, the runtime's exit
#   3. berth-runtime's on-CPU time by system call / page faults / user code (perf, cpu-clock)
#   4. off-CPU time by the kernel function it blocked in (perf, sched_switch, system-wide)
#   5. the cost of the self re-exec (src/selfexec.rs): berth-runtime timed against itself
#      installed on a read-only mount, where it needs no re-exec, and against runc and crun
#      (pairtime, interleaved); with STATIC=1 also a static-pie build of itself (glibc and
#      libseccomp linked in, built into <target>/static: a few minutes)
#   6. libseccomp alone compiling the Docker-like profile of run.sh's scenario 3, with and
#      without the binary-tree optimisation berth-runtime enables
#
#   bench/runtime/profile.sh        # as root; RUNS=20 runs per perf measurement
#
# Environment: RUNS, ROUNDS (step 5), STATIC, BERTH_RUNTIME as in run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
. bench/runtime/lib.sh

RUNS=${RUNS:-20}
ROUNDS=${ROUNDS:-40}
bench_setup strace linux-perf
RUNC=$(command -v runc)
CRUN=$(command -v crun)
PERF=$(command -v perf || true)

# loop SCRIPT RT ROOT ID [CLEAR]: a shell script running `RT run` RUNS times.
loop() {
    local f=$WORK/$1.sh
    echo "for i in \$(seq $RUNS); do ${5:+rm -rf $5; }$2 --root $WORK/root-$3 run --bundle $BUNDLE $TAG-$4 || exit 1; done" >"$f"
    echo "$f"
}

echo "== 1. system calls (strace -f, one run each)"
for rt in "$BERTH" "$CRUN" "$RUNC"; do
    n=$(basename "$rt")
    wrapped strace -f -o "$WORK/strace.$n" "$rt" --root "$WORK/root-$n" run --bundle "$BUNDLE" "$TAG-s"
    echo "$n: $(wc -l <"$WORK/strace.$n") system calls in $(awk '{print $1}' "$WORK/strace.$n" | sort -u | wc -l) processes"
done
wrapped strace -c -f -o "$WORK/strace-c" "$BERTH" --root "$WORK/root-berth" run --bundle "$BUNDLE" "$TAG-s"
echo "berth-runtime, strace -c -f:"
head -22 "$WORK/strace-c"

if [ -z "$PERF" ]; then
    echo "(perf not available: steps 2-4 skipped)"
else
    EV=sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit,syscalls:sys_enter_clone,syscalls:sys_enter_clone3,syscalls:sys_enter_pivot_root
    echo; echo "== 2. phases ($RUNS runs each)"
    for rt in "$BERTH" "$CRUN" "$RUNC"; do
        n=$(basename "$rt")
        wrapped "$PERF" record -q -o "$WORK/perf.ph" -e "$EV" -- sh "$(loop ph-$n "$rt" ph-$n p)" 2>/dev/null
        "$PERF" script -i "$WORK/perf.ph" 2>/dev/null | python3 bench/runtime/phases.py "$n" /bin/true
    done

    echo; echo "== 3. on-CPU time by activity ($RUNS runs each, cpu-clock at 10 kHz)"
    for rt in "$BERTH" "$CRUN"; do
        n=$(basename "$rt")
        echo "$n:"
        wrapped "$PERF" record -q -F 10000 -e cpu-clock -g -o "$WORK/perf.cpu" -- sh "$(loop cpu-$n "$rt" cpu-$n c)" 2>/dev/null
        # After berth-runtime re-executes itself its comm is the fd number it ran from.
        "$PERF" script -i "$WORK/perf.cpu" 2>/dev/null | python3 bench/runtime/cpu.py 10000 "$RUNS" "$n" true 3 4 5 6
    done

    echo; echo "== 4. off-CPU time ($RUNS runs each, sched_switch system-wide)"
    for rt in "$BERTH" "$CRUN" "$RUNC"; do
        n=$(basename "$rt")
        echo "$n (totals over $RUNS runs):"
        wrapped "$PERF" record -q -a -e sched:sched_switch -g -o "$WORK/perf.off" -- sh "$(loop off-$n "$rt" off-$n o)" 2>/dev/null
        "$PERF" script -i "$WORK/perf.off" 2>/dev/null | python3 bench/runtime/offcpu.py "$n" true 3 4 5 6
    done
fi

echo; echo "== 5. the self re-exec"
# A read-only bind mount of the binary's directory: is_sealed() is true there, so no re-exec.
mkdir -p "$WORK/ro"
extra="" ratios='[["berth", "runc"], ["berth", "crun"], ["berth on a read-only mount (no re-exec)", "berth"]'
if [ "${STATIC:-0}" = 1 ]; then
    tdir=$(realpath -m "${CARGO_TARGET_DIR:-target}")/static
    echo "==> cargo build --release (static-pie: +crt-static, static libseccomp) into $tdir" >&2
    RUSTFLAGS="-C target-feature=+crt-static" LIBSECCOMP_LINK_TYPE=static \
        LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu cargo build --release --quiet -p berth-runtime \
        --target x86_64-unknown-linux-gnu --target-dir "$tdir"
    static=$tdir/x86_64-unknown-linux-gnu/release/berth-runtime
    extra=", {\"name\": \"berth static-pie\", \"argv\": [\"$static\", \"--root\", \"$WORK/root-rx3\", \"run\", \"--bundle\", \"$BUNDLE\", \"$TAG-rx3\"]}"
    ratios+=', ["berth static-pie", "berth"], ["berth static-pie", "runc"], ["berth static-pie", "crun"]'
fi
cat >"$WORK/plans/reexec.json" <<EOF
{"title": "berth-runtime with and without its self re-exec, next to runc and crun", "rounds": $ROUNDS, "warmup": 5, "rss_rounds": 10,
 "commands": [
  {"name": "berth", "argv": ["$BERTH", "--root", "$WORK/root-rx1", "run", "--bundle", "$BUNDLE", "$TAG-rx1"]},
  {"name": "berth on a read-only mount (no re-exec)", "argv": ["$WORK/ro/$(basename "$BERTH")", "--root", "$WORK/root-rx2", "run", "--bundle", "$BUNDLE", "$TAG-rx2"]}$extra,
  {"name": "runc", "argv": ["$RUNC", "--root", "$WORK/root-rx-runc", "run", "--bundle", "$BUNDLE", "$TAG-rx4"]},
  {"name": "crun", "argv": ["$CRUN", "--root", "$WORK/root-rx-crun", "run", "--bundle", "$BUNDLE", "$TAG-rx5"]}],
 "ratios": $ratios]}
EOF
# In a mount namespace of its own (inside the wrapper, when there is one): the read-only bind
# of the binary's directory, then the timer.
cat >"$WORK/ro.sh" <<EOF
mount --bind -o ro "$(dirname "$BERTH")" "$WORK/ro" && exec python3 bench/runtime/pairtime.py "$WORK/plans/reexec.json"
EOF
wrapped unshare -m --propagation private sh "$WORK/ro.sh"

if [ -n "$BUNDLE_SC" ]; then
    echo; echo "== 6. compiling the Docker-like seccomp profile ($SECCOMP_SUMMARY)"
    python3 bench/runtime/seccomp_compile.py "$BUNDLE_SC/config.json"
fi

echo
bench_check_clean
