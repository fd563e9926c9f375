#!/usr/bin/env python3
"""Splits each `<runtime> run` into phases, from kernel tracepoints (perf script output).

Record with:
  perf record -e sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit,
      syscalls:sys_enter_clone,syscalls:sys_enter_clone3,syscalls:sys_enter_pivot_root -- LOOP
where LOOP runs `<runtime> ... run ...` several times. The markers of one run:

  start     the runtime is exec'd
  reexec    it exec's itself again (from its read-only or sealed view)     [berth, crun]
  clone     first clone/clone3 after that (the container init)            [berth, crun]
  pivot     the container's pivot_root
  payload   execve of the container's program
  p.exit    the program has exited (includes tearing down its namespaces)
  end       the runtime has exited (after deleting the container)

usage: perf script -i FILE | phases.py RUNTIME_EXE_BASENAME PAYLOAD_PATH
Prints the median of each phase over the runs.
"""

import re
import statistics
import sys

exe, payload = sys.argv[1], sys.argv[2]
line_re = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[\d+\]\s+([\d.]+):\s+([\w:]+):\s*(.*)$")
runs, cur, pids = [], None, set()
for line in sys.stdin:
    m = line_re.match(line)
    if not m:
        continue
    pid, t, ev, rest = int(m.group(2)), float(m.group(3)) * 1e3, m.group(4), m.group(5)
    if ev == "sched:sched_process_exec":
        fn = re.search(r"filename=(\S+)", rest).group(1)
        if cur is None and fn.endswith("/" + exe):
            cur, pids = {"start": t, "root": pid}, {pid}
        elif cur is not None and pid == cur["root"] and "reexec" not in cur:
            cur["reexec"] = t
        elif cur is not None and pid in pids and fn == payload:
            cur["payload"], cur["payload_pid"] = t, pid
        continue
    if cur is None:
        continue
    if ev == "sched:sched_process_fork":
        parent = int(re.search(r"pid=(\d+)", rest).group(1))
        child = int(re.search(r"child_pid=(\d+)", rest).group(1))
        if parent in pids:
            pids.add(child)
    elif ev in ("syscalls:sys_enter_clone", "syscalls:sys_enter_clone3"):
        if pid in pids and "clone" not in cur:
            cur["clone"] = t
    elif ev == "syscalls:sys_enter_pivot_root" and pid in pids:
        cur.setdefault("pivot", t)
    elif ev == "sched:sched_process_exit":
        if pid == cur.get("payload_pid"):
            cur["p.exit"] = t
        if pid == cur["root"]:
            cur["end"] = t
            runs.append(cur)
            cur = None

marks = ["start", "reexec", "clone", "pivot", "payload", "p.exit", "end"]
print(f"{len(runs)} runs of {exe}; median ms of each phase (from the previous marker present)")
for i, b in enumerate(marks[1:], 1):
    vals, names = [], set()
    for r in runs:
        if b not in r:
            continue
        prev = next(m for m in reversed(marks[:i]) if m in r)
        vals.append(r[b] - r[prev])
        names.add(prev)
    if vals:
        print(f"  {'/'.join(sorted(names)):>8} -> {b:<8} {statistics.median(vals):7.2f} ms  (n={len(vals)})")
print(f"  {'total':>20} {statistics.median(r['end'] - r['start'] for r in runs):7.2f} ms")
