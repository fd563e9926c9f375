#!/usr/bin/env python3
"""The engine benchmark's measurements (run by bench/engine/run.sh, which starts the daemons).

Every engine is driven through its own CLI (and berthd also through the docker CLI), the
commands of one scenario timed in interleaved rounds so that the machine's noise hits all of
them alike; the report gives medians and the median of the per-round ratios.

Environment (set by run.sh): BERTH, BERTH_HOST, BERTH_IMAGE, BERTHD_PID, BERTH_EXEC_ROOT,
DOCKER_CLI, DK_HOST, DK_IMAGE, DK_ROOT, DOCKERD_PID, CONTAINERD_PID, PM_CMD (JSON argv),
PM_RUN (JSON argv), PM_IMAGE, PM_ROOT, ROUNDS, WARMUP, STARTS, OUT.
"""

import json
import os
import statistics
import subprocess
import sys
import time

E = os.environ
ROUNDS = int(E.get("ROUNDS", "20"))
WARMUP = int(E.get("WARMUP", "3"))
STARTS = int(E.get("STARTS", "50"))
BERTH = E["BERTH"]
DOCKER = E["DOCKER_CLI"]
PM = json.loads(E["PM_CMD"])
PM_RUN = json.loads(E["PM_RUN"])
B_ENV = {"BERTH_HOST": E["BERTH_HOST"]}
DB_ENV = {"DOCKER_HOST": E["BERTH_HOST"]}  # the docker CLI against berthd
DK_ENV = {"DOCKER_HOST": E["DK_HOST"]}

# (name, argv prefix, env, image): one entry per engine and client.
ENGINES = {
    "berth": ([BERTH], B_ENV, E["BERTH_IMAGE"], []),
    "docker CLI → berthd": ([DOCKER], DB_ENV, E["BERTH_IMAGE"], []),
    "docker": ([DOCKER], DK_ENV, E["DK_IMAGE"], []),
    "podman": (PM, {}, E["PM_IMAGE"], PM_RUN),
}

report = []


def out(line=""):
    print(line, flush=True)
    report.append(line)


def run(argv, env, check=True):
    full = dict(os.environ)
    full.update(env)
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = (time.perf_counter() - t0) * 1000
    if check and p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(argv)}\n{p.stderr}")
    return dt, p.stdout


def engine_cmd(name, *args, run_opts=True):
    prefix, env, image, extra = ENGINES[name]
    argv = list(prefix)
    if args and args[0] == "run" and run_opts:
        argv += ["run", *extra, *args[1:]]
    else:
        argv += list(args)
    return [a.replace("{IMG}", image) for a in argv], env


def interleave(title, cmds, ratios):
    """cmds: [(label, argv, env)]; ratios: [(num label, den label)]."""
    times = {label: [] for label, _, _ in cmds}
    for r in range(WARMUP + ROUNDS):
        for label, argv, env in cmds:
            dt, _ = run(argv, env)
            if r >= WARMUP:
                times[label].append(dt)
    out(f"### {title}")
    out()
    out(f"{ROUNDS} interleaved rounds after {WARMUP} warm-up rounds.")
    out()
    out("| command | median ms | min | max |")
    out("|---|---|---|---|")
    for label, argv, _ in cmds:
        t = times[label]
        out(f"| {label}: `{' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv[-8:]))}` "
            f"| {statistics.median(t):.1f} | {min(t):.1f} | {max(t):.1f} |")
    out()
    for a, b in ratios:
        per_round = [x / y for x, y in zip(times[a], times[b])]
        out(f"- {a} / {b} = **{statistics.median(per_round):.3f}** (median of per-round ratios)")
    out()
    return times


def pids_of(substr_any, exe_name):
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        first = cmd.split(" ", 1)[0]
        if os.path.basename(first) == exe_name and any(s in cmd for s in substr_any):
            found.append(int(p))
    return found


def mem_kib(pid):
    rss = pss = 0
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def mem_line(label, pids, per=1):
    rss = sum(mem_kib(p)[0] for p in pids)
    pss = sum(mem_kib(p)[1] for p in pids)
    out(f"| {label} | {len(pids)} | {rss / 1024 / per:.2f} | {pss / 1024 / per:.2f} |")
    return rss, pss


