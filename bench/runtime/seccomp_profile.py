#!/usr/bin/env python3
"""Makes an OCI config.json Docker-like: Docker's default capabilities and its seccomp profile.

The capability sets become Docker's default 14 capabilities. The `linux.seccomp` section is
derived, at run time, from a Docker-format seccomp profile (Docker's
default.json, or podman's /usr/share/containers/seccomp.json, which has the same format) the
way dockerd does it for a container on an x86-64 host: rules are kept when their
`includes`/`excludes` arches and capabilities match (Docker's default capabilities)
and `minKernel` is met; the architectures are x86-64 and its sub-architectures from `archMap`.

usage: seccomp_profile.py DOCKER_PROFILE CONFIG_IN CONFIG_OUT [ROOTFS]
ROOTFS, when given, becomes root.path (so a second bundle can share the first one's rootfs).
Prints the number of syscall rules, entries and architectures.
"""

import json
import os
import sys

ARCH = "amd64"  # Docker's name for this host's architecture
NATIVE = "SCMP_ARCH_X86_64"
DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]


def kernel_at_least(v):
    want = [int(x) for x in v.split(".")[:2]]
    have = [int(x) for x in os.uname().release.split("-")[0].split(".")[:2]]
    return have >= want


def main():
    prof_path, cfg_in, cfg_out = sys.argv[1:4]
    prof = json.load(open(prof_path))
    cfg = json.load(open(cfg_in))
    caps = set(DOCKER_CAPS)
    cfg["process"]["capabilities"] = {k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted")}

    arches = [NATIVE]
    for m in prof.get("archMap") or []:
        if m["architecture"] == NATIVE:
            arches += m.get("subArchitectures") or []

    rules = []
    for s in prof["syscalls"]:
        inc, exc = s.get("includes") or {}, s.get("excludes") or {}
        if inc.get("arches") and ARCH not in inc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            continue
        if inc.get("minKernel") and not kernel_at_least(inc["minKernel"]):
            continue
        if ARCH in (exc.get("arches") or []) or caps & set(exc.get("caps") or []):
            continue
        names = s.get("names") or ([s["name"]] if s.get("name") else [])
        rule = {"names": names, "action": s["action"]}
        if s.get("args"):
            rule["args"] = [
                {k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a and a[k] is not None}
                for a in s["args"]
            ]
        if s.get("errnoRet") is not None:
            rule["errnoRet"] = s["errnoRet"]
        rules.append(rule)

    sc = {"defaultAction": prof["defaultAction"], "architectures": arches, "syscalls": rules}
    if prof.get("defaultErrnoRet") is not None:
        sc["defaultErrnoRet"] = prof["defaultErrnoRet"]
    cfg.setdefault("linux", {})["seccomp"] = sc
    if len(sys.argv) > 4:
        cfg["root"]["path"] = sys.argv[4]
    with open(cfg_out, "w") as f:
        json.dump(cfg, f, indent=2)
    n = sum(len(r["names"]) for r in rules)
    print(f"{n} syscall rules in {len(rules)} entries, {len(arches)} architectures ({', '.join(arches)})")


if __name__ == "__main__":
    main()
