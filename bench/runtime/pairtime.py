#!/usr/bin/env python3
"""Paired whole-process timer for the runtime benchmark.

Runs several commands in interleaved rounds (A B C, B C A, C A B, ... : the order rotates each
round so that no command always follows the same one), after warm-up rounds that are not
counted. Each run is spawned with posix_spawn and reaped with wait4, which gives, besides the
wall time, the CPU time (user + sys) and the peak RSS (ru_maxrss) of the whole process tree the
command left behind: the runtime, the processes it forked or re-exec'd, and the container.

Peak RSS is measured in a separate, shorter interleaved pass through GNU time (`/usr/bin/time
-f %M`), not from the timed runs: posix_spawn from Python is a vfork, and the kernel records
the high-water RSS of the mm a process leaves at exec, which would be the timer's own ~14 MiB.
GNU time forks from a ~2 MiB process; the `/bin/true` row under it shows that floor.

Input: a JSON plan on the command line (a file path):
  {"title": str, "rounds": int, "warmup": int, "rss_rounds": int,
   "commands": [{"name": str, "argv": [str], "clear": [path, ...]}],
   "ratios": [[name_a, name_b], ...]}
`clear` lists directories removed (untimed) before every run of that command, e.g. a cache.

Every run must exit 0: a failing run stops the benchmark with its stderr, because timing
failures measures nothing. Prints a Markdown table and the medians of the per-round ratios;
writes the raw samples as JSON next to the plan (`<plan>.out.json`).
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time


def run_once(argv, errpath):
    fa = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, errpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    code = os.waitstatus_to_exitcode(status)
    return code, (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3, ru.ru_maxrss


def rss_once(argv, errpath):
    fd, out = tempfile.mkstemp(prefix="bench-rss-")
    os.close(fd)
    try:
        code, _, _, _ = run_once(["/usr/bin/time", "-f", "%M", "-o", out, *argv], errpath)
        with open(out) as f:
            kib = int(f.read().split()[-1])
    finally:
        os.unlink(out)
    return code, kib


def fail(c, code, errpath):
    with open(errpath, errors="replace") as f:
        err = f.read().strip()
    sys.exit(f"{c['name']} exited {code}: {' '.join(c['argv'])}\n{err}")


def main():
    plan_path = sys.argv[1]
    with open(plan_path) as f:
        plan = json.load(f)
    cmds = plan["commands"]
    rounds, warmup = int(plan["rounds"]), int(plan["warmup"])
    rss_rounds = int(plan.get("rss_rounds", 0))
    errfd, errpath = tempfile.mkstemp(prefix="bench-stderr-")
    os.close(errfd)
    samples = {c["name"]: {"wall": [], "cpu": [], "rss": []} for c in cmds}
    per_round = []
    k = len(cmds)
    try:
        for r in range(warmup + rounds):
            this_round = {}
            for c in (cmds[(r + i) % k] for i in range(k)):
                for d in c.get("clear", []):
                    shutil.rmtree(d, ignore_errors=True)
                code, wall, cpu, _ = run_once(c["argv"], errpath)
                if code != 0:
                    fail(c, code, errpath)
                if r >= warmup:
                    samples[c["name"]]["wall"].append(wall)
                    samples[c["name"]]["cpu"].append(cpu)
                    this_round[c["name"]] = wall
            if r >= warmup:
                per_round.append(this_round)
        floor = {"name": "/bin/true (GNU time floor)", "argv": ["/bin/true"]}
        floor_rss = []
        for r in range(rss_rounds):
            for c in [*(cmds[(r + i) % k] for i in range(k)), floor]:
                for d in c.get("clear", []):
                    shutil.rmtree(d, ignore_errors=True)
                code, kib = rss_once(c["argv"], errpath)
                if code != 0:
                    fail(c, code, errpath)
                (floor_rss if c is floor else samples[c["name"]]["rss"]).append(kib)
    finally:
        os.unlink(errpath)

    load = open("/proc/loadavg").read().split()[:3]
    print(f"\n### {plan['title']}\n")
    print(
        f"{rounds} interleaved rounds after {warmup} warm-up rounds (peak RSS: {rss_rounds} more rounds "
        f"under GNU time); load average at the end: {' '.join(load)}\n"
    )
    print("| command | median ms | min ms | max ms | CPU ms (median) | peak RSS MiB (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    med = {}
    for c in cmds:
        s = samples[c["name"]]
        med[c["name"]] = statistics.median(s["wall"])
        rss = f"{statistics.median(s['rss']) / 1024:.1f}" if s["rss"] else "-"
        print(
            f"| {c['name']} | {med[c['name']]:.1f} | {min(s['wall']):.1f} | {max(s['wall']):.1f} "
            f"| {statistics.median(s['cpu']):.1f} | {rss} |"
        )
    if floor_rss:
        print(f"| {floor['name']} | | | | | {statistics.median(floor_rss) / 1024:.1f} |")
    ratios = {}
    if plan.get("ratios"):
        print("\n| ratio of wall times | median of per-round ratios | ratio of medians |")
        print("|---|---:|---:|")
        for a, b in plan["ratios"]:
            ratios[f"{a}/{b}"] = statistics.median(x[a] / x[b] for x in per_round)
            print(f"| {a} / {b} | **{ratios[f'{a}/{b}']:.2f}** | {med[a] / med[b]:.2f} |")
    with open(plan_path + ".out.json", "w") as f:
        json.dump({"plan": plan, "samples": samples, "per_round": per_round, "ratios": ratios, "load": load}, f)


if __name__ == "__main__":
    main()
