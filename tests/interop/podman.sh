# shellcheck shell=bash disable=SC2016  # (container-side shell code is single-quoted on purpose)
# berth-runtime under podman 4.3 (Debian's), with conmon, the cgroupfs manager and private
# storage. Sourced by run.sh, after lib.sh; needs IT_TMP, IT_DIR, BERTH_RUNTIME, IMAGE_TAR.
#
# podman runs `berth-runtime create|start|exec|kill|pause|resume|update|delete` itself and
# through conmon (which also runs `podman container cleanup` when a container exits).

PM=$IT_TMP/podman
PM_IMAGE=localhost/busybox:berth-interop
PM_CGROUP=berth-interop-$$-podman
# podman passes no --root to the runtime (and `--runtime-flag root=...` would be lost on the
# `podman container cleanup` that conmon runs at exit), so berth-runtime keeps its state in
# its default root, as it would for any podman user.
PM_RTROOT=/run/berth-runtime

# podman's global options: private storage, state and tmp dirs; berth-runtime as the runtime.
PM_GLOBAL=(--root "$PM/storage" --runroot "$PM/run" --tmpdir "$PM/tmp"
    --cgroup-manager cgroupfs --events-backend file
    --network-config-dir "$PM/networks" --volumepath "$PM/volumes"
    --runtime "$BERTH_RUNTIME")

# The docker checks' DOCKER_CONFIG would be read by podman for registry credentials. TMPDIR:
# podman import stages layers there (default /var/tmp).
PM_CMD=(env -u DOCKER_CONFIG -u DOCKER_HOST TMPDIR="$PM/tmp" podman "${PM_GLOBAL[@]}")

pm() { timeout 60 "${PM_CMD[@]}" "$@"; }

# Options for every `podman run`: no network at all, our own cgroup parent. (The rlimits are
# set in containers.conf, see podman_up.)
PM_RUN=(--network none --cgroup-parent "/$PM_CGROUP")

podman_up() {
    mkdir -p "$PM"/{tmp,networks,volumes}
    # rlimits: without any, podman 4.3 as root puts RLIMIT_NOFILE and RLIMIT_NPROC of 1048576
    # and 4194304 in the container spec. Raising a hard limit needs CAP_SYS_RESOURCE, which
    # root lacks here (not in its bounding set), so every runtime (runc too) fails with EPERM.
    # default_ulimits replaces podman's choice. The runtime inherits its limits from conmon,
    # whose RLIMIT_NPROC can be below podman's own (32768 here), so the values are small ones
    # that lowering always reaches.
    PM_NOFILE=$(min_limit "$(ulimit -Hn)" 1024)
    PM_NPROC=$(min_limit "$(ulimit -Hu)" 4096)
    # Private configuration: nothing from /etc/containers or /usr/share/containers decides
    # where state goes. File locks under tmp_dir instead of the shared /dev/shm/libpod_lock.
    cat >"$PM/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=$PM_NOFILE:$PM_NOFILE", "nproc=$PM_NPROC:$PM_NPROC"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PM/events.log"
tmp_dir = "$PM/tmp"
volume_path = "$PM/volumes"
lock_type = "file"
[network]
network_config_dir = "$PM/networks"
EOF
    cat >"$PM/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PM/storage"
runroot = "$PM/run"
EOF
    export CONTAINERS_CONF="$PM/containers.conf"
    export CONTAINERS_STORAGE_CONF="$PM/storage.conf"
    on_cleanup "pm_remove_all"
    echo "podman $(podman --version | awk '{print $3}'), conmon $(conmon --version | awk 'NR==1 {print $3}')"
    pm import -q "$IMAGE_TAR" "$PM_IMAGE" >/dev/null
}

pm_remove_all() {
    [ -d "$PM/storage" ] || return 0
    pm rm -af -t 0 >/dev/null 2>&1 || true
}

pm_log_has() { pm logs "$1" 2>&1 | grep -q -- "$2"; }

pm_pid() { pm inspect -f '{{.State.Pid}}' "$1"; }

t_pm_echo() {
    local out
    out=$(pm run --rm "${PM_RUN[@]}" "$PM_IMAGE" echo hi)
    expect_eq "output of podman run echo hi" "$out" "hi"
}

t_pm_exit_code() {
    expect_rc "podman run sh -c 'exit 3'" 3 pm run --rm "${PM_RUN[@]}" "$PM_IMAGE" sh -c 'exit 3'
}