def main():
    out(f"- rounds {ROUNDS}, warm-up {WARMUP}, detached starts {STARTS}; "
        f"load at start {open('/proc/loadavg').read().split()[:3]}")
    out()

    # 1. Idle daemons.
    out("### Idle daemons (no containers)")
    out()
    out("| process | count | RSS MiB | PSS MiB |")
    out("|---|---|---|---|")
    b_idle = mem_line("berthd", [int(E["BERTHD_PID"])])
    d_idle = mem_line("dockerd + containerd", [int(E["DOCKERD_PID"]), int(E["CONTAINERD_PID"])])
    out()
    out(f"- berthd / (dockerd + containerd) RSS = **{b_idle[0] / d_idle[0]:.3f}**")
    out()

    # 2. run --rm true without a network.
    cmds = []
    for name in ENGINES:
        argv, env = engine_cmd(name, "run", "--rm", "--network", "none", "{IMG}", "true")
        cmds.append((name, argv, env))
    interleave("`run --rm --network none busybox true`", cmds,
               [("berth", "docker"), ("docker CLI → berthd", "docker"), ("berth", "podman")])

    # 3. The default bridge's cost in berth.
    cmds = [
        ("berth none", *engine_cmd("berth", "run", "--rm", "--network", "none", "{IMG}", "true")),
        ("berth bridge", *engine_cmd("berth", "run", "--rm", "{IMG}", "true")),
    ]
    t = interleave("berth: `run --rm busybox true` on the default bridge and with `--network none`",
                   cmds, [("berth bridge", "berth none")])
    diff = [b - n for b, n in zip(t["berth bridge"], t["berth none"])]
    out(f"- bridge − none = **{statistics.median(diff):.1f} ms** (median of per-round differences)")
    out()

    # 4. Detached starts, then a listing and memory with STARTS containers.
    out(f"### {STARTS} detached starts (`run -d --network none busybox sleep 3600`, one after another)")
    out()
    out("| engine | seconds | starts/s |")
    out("|---|---|---|")
    rates = {}
    for name in ("berth", "docker", "podman"):
        t0 = time.perf_counter()
        for _ in range(STARTS):
            argv, env = engine_cmd(name, "run", "-d", "--network", "none", "{IMG}", "sleep", "3600")
            run(argv, env)
        dt = time.perf_counter() - t0
        rates[name] = STARTS / dt
        out(f"| {name} | {dt:.2f} | {rates[name]:.2f} |")
    out()
    out(f"- berth / docker starts per second = **{rates['berth'] / rates['docker']:.2f}×**")
    out()

    cmds = []
    for name in ("berth", "docker CLI → berthd", "docker"):
        argv, env = engine_cmd(name, "ps", "-a")
        cmds.append((name, argv, env))
    interleave(f"`ps -a` with {STARTS} containers (whole command)", cmds,
               [("berth", "docker"), ("docker CLI → berthd", "docker")])

    out(f"### Memory with {STARTS} running containers per engine")
    out()
    out("| process | count | RSS MiB (per process) | PSS MiB (per process) |")
    out("|---|---|---|---|")
    ex = E["BERTH_EXEC_ROOT"]
    shims = pids_of([ex], "berth-shim")
    # One shim process per container (its log writer is a thread; older shims forked a
    # writer process from the same binary, which this count would include).
    mem_line("berth-shim", shims, per=max(len(shims), 1))
    dk_shims = pids_of([E["DK_ROOT"]], "containerd-shim-runc-v2")
    mem_line("containerd-shim-runc-v2", dk_shims, per=max(len(dk_shims), 1))
    conmons = pids_of([E["PM_ROOT"]], "conmon")
    mem_line("conmon", conmons, per=max(len(conmons), 1))
    out()
    out("| per container | RSS MiB | PSS MiB |")
    out("|---|---|---|")
    for label, pids, n in (("berth (berth-shim)", shims, STARTS),
                           ("docker (containerd-shim-runc-v2)", dk_shims, STARTS),
                           ("podman (conmon)", conmons, STARTS)):
        rss = sum(mem_kib(p)[0] for p in pids)
        pss = sum(mem_kib(p)[1] for p in pids)
        out(f"| {label} | {rss / 1024 / n:.2f} | {pss / 1024 / n:.2f} |")
    out()
    out("| daemon with the containers | count | RSS MiB | PSS MiB |")
    out("|---|---|---|---|")
    mem_line("berthd", [int(E["BERTHD_PID"])])
    mem_line("dockerd + containerd", [int(E["DOCKERD_PID"]), int(E["CONTAINERD_PID"])])
    out()

    with open(E["OUT"], "a") as f:
        f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
