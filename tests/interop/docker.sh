# shellcheck shell=bash disable=SC2016  # (container-side shell code is single-quoted on purpose)
# berth-runtime under a private dockerd (Debian's docker.io 20.10) with its own containerd.
# Sourced by run.sh, after lib.sh; needs IT_TMP, IT_DIR, BERTH_RUNTIME, IMAGE_TAR.
#
# dockerd is registered with `--add-runtime berth=$BERTH_RUNTIME` (the default runtime stays
# runc) and every container here is started with `--runtime berth`. containerd's runc v2 shim
# then drives berth-runtime exactly as it drives runc: `--root <exec-root>/runtime-runc/moby
# --log <bundle>/log.json --log-format json create|start|exec|ps|pause|resume|update|kill|delete`.

DK=$IT_TMP/docker
DK_IMAGE=busybox:berth-interop
# dockerd puts container cgroups under this parent (cgroupfs driver), so that they are ours
# alone and easy to check and remove.
DK_CGROUP=berth-interop-$$-docker
# berth-runtime's --root as the shim passes it (dockerd sets the runc option Root).
DK_RTROOT=$DK/exec/runtime-runc/moby

# The docker CLI: $DOCKER, else the newest one installed (28 in /usr/local/bin when present;
# it negotiates the API down to dockerd 20.10's 1.41 by itself).
DOCKER_CLI=${DOCKER:-}
if [ -z "$DOCKER_CLI" ]; then
    if [ -x /usr/local/bin/docker ]; then DOCKER_CLI=/usr/local/bin/docker; else DOCKER_CLI=/usr/bin/docker; fi
fi

dk() { timeout 60 "$DOCKER_CLI" "$@"; }

docker_up() {
    mkdir -p "$DK"/{containerd,config,tmp}
    # containerd: our own, everything under $DK (dockerd 20.10 would otherwise connect to a
    # system containerd at /run/containerd/containerd.sock if one is running, and only start
    # its own managed one when there is none).
    cat >"$DK/containerd/config.toml" <<EOF
version = 2
root = "$DK/containerd/root"
state = "$DK/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$DK/containerd/containerd.sock"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$DK/containerd/opt"
EOF
    # TMPDIR: the shims make their console sockets there (/tmp/pty* otherwise).
    TMPDIR="$DK/tmp" containerd --config "$DK/containerd/config.toml" >"$DK/containerd.log" 2>&1 &
    DK_CONTAINERD_PID=$!
    on_cleanup "stop_daemon $DK_CONTAINERD_PID containerd 20"
    wait_until 30 test -S "$DK/containerd/containerd.sock" || {
        tail -20 "$DK/containerd.log"
        echo "containerd did not start" >&2
        return 1
    }

    # dockerd: its own data/exec roots, socket, pid file and config file (no /etc/docker),
    # no bridge, no iptables/ip-forward/masquerading changes, no userland proxy. (A caller
    # may set DK_NET to other network flags, e.g. a bridge of its own: bench/network.)
    if [ -z "${DK_NET+x}" ]; then
        DK_NET=(--bridge=none --iptables=false --ip6tables=false --ip-masq=false
            --ip-forward=false --userland-proxy=false)
    fi
    echo "{\"deprecated-key-path\": \"$DK/key.json\"}" >"$DK/daemon.json"
    TMPDIR="$DK/tmp" dockerd \
        --config-file "$DK/daemon.json" \
        --data-root "$DK/data" \
        --exec-root "$DK/exec" \
        --pidfile "$DK/dockerd.pid" \
        -H "unix://$DK/docker.sock" \
        --containerd "$DK/containerd/containerd.sock" \
        "${DK_NET[@]}" \
        --exec-opt native.cgroupdriver=cgroupfs \
        --cgroup-parent "/$DK_CGROUP" \
        --add-runtime "berth=$BERTH_RUNTIME" \
        >"$DK/dockerd.log" 2>&1 &
    DK_DOCKERD_PID=$!
    on_cleanup "stop_daemon $DK_DOCKERD_PID dockerd 30"
    on_cleanup "dk_remove_all"
    export DOCKER_HOST="unix://$DK/docker.sock"
    # The CLI's own config (contexts, auth) stays private too.
    export DOCKER_CONFIG="$DK/config"
    wait_until 60 "$DOCKER_CLI" version || {
        tail -20 "$DK/dockerd.log"
        echo "dockerd did not start" >&2
        return 1
    }
    echo "docker CLI $("$DOCKER_CLI" version --format '{{.Client.Version}} (API {{.Client.APIVersion}})'), dockerd $("$DOCKER_CLI" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
    dk import "$IMAGE_TAR" "$DK_IMAGE" >/dev/null
}