t_pm_rlimits() {
    # default_ulimits in our containers.conf (see podman_up), soft = hard.
    local out
    out=$(pm run --rm "${PM_RUN[@]}" "$PM_IMAGE" sh -c 'echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -Hu)')
    expect_eq "nofile soft, hard and nproc hard in the container" "$out" \
        "$PM_NOFILE $PM_NOFILE $PM_NPROC"
}

t_pm_detach_exec() {
    pm run -d --name pexec1 "${PM_RUN[@]}" "$PM_IMAGE" sh -c "$COUNTER_LOOP" >/dev/null
    local id pid out
    id=$(pm inspect -f '{{.Id}}' pexec1)
    pid=$(pm_pid pexec1)
    expect_eq "berth-runtime state of the container" "$(berth_status "$PM_RTROOT" "$id")" "running $pid"
    wait_until 5 pm exec pexec1 test -s /tmp/cnt || die "no counter file"
    out=$(pm exec pexec1 cat /tmp/cnt)
    expect_match "podman exec cat /tmp/cnt" "$out" '^[0-9]+$'
    expect_rc "podman exec sh -c 'exit 5'" 5 pm exec pexec1 sh -c 'exit 5'
    out=$(pm exec -u 1000:1000 -w /tmp -e FOO=bar pexec1 sh -c 'echo $(id -u):$(id -g) $PWD $FOO')
    expect_eq "podman exec -u -w -e" "$out" "1000:1000 /tmp bar"
}

t_pm_exec_tty() {
    local out rc=0
    out=$(pty_drive --timeout 30 --expect '# ' --send 'tty; echo $((6*7)); stty size\r' \
        --expect 42 --send 'exit 6\r' -- \
        "${PM_CMD[@]}" exec -it pexec1 sh) || rc=$?
    printf '%s\n' "$out"
    expect_eq "exit code of podman exec -it sh" "$rc" 6
    expect_match "tty of the exec'd shell" "$out" '/dev/pts/[0-9]+'
    expect_match "arithmetic typed on the pty" "$out" '42'
    expect_match "terminal size passed through" "$out" '24 80'
}

t_pm_pause() {
    local pid id
    pid=$(pm_pid pexec1)
    id=$(pm inspect -f '{{.Id}}' pexec1)
    pm pause pexec1 >/dev/null
    expect_eq "podman inspect status after pause" "$(pm inspect -f '{{.State.Status}}' pexec1)" paused
    expect_eq "berth-runtime state after pause" "$(berth_status "$PM_RTROOT" "$id")" "paused $pid"
    assert_counter_frozen "$pid"
    pm unpause pexec1 >/dev/null
    expect_eq "podman inspect status after unpause" "$(pm inspect -f '{{.State.Status}}' pexec1)" running
    assert_counter_moves "$pid"
}

t_pm_update() {
    pm update --memory 100m pexec1 >/dev/null
    expect_eq "memory limit after podman update --memory 100m" \
        "$(pm exec pexec1 cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null ||
            pm exec pexec1 cat /sys/fs/cgroup/memory.max)" 104857600
}

t_pm_rm_force() {
    local id
    id=$(pm inspect -f '{{.Id}}' pexec1)
    [ "$(pm inspect -f '{{.State.Status}}' pexec1)" = running ] || die "pexec1 is not running"
    pm rm -f -t 0 pexec1 >/dev/null
    [ -z "$(pm ps -aq --filter name=pexec1)" ] || die "container still listed"
    wait_until 10 test ! -e "$PM_RTROOT/$id" || die "berth-runtime state $PM_RTROOT/$id left behind"
    [ -z "$(cgroups_below "$PM_CGROUP/libpod-$id")" ] || die "cgroup left: $(cgroups_below "$PM_CGROUP/libpod-$id")"
    echo "ok: container, runtime state and cgroups gone"
}

t_pm_memory() {
    local out
    out=$(pm run --rm "${PM_RUN[@]}" --memory 32m "$PM_IMAGE" sh -c \
        'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max')
    expect_eq "memory limit seen in the container" "$out" 33554432
    # conmon notices the kill (memory.oom_control) and drops an "oom" file into its working
    # directory, $IT_TMP; podman 4.3 does not look for it there, so its OOMKilled stays
    # false (with runc just the same). The file is the evidence, OOMKilled is only shown.
    rm -f "$IT_TMP/oom"
    expect_rc "podman run over its memory limit" 137 \
        pm run --name poom1 "${PM_RUN[@]}" --memory 32m --memory-swap 32m "$PM_IMAGE" sh -c 'tail /dev/zero'
    [ -e "$IT_TMP/oom" ] || die "conmon did not notice an OOM kill (no $IT_TMP/oom)"
    echo "ok: conmon noticed the OOM kill"
    echo "podman inspect: OOMKilled=$(pm inspect -f '{{.State.OOMKilled}}' poom1)"
    pm rm poom1 >/dev/null
}

