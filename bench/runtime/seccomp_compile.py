#!/usr/bin/env python3
"""Times libseccomp alone compiling a config's `linux.seccomp` section (through ctypes, the
system's libseccomp.so.2): with the native architecture only or with the config's others too,
and with or without the binary-tree optimisation (SCMP_FLTATR_CTL_OPTIMIZE = 2) that
berth-runtime enables for long rule sets. Rules are added as the runtimes do (one per syscall
name, unknown names skipped) and the program is exported to /dev/null.

usage: seccomp_compile.py CONFIG.json [REPEATS]   -> median ms of each variant
"""

import ctypes
import json
import os
import sys
import time

lib = ctypes.CDLL("libseccomp.so.2")
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
lib.seccomp_release.argtypes = [ctypes.c_void_p]


class Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
       "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
ARCHES = {"SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_X32": 0x4000003E, "SCMP_ARCH_X86_64": None}
FLTATR_CTL_OPTIMIZE = 8


def action(name, errno):
    return {"SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_ERRNO": 0x00050000 | (errno & 0xFFFF),
            "SCMP_ACT_KILL": 0, "SCMP_ACT_LOG": 0x7FFC0000}[name]


def build(sc, optimize, extra_arches):
    ctx = lib.seccomp_init(action(sc["defaultAction"], sc.get("defaultErrnoRet", 1)))
    for a in extra_arches:
        lib.seccomp_arch_add(ctx, ARCHES[a])
    for r in sc["syscalls"]:
        act = action(r["action"], r.get("errnoRet", 1))
        args = r.get("args") or []
        arr = (Cmp * max(1, len(args)))(*[Cmp(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in args])
        for n in r["names"]:
            nr = lib.seccomp_syscall_resolve_name(n.encode())
            if nr >= 0:
                lib.seccomp_rule_add_array(ctx, act, nr, len(args), arr if args else None)
    if optimize:
        lib.seccomp_attr_set(ctx, FLTATR_CTL_OPTIMIZE, 2)
    fd = os.open("/dev/null", os.O_WRONLY)
    lib.seccomp_export_bpf(ctx, fd)
    os.close(fd)
    lib.seccomp_release(ctx)


def main():
    sc = json.load(open(sys.argv[1]))["linux"]["seccomp"]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    extra = [a for a in sc.get("architectures", []) if ARCHES.get(a)]
    for optimize in (False, True):
        for arches in ([], extra):
            ts = []
            for _ in range(reps):
                t = time.perf_counter()
                build(sc, optimize, arches)
                ts.append((time.perf_counter() - t) * 1e3)
            ts.sort()
            print(f"libseccomp: {1 + len(arches)} architecture(s), binary tree {'on ' if optimize else 'off'}: "
                  f"median {ts[len(ts) // 2]:.1f} ms of {reps}")


if __name__ == "__main__":
    main()