# Removes every container (before dockerd stops, so the shims and mounts go with them).
dk_remove_all() {
    local ids
    mapfile -t ids < <("$DOCKER_CLI" ps -aq 2>/dev/null)
    [ ${#ids[@]} = 0 ] || timeout 60 "$DOCKER_CLI" rm -f "${ids[@]}" >/dev/null 2>&1 || true
}

# The docker run options every container here gets.
BERTH=(--runtime berth)

dk_pid() { dk inspect -f '{{.State.Pid}}' "$1"; }
dk_log_has() { dk logs "$1" 2>&1 | grep -q -- "$2"; }
dk_status_is() { [ "$(dk inspect -f '{{.State.Status}}' "$1")" = "$2" ]; }

t_dk_echo() {
    local out
    out=$(dk run --rm "${BERTH[@]}" "$DK_IMAGE" echo hi)
    expect_eq "output of docker run echo hi" "$out" "hi"
}

t_dk_exit_code() {
    expect_rc "docker run sh -c 'exit 3'" 3 dk run --rm "${BERTH[@]}" "$DK_IMAGE" sh -c 'exit 3'
}

t_dk_interactive() {
    local out rc=0
    out=$(pty_drive --timeout 30 --expect '# ' --send 'tty; echo $((6*7)); stty size\r' \
        --expect 42 --send 'exit 4\r' -- \
        "$DOCKER_CLI" run -it --rm "${BERTH[@]}" "$DK_IMAGE" sh) || rc=$?
    printf '%s\n' "$out"
    expect_eq "exit code of the interactive shell" "$rc" 4
    expect_match "tty in the container" "$out" '/dev/pts/[0-9]+'
    expect_match "arithmetic typed on the pty" "$out" '42'
    expect_match "terminal size passed through" "$out" '24 80'
}

t_dk_detach_exec() {
    dk run -d --name exec1 "${BERTH[@]}" "$DK_IMAGE" sh -c "$COUNTER_LOOP" >/dev/null
    local id pid st out
    id=$(dk inspect -f '{{.Id}}' exec1)
    pid=$(dk_pid exec1)
    # berth-runtime (not runc) made it: its state under the shim's --root agrees with docker.
    st=$(berth_status "$DK_RTROOT" "$id")
    expect_eq "berth-runtime state of the container" "$st" "running $pid"
    wait_until 5 dk exec exec1 test -s /tmp/cnt || die "no counter file"
    out=$(dk exec exec1 cat /tmp/cnt)
    expect_match "docker exec cat /tmp/cnt" "$out" '^[0-9]+$'
    expect_rc "docker exec sh -c 'exit 5'" 5 dk exec exec1 sh -c 'exit 5'
    out=$(dk exec -u 1000:1000 -w /tmp -e FOO=bar exec1 sh -c 'echo $(id -u):$(id -g) $PWD $FOO')
    expect_eq "docker exec -u -w -e" "$out" "1000:1000 /tmp bar"
}

t_dk_exec_tty() {
    local out rc=0
    out=$(pty_drive --timeout 30 --expect '# ' --send 'tty; echo $((6*7)); stty size\r' \
        --expect 42 --send 'exit 6\r' -- \
        "$DOCKER_CLI" exec -it exec1 sh) || rc=$?
    printf '%s\n' "$out"
    expect_eq "exit code of docker exec -it sh" "$rc" 6
    expect_match "tty of the exec'd shell" "$out" '/dev/pts/[0-9]+'
    expect_match "arithmetic typed on the pty" "$out" '42'
    expect_match "terminal size passed through" "$out" '24 80'
}

t_dk_pause() {
    local pid id out
    pid=$(dk_pid exec1)
    id=$(dk inspect -f '{{.Id}}' exec1)
    dk pause exec1 >/dev/null
    out=$(dk ps --filter name=exec1 --format '{{.Status}}')
    expect_match "docker ps status after pause" "$out" '\(Paused\)'
    expect_eq "docker inspect status after pause" "$(dk inspect -f '{{.State.Status}} {{.State.Paused}}' exec1)" "paused true"
    expect_eq "berth-runtime state after pause" "$(berth_status "$DK_RTROOT" "$id")" "paused $pid"
    assert_counter_frozen "$pid"
    dk unpause exec1 >/dev/null
    out=$(dk ps --filter name=exec1 --format '{{.Status}}')
    expect_match "docker ps status after unpause" "$out" '^Up'
    assert_counter_moves "$pid"
}

t_dk_top() {
    # dockerd asks containerd for the pids, and the shim asks `berth-runtime ps --format json`.
    local out pid
    pid=$(dk_pid exec1)
    out=$(dk top exec1 -o pid,args)
    printf '%s\n' "$out"
    expect_match "docker top lists the init" "$out" "^ *$pid +sh -c i=0"
}

t_dk_stats() {
    local out
    out=$(dk stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}|{{.BlockIO}}' exec1)
    echo "$out"
    expect_match "memory usage" "${out%%|*}" '^[0-9.]+[KMG]i?B /'
    local mem=${out%%|*}
    [ "${mem%% *}" != "0B" ] || die "memory usage is zero: $out"
    local pids=${out#*|}
    pids=${pids%%|*}
    [ "$pids" -ge 1 ] || die "PIDs is $pids"
    echo "ok: memory ${mem%% *}, $pids pids"
}

t_dk_update() {
    dk update --memory 100m --memory-swap 200m exec1 >/dev/null
    local out
    out=$(dk exec exec1 cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null ||
        dk exec exec1 cat /sys/fs/cgroup/memory.max)
    expect_eq "memory limit after docker update --memory 100m" "$out" 104857600
    expect_eq "docker inspect Memory" "$(dk inspect -f '{{.HostConfig.Memory}}' exec1)" 104857600
}

t_dk_rm_force() {
    local id
    id=$(dk inspect -f '{{.Id}}' exec1)
    dk_status_is exec1 running || die "exec1 is not running"
    dk rm -f exec1 >/dev/null
    [ -z "$(dk ps -aq --filter name=exec1)" ] || die "container still listed"
    wait_until 10 test ! -e "$DK_RTROOT/$id" || die "berth-runtime state $DK_RTROOT/$id left behind"
    [ -z "$(cgroups_below "$DK_CGROUP/$id")" ] || die "cgroup left: $(cgroups_below "$DK_CGROUP/$id")"
    echo "ok: container, runtime state and cgroups gone"
}

t_dk_memory() {
    local out
    out=$(dk run --rm "${BERTH[@]}" --memory 32m "$DK_IMAGE" sh -c \
        'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max')
    expect_eq "memory limit seen in the container" "$out" 33554432
    # Going over the limit (no swap to escape to): the kernel OOM-kills the container.
    expect_rc "docker run over its memory limit" 137 \
        dk run --name oom1 "${BERTH[@]}" --memory 32m --memory-swap 32m "$DK_IMAGE" sh -c 'tail /dev/zero'
    out=$(dk inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' oom1)
    dk rm oom1 >/dev/null
    expect_eq "docker inspect OOMKilled and ExitCode" "$out" "true 137"
}

t_dk_stop() {
    # sh as pid 1 ignores SIGTERM unless it traps it: the trap's exit code shows TERM arrived.
    dk run -d --name stop1 "${BERTH[@]}" "$DK_IMAGE" sh -c \
        'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done' >/dev/null
    wait_until 10 dk_log_has stop1 ready || die "never ready"
    local t0=$SECONDS
    dk stop -t 20 stop1 >/dev/null
    [ $((SECONDS - t0)) -lt 15 ] || die "docker stop needed the SIGKILL fallback"
    expect_eq "exit code after docker stop" "$(dk inspect -f '{{.State.ExitCode}}' stop1)" 42
    dk rm stop1 >/dev/null
}

t_dk_kill() {
    dk run -d --name kill1 "${BERTH[@]}" "$DK_IMAGE" sleep 1000 >/dev/null
    dk kill kill1 >/dev/null
    wait_until 10 dk_status_is kill1 exited || die "still running"
    expect_eq "exit code after docker kill" "$(dk inspect -f '{{.State.ExitCode}}' kill1)" 137
    # A stopped container starts again (a new create + start on the same bundle).
    dk start kill1 >/dev/null
    expect_eq "status after docker start" "$(dk inspect -f '{{.State.Status}}' kill1)" running
    dk rm -f kill1 >/dev/null
}

t_dk_logs() {
    dk run -d --name logs1 "${BERTH[@]}" "$DK_IMAGE" sh -c 'echo to-stdout; echo to-stderr >&2' >/dev/null
    expect_eq "docker wait" "$(dk wait logs1)" 0
    local out err
    out=$(dk logs logs1 2>/dev/null)
    err=$(dk logs logs1 2>&1 >/dev/null)
    dk rm logs1 >/dev/null
    expect_eq "docker logs (stdout)" "$out" "to-stdout"
    expect_eq "docker logs (stderr)" "$err" "to-stderr"
}

t_dk_ro_tmpfs() {
    # A read-only tmpfs with a bind mount below it (the mount point is made inside the
    # tmpfs before it turns read-only), and a read-only root.
    mkdir -p "$DK/vol"
    echo from-host >"$DK/vol/f"
    local out
    out=$(dk run --rm "${BERTH[@]}" --read-only --tmpfs /data:ro -v "$DK/vol:/data/sub:ro" "$DK_IMAGE" \
        sh -c 'cat /data/sub/f; touch /data/x 2>/dev/null && echo tmpfs-writable; touch /x 2>/dev/null && echo root-writable; echo done')
    expect_eq "read-only tmpfs, bind below it, read-only root" "$out" "$(printf 'from-host\ndone')"
}

t_dk_nothing_left() {
    local left
    left=$("$BERTH_RUNTIME" --root "$DK_RTROOT" list -q 2>/dev/null || true)
    expect_eq "berth-runtime containers left under $DK_RTROOT" "$left" ""
    expect_eq "container cgroups left under /$DK_CGROUP" "$(cgroups_below "$DK_CGROUP")" ""
}

docker_scenarios() {
    scenario "docker: run echo hi" t_dk_echo
    scenario "docker: exit code propagates (3)" t_dk_exit_code
    scenario "docker: run -it on a pty" t_dk_interactive
    scenario "docker: run -d + exec" t_dk_detach_exec
    scenario "docker: exec -it on a pty" t_dk_exec_tty
    scenario "docker: pause / unpause" t_dk_pause
    scenario "docker: top" t_dk_top
    scenario "docker: stats --no-stream" t_dk_stats
    scenario "docker: update --memory" t_dk_update
    scenario "docker: rm -f (running)" t_dk_rm_force
    scenario "docker: --memory 32m, OOM kill" t_dk_memory
    scenario "docker: stop (SIGTERM)" t_dk_stop
    scenario "docker: kill, start again" t_dk_kill
    scenario "docker: logs" t_dk_logs
    scenario "docker: read-only tmpfs and root" t_dk_ro_tmpfs
    scenario "docker: nothing left behind" t_dk_nothing_left
}

# Removes the containers, then stops dockerd and containerd by pid (each waited for); what
# they leave (mounts, dirs) goes in run.sh's clean-up.
docker_down() {
    dk_remove_all
    [ -z "${DK_DOCKERD_PID:-}" ] || stop_daemon "$DK_DOCKERD_PID" dockerd 30
    [ -z "${DK_CONTAINERD_PID:-}" ] || stop_daemon "$DK_CONTAINERD_PID" containerd 20
}