t_pm_stop_logs() {
    pm run -d --name pstop1 "${PM_RUN[@]}" "$PM_IMAGE" sh -c \
        'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done' >/dev/null
    wait_until 10 pm_log_has pstop1 ready || die "never ready"
    expect_eq "podman logs" "$(pm logs pstop1)" ready
    local t0=$SECONDS
    pm stop -t 20 pstop1 >/dev/null
    [ $((SECONDS - t0)) -lt 15 ] || die "podman stop needed the SIGKILL fallback"
    expect_eq "exit code after podman stop" "$(pm inspect -f '{{.State.ExitCode}}' pstop1)" 42
    pm rm pstop1 >/dev/null
}

t_pm_kill() {
    pm run -d --name pkill1 "${PM_RUN[@]}" "$PM_IMAGE" sleep 1000 >/dev/null
    pm kill pkill1 >/dev/null
    pm wait pkill1 >/dev/null
    expect_eq "exit code after podman kill" "$(pm inspect -f '{{.State.ExitCode}}' pkill1)" 137
    pm rm pkill1 >/dev/null
}

t_pm_interactive() {
    local out rc=0
    out=$(pty_drive --timeout 30 --expect '# ' --send 'tty; echo $((6*7)); stty size\r' \
        --expect 42 --send 'exit 4\r' -- \
        "${PM_CMD[@]}" run -it --rm "${PM_RUN[@]}" "$PM_IMAGE" sh) || rc=$?
    printf '%s\n' "$out"
    expect_eq "exit code of the interactive shell" "$rc" 4
    expect_match "tty in the container" "$out" '/dev/pts/[0-9]+'
    expect_match "arithmetic typed on the pty" "$out" '42'
    expect_match "terminal size passed through" "$out" '24 80'
}

t_pm_read_only() {
    # --read-only: podman adds tmpfs mounts with tmpcopyup on /run, /tmp and /var/tmp; and a
    # read-only tmpfs on /etc gets podman's /etc/hosts and /etc/hostname bind-mounted into it.
    local out
    out=$(pm run --rm "${PM_RUN[@]}" --read-only -u 1000:1000 "$PM_IMAGE" sh -c \
        'touch /x 2>/dev/null && echo root-writable; touch /tmp/y && echo tmp-writable; id -u')
    expect_eq "podman run --read-only" "$out" "$(printf 'tmp-writable\n1000')"
    out=$(pm run --rm "${PM_RUN[@]}" --tmpfs /etc:ro "$PM_IMAGE" sh -c \
        'cat /etc/hostname >/dev/null && echo hostname; grep -c root /etc/passwd; touch /etc/x 2>/dev/null && echo etc-writable; echo done')
    expect_eq "podman run --tmpfs /etc:ro" "$out" "$(printf 'hostname\n1\ndone')"
}

t_pm_nothing_left() {
    expect_eq "container cgroups left under /$PM_CGROUP" \
        "$(cgroups_below "$PM_CGROUP" | grep -v "/$PM_CGROUP/conmon\$" || true)" ""
}

podman_scenarios() {
    scenario "podman: run echo hi" t_pm_echo
    scenario "podman: exit code propagates (3)" t_pm_exit_code
    scenario "podman: rlimits from containers.conf" t_pm_rlimits
    scenario "podman: run -d + exec" t_pm_detach_exec
    scenario "podman: exec -it on a pty" t_pm_exec_tty
    scenario "podman: pause / unpause" t_pm_pause
    scenario "podman: update --memory" t_pm_update
    scenario "podman: rm -f (running)" t_pm_rm_force
    scenario "podman: --memory 32m, OOM kill" t_pm_memory
    scenario "podman: stop (SIGTERM), logs" t_pm_stop_logs
    scenario "podman: kill" t_pm_kill
    scenario "podman: run -it on a pty" t_pm_interactive
    scenario "podman: --read-only, tmpfs /etc:ro" t_pm_read_only
    scenario "podman: nothing left behind" t_pm_nothing_left
}

podman_down() {
    pm_remove_all
}
