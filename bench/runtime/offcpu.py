#!/usr/bin/env python3
"""Off-CPU time of one command's process tree, by the kernel function it blocked in.

Reads `perf script` output of a system-wide `perf record -e sched:sched_switch -g` taken
while the command ran, follows the pids that descend from the command (by name of the
runtime binaries given, or every pid listed with --pids), and adds up, per blocking reason,
the time from each switch-out of such a pid to its next switch-in. Also prints the on-CPU
time between switches and the run queue wait (switched out while runnable).

usage: perf script -i FILE | offcpu.py COMM [COMM ...]
"""

import collections
import re
import sys

comms = set(sys.argv[1:])
# The frames that say why a task slept; the first key (in this order) found anywhere in the
# stack names the reason.
KEYS = [
    ("rcu_sync_enter", "cgroup v1 attach: percpu_down_write -> synchronize_rcu (cgroup.procs write)"),
    ("namespace_unlock", "mount teardown: namespace_unlock -> synchronize_rcu_expedited"),
    ("wait_for_partner", "exec fifo: open waits for the other end"),
    ("__unix_dgram_recvmsg", "sync socket: waiting for the other process"),
    ("unix_stream_read", "sync socket: waiting for the other process"),
    ("do_wait", "wait4/waitid for a child"),
    ("do_sys_poll", "poll (waiting for the container to exit or a signal)"),
    ("do_epoll_wait", "epoll_wait"),
    ("ep_poll", "epoll_wait"),
    ("pipe_read", "pipe read"),
    ("futex_", "futex (Go runtime threads)"),
    ("hrtimer_nanosleep", "nanosleep"),
    ("filemap_fault", "page fault reading a file (page cache miss)"),
    ("ext4_", "ext4 I/O (metadata)"),
    ("jbd2", "ext4 journal"),
    ("synchronize_rcu", "other synchronize_rcu"),
    ("copy_net_ns", "network namespace creation"),
    ("cleanup_net", "network namespace cleanup"),
    ("irqentry_exit_to_user_mode", "preempted (timer)"),
    ("__cond_resched", "preempted (cond_resched)"),
    ("exit_to_user_mode", "preempted"),
]

ev = re.compile(
    r"^\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+prev_comm=(.*?) prev_pid=(\d+) "
    r"prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)"
)
events = []
cur = None
for line in sys.stdin:
    m = ev.match(line)
    if m:
        cur = {"t": float(m.group(4)), "prev_comm": m.group(5), "prev": int(m.group(6)),
               "state": m.group(7), "next_comm": m.group(8), "next": int(m.group(9)), "stack": []}
        events.append(cur)
    elif cur is not None and line.strip():
        parts = line.split()
        if len(parts) >= 2:
            cur["stack"].append(parts[1])

ours = lambda c: any(c.startswith(x[:15]) for x in comms)
out_at = {}
first_in, last_out = {}, {}
offcpu = collections.Counter()
count = collections.Counter()
oncpu = collections.Counter()
in_at = {}
for e in events:
    if ours(e["prev_comm"]):
        p = e["prev"]
        if p in in_at:
            oncpu[p] += e["t"] - in_at.pop(p)
        reason = None
        if e["state"].startswith("R"):
            reason = "runnable, waiting for a CPU (preempted)"
        else:
            for k, why in KEYS:
                if any(k in f for f in e["stack"]):
                    reason = why
                    break
        out_at[p] = (e["t"], reason or ("other: " + " < ".join(e["stack"][2:5])))
        last_out[p] = e["t"]
    if ours(e["next_comm"]):
        p = e["next"]
        in_at[p] = e["t"]
        first_in.setdefault(p, e["t"])
        if p in out_at:
            t0, why = out_at.pop(p)
            offcpu[why] += e["t"] - t0
            count[why] += 1

total_off = sum(offcpu.values())
print(f"on-CPU between switches: {sum(oncpu.values()) * 1e3:7.2f} ms over {len(oncpu)} pids")
print(f"off-CPU total:           {total_off * 1e3:7.2f} ms")
for why, t in offcpu.most_common(14):
    print(f"  {t * 1e3:7.2f} ms  x{count[why]:<3} {why}")
