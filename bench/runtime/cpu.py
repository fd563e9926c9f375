#!/usr/bin/env python3
"""On-CPU time of a runtime's process tree by what it was doing, from `perf script` output of
`perf record -F HZ -e cpu-clock -g -- LOOP` (LOOP runs the runtime RUNS times).

Each sample goes to the outermost system call it was in (`mkdir`, `mount`, `clone`, ...),
else to page faults, else to the user-space object it was in (the runtime, ld.so, libc,
libseccomp). Prints milliseconds per run for the largest categories.

usage: perf script -i FILE | cpu.py HZ RUNS COMM [COMM ...]
"""

import collections
import re
import sys

hz, runs = float(sys.argv[1]), int(sys.argv[2])
comms = set(sys.argv[3:])
head = re.compile(r"^(\S.*?)\s+(\d+)\s+")
cat = collections.Counter()
cur_comm, frames = None, []


def flush():
    if cur_comm is None or not any(cur_comm.startswith(c[:15]) for c in comms):
        return
    what = None
    for sym, dso in reversed(frames):  # outermost first
        m = re.match(r"(?:__x64_sys|__do_sys|__se_sys|ksys)_(\w+)", sym)
        if m:
            what = "syscall " + m.group(1)
            break
        if sym in ("do_exit", "do_group_exit"):
            what = "process exit (mm, files, namespaces)"
            break
    if what is None:
        if any("exc_page_fault" in s for s, _ in frames):
            what = "page faults"
        elif frames:
            sym, dso = frames[0]
            name = dso.strip().strip("()").rsplit("/", 1)[-1]
            if "kernel" in dso:
                what = "kernel (other)"
            else:
                # berth-runtime after its re-exec runs from a detached mount: perf sees "/".
                what = "user " + (name or "runtime binary (from its read-only view)")
        else:
            what = "unknown"
    cat[what] += 1


for line in sys.stdin:
    if not line.strip():
        continue
    if not line.startswith((" ", "\t")):
        flush()
        m = head.match(line)
        cur_comm, frames = (m.group(1) if m else None), []
        continue
    parts = line.split(None, 2)
    if len(parts) >= 2:
        frames.append((re.sub(r"\+0x[0-9a-f]+$", "", parts[1]), parts[-1]))
flush()

total = sum(cat.values())
print(f"on-CPU per run: {total / hz / runs * 1e3:.2f} ms ({total} samples at {hz:.0f} Hz over {runs} runs)")
for what, n in cat.most_common(20):
    print(f"  {n / hz / runs * 1e3:6.2f} ms  {100 * n / total:4.1f}%  {what}")
