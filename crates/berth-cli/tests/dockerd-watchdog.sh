#!/bin/sh
# Private dockerd for berth-cli's tests, with its own reaper.
#
# usage: dockerd-watchdog.sh BASE
#
# Runs dockerd (Debian docker.io 20.10) with everything under BASE: data and exec roots,
# socket BASE/docker.sock, pid file, and the containerd dockerd manages itself (its state
# under the exec root). No bridge, no iptables, no masquerading.
#
# Test processes hold a shared flock on BASE/lease while they use the daemon. This script
# polls for an exclusive lock: once nobody has held the lease for a few seconds (all test
# processes gone, however they ended) it removes every container, stops dockerd by PID,
# kills what is left of its process tree (containerd, shims) by PID and unmounts and removes
# BASE/run. Started detached (setsid) by the test harness.
set -u
BASE=$1
RUN=$BASE/run
LEASE=$BASE/lease
mkdir -p "$RUN/data" "$RUN/exec"
echo '{}' >"$RUN/daemon.json"
dockerd \
    --config-file "$RUN/daemon.json" \
    --data-root "$RUN/data" \
    --exec-root "$RUN/exec" \
    --pidfile "$RUN/dockerd.pid" \
    -H "unix://$RUN/docker.sock" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
    --userland-proxy=false \
    --exec-opt native.cgroupdriver=cgroupfs \
    --cgroup-parent /berth-cli-tests \
    >"$BASE/dockerd.log" 2>&1 &
pid=$!
echo "$pid" >"$BASE/watched.pid"

idle=0
while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if flock -n -x "$LEASE" true; then idle=$((idle + 1)); else idle=0; fi
    [ "$idle" -ge 4 ] && break
done

# Every process whose command line names our run dir (containerd, shims), by PID.
ours() {
    for d in /proc/[0-9]*; do
        case "$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)" in
        *"$RUN/"*) echo "${d#/proc/}" ;;
        esac
    done
}

# Holding the lease exclusively: test processes arriving now wait, then start a new daemon.
flock -x "$LEASE" sh -c '
    RUN=$1 pid=$2
    if [ -S "$RUN/docker.sock" ]; then
        ids=$(DOCKER_HOST=unix://$RUN/docker.sock DOCKER_CONFIG=$RUN/cfg timeout 60 /usr/local/bin/docker ps -aq 2>/dev/null)
        [ -z "$ids" ] || DOCKER_HOST=unix://$RUN/docker.sock DOCKER_CONFIG=$RUN/cfg timeout 60 /usr/local/bin/docker rm -f $ids >/dev/null 2>&1
    fi
    kill -TERM "$pid" 2>/dev/null
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null
' sh "$RUN" "$pid"
wait "$pid" 2>/dev/null
for p in $(ours); do kill -KILL "$p" 2>/dev/null; done
grep " $RUN/" /proc/self/mounts | cut -d' ' -f2 | sort -r | while read -r m; do umount -l "$m"; done
for c in /sys/fs/cgroup/*/berth-cli-tests; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null; done
rm -rf "$RUN" "$BASE/watched.pid"
