# shellcheck shell=bash disable=SC2016  # (container-side shell code is single-quoted on purpose)
# Helpers shared by the interop checks (run.sh, docker.sh, podman.sh). Source it.
#
# Everything a check starts or creates lives under $IT_TMP, is registered with `on_cleanup`,
# and is undone by `cleanup_all` (run.sh traps EXIT). Nothing here touches the host's network
# configuration; the peers run with networking off.

IT_PASSED=0
IT_FAILED=0
IT_FAILED_NAMES=()
IT_CLEANUPS=()

# Prints a line of the run's own narration.
say() { printf '==> %s\n' "$*"; }

# Registers a command (one string, run with eval) to undo something; run last-in first-out.
on_cleanup() { IT_CLEANUPS+=("$1"); }

cleanup_all() {
    local i
    for ((i = ${#IT_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${IT_CLEANUPS[i]}" || echo "cleanup step failed: ${IT_CLEANUPS[i]}" >&2
    done
    IT_CLEANUPS=()
}

# scenario NAME FUNCTION [ARGS...]: runs FUNCTION in a subshell with `set -e`, its output in a
# log file; prints one PASS or FAIL line (and, on failure, the end of the log).
scenario() {
    local name=$1 rc t0 t1 log
    shift
    log="$IT_TMP/logs/$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' '_').log"
    mkdir -p "$IT_TMP/logs"
    t0=$(date +%s%N)
    set +e
    (
        set -e
        "$@"
    ) >"$log" 2>&1 </dev/null
    rc=$?
    set -e
    t1=$(date +%s%N)
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    if [ "$rc" = 0 ]; then
        IT_PASSED=$((IT_PASSED + 1))
        printf 'PASS  %-44s %5ss\n' "$name" "$secs"
    else
        IT_FAILED=$((IT_FAILED + 1))
        IT_FAILED_NAMES+=("$name")
        printf 'FAIL  %-44s %5ss  (log: %s)\n' "$name" "$secs" "$log"
        tail -n 25 "$log" | sed 's/^/      | /'
    fi
}

# Fails the current scenario with a message.
die() {
    echo "ASSERTION FAILED: $*" >&2
    exit 1
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
    [ "$2" = "$3" ] || die "$1: expected [$3], got [$2]"
    echo "ok: $1 = [$2]"
}

# expect_match WHAT ACTUAL EXTENDED-REGEX
expect_match() {
    printf '%s' "$2" | grep -Eq -- "$3" || die "$1: expected to match /$3/, got [$2]"
    echo "ok: $1 matches /$3/"
}

# expect_rc WHAT EXPECTED-RC COMMAND...: runs COMMAND, checks its exit code.
expect_rc() {
    local what=$1 want=$2 rc=0
    shift 2
    "$@" || rc=$?
    [ "$rc" = "$want" ] || die "$what: expected exit code $want, got $rc"
    echo "ok: $what exited $rc"
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# min_limit LIMIT N: the smaller of an rlimit as `ulimit` prints it and N.
min_limit() {
    if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi
}

# Prints the counter a container writes to /tmp/cnt, read from the host through its root.
read_counter() { cat "/proc/$1/root/tmp/cnt" 2>/dev/null || echo none; }

# The shell loop that writes an ever-growing counter to /tmp/cnt, ten times a second.
# shellcheck disable=SC2034  # used by docker.sh and podman.sh
# (Written aside and renamed, so that a reader never sees it empty.)
COUNTER_LOOP='i=0; while :; do i=$((i+1)); echo $i > /tmp/cnt.new; mv /tmp/cnt.new /tmp/cnt; sleep 0.1; done'

# assert_counter_frozen PID: the counter does not move for a second.
assert_counter_frozen() {
    local a b
    a=$(read_counter "$1")
    sleep 1
    b=$(read_counter "$1")
    [ "$a" != none ] || die "no counter in /proc/$1/root/tmp/cnt"
    expect_eq "counter while paused (was $a)" "$b" "$a"
}

counter_differs() { [ "$(read_counter "$1")" != "$2" ]; }

# assert_counter_moves PID: the counter advances within a few seconds.
assert_counter_moves() {
    local a
    a=$(read_counter "$1")
    [ "$a" != none ] || die "no counter in /proc/$1/root/tmp/cnt"
    wait_until 5 counter_differs "$1" "$a" || die "counter stuck at $a"
    echo "ok: counter moves on from $a"
}

# PIDs of processes whose command line mentions $1 (a path unique to this run).
pids_mentioning() {
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = "$$" ] && continue
        tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$1" && echo "${p#/proc/}"
    done
    return 0
}

# stop_pid PID [SECONDS]: TERM, wait, then KILL.
stop_pid() {
    local pid=$1 t=${2:-20} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "pid $pid ignored SIGTERM for ${t}s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
}

# stop_child PID [SECONDS]: stop_pid for a child of this shell, then reaps it.
stop_child() {
    stop_pid "$@"
    wait "$1" 2>/dev/null || true
}

# stop_daemon PID NAME [SECONDS]: stops a daemon this shell started in the background (and
# reaps it), if it is still running: a no-op the second time. Its command line names $IT_TMP
# (its config or roots), so a recycled pid is left alone.
stop_daemon() {
    if ! tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$IT_TMP"; then
        wait "$1" 2>/dev/null || true
        return 0
    fi
    echo "stopping $2 (pid $1)"
    stop_child "$1" "${3:-20}"
}

# Kills (by pid) every process left whose command line names $1, e.g. shims and conmon.
stop_stragglers() {
    local pid
    for pid in $(pids_mentioning "$1"); do
        echo "stopping leftover process $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-120)" >&2
        stop_pid "$pid" 5
    done
}

# Unmounts everything mounted at or below $1, deepest first.
unmount_below() {
    local dir=$1 mp
    awk -v d="$dir" '{ mp = $5; gsub(/\\040/, " ", mp); if (mp == d || index(mp, d "/") == 1) print mp }' \
        /proc/self/mountinfo | sort -r | while read -r mp; do
        umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || echo "could not unmount $mp" >&2
    done
}

# Removes the cgroup directory tree named $1 (relative) in every hierarchy, deepest first.
remove_cgroup_tree() {
    local rel=$1 base d
    [ -n "$rel" ] || return 0
    for base in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$base/$rel" ] || continue
        find "$base/$rel" -depth -type d 2>/dev/null | while read -r d; do
            rmdir "$d" 2>/dev/null || echo "could not remove cgroup $d" >&2
        done
    done
}

# Lists cgroup directories below $1 (relative) in every hierarchy; empty when none.
cgroups_below() {
    local rel=$1 base
    for base in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$base/$rel" ] && find "$base/$rel" -mindepth 1 -type d 2>/dev/null
    done
    return 0
}

# remember_absent PATH [FILE...]: registers PATH if it does not exist yet, to be removed at
# the end if a peer created it (dockerd, containerd and podman put a few things in fixed
# places). FILEs (relative to PATH) are the peer's own and go too; anything else is kept.
remember_absent() {
    [ -e "$1" ] || on_cleanup "remove_if_created $(printf '%q ' "$@")"
}

# Removes PATH made during the run: a file, or a directory tree once nothing but empty
# directories is left in it after its known FILEs are gone (a daemon started meanwhile by
# someone else may use it, e.g. containerd's shim sockets in /run/containerd/s).
remove_if_created() {
    local path=$1 f
    shift
    [ -e "$path" ] || return 0
    unmount_below "$path"
    if [ -d "$path" ] && [ ! -L "$path" ]; then
        for f in "$@"; do rm -f -- "${path:?}/$f"; done
        find "$path" -depth -type d -empty -delete 2>/dev/null || true
        [ ! -e "$path" ] || echo "$path is not empty (in use by another daemon?): left in place" >&2
    else
        rm -f -- "$path"
    fi
}

# Removes the /tmp/conmon-term.* console sockets made since the run started.
remove_conmon_term_sockets() {
    find /tmp -maxdepth 1 -name 'conmon-term.*' -type s -newer "$IT_TMP/.start" -print \
        -exec rm -f -- {} + 2>/dev/null | sed 's/^/removed leftover /'
    return 0
}

# Removes a berth-runtime root made during the run, unless it holds containers.
remove_runtime_root_if_unused() {
    [ -d "$1" ] || return 0
    if [ -z "$(find "$1" -mindepth 1 -maxdepth 1 ! -name .seccomp-cache)" ]; then
        rm -rf -- "$1"
    else
        echo "$1 still holds containers: left in place" >&2
    fi
}

# Builds a tarball of a busybox root filesystem (Debian's static busybox and its applets),
# for `docker import` and `podman import`.
make_busybox_tar() {
    local out=$1 dir
    dir=$(dirname "$out")/busybox-rootfs
    rm -rf "$dir"
    mkdir -p "$dir"/{bin,dev,proc,sys,tmp,etc,root,run,var/tmp}
    cp /bin/busybox "$dir/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
    done
    chmod 1777 "$dir/tmp" "$dir/var/tmp"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
    echo 'root:x:0:' >"$dir/etc/group"
    tar -C "$dir" -cf "$out" .
}

# berth_status ROOT ID: "STATUS PID" as `berth-runtime state` reports them.
berth_status() {
    "$BERTH_RUNTIME" --root "$1" state "$2" |
        python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["status"], s["pid"])'
}

# pty_drive ARGS...: runs tests/interop/pty_drive.py (a command on a real pty).
pty_drive() { python3 "$IT_DIR/pty_drive.py" "$@"; }

# Network interfaces the peers would make if networking were on (bridges, veths); the run
# must not leave (or make) any.
peer_interfaces() {
    ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
        grep -E '^(docker|br-|veth|cni|podman)' || true
}

# check_left_behind: after clean-up, lists whatever the run left (processes, mounts, cgroups,
# interfaces, runtime state) and fails when there is anything. Needs IT_IFACES_BEFORE
# (peer_interfaces at the start of the run).
check_left_behind() {
    local left=() x
    for x in $(pids_mentioning "$IT_TMP"); do
        left+=("process $x: $(tr '\0' ' ' 2>/dev/null <"/proc/$x/cmdline" | cut -c1-100)")
    done
    while read -r x; do
        [ -z "$x" ] || left+=("mount $x")
    done < <(awk -v d="$IT_TMP" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo)
    for x in /sys/fs/cgroup/*/"${DK_CGROUP:-}" /sys/fs/cgroup/*/"${PM_CGROUP:-}"; do
        [ "${x%/}" = "$x" ] || continue
        [ ! -e "$x" ] || left+=("cgroup $x")
    done
    while read -r x; do
        [ -z "$x" ] || left+=("network interface $x")
    done < <(comm -13 <(printf '%s\n' "$IT_IFACES_BEFORE" | sort) <(peer_interfaces | sort))
    while read -r x; do
        [ -z "$x" ] || left+=("berth-runtime state $x")
    done < <(runtime_state_of_run)
    if [ ${#left[@]} = 0 ]; then
        echo "nothing left behind: no processes, mounts, cgroups, interfaces or runtime state"
        return 0
    fi
    echo "LEFT BEHIND by the run:" >&2
    printf '  %s\n' "${left[@]}" >&2
    return 1
}

# Containers in berth-runtime's default root (podman's live there) whose bundle is in $IT_TMP.
runtime_state_of_run() {
    [ -d /run/berth-runtime ] || return 0
    grep -lsF -- "$IT_TMP" /run/berth-runtime/*/state.json | xargs -r -n1 dirname
}
