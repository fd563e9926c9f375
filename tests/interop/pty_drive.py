#!/usr/bin/env python3
"""Runs a command on a fresh pty, as a person at a terminal would, and talks to it.

    pty_drive.py [--timeout S] [--expect TEXT] [--send TEXT]... -- command args...

Each --expect waits until TEXT appeared in the output (since the previous expect); each --send
writes TEXT (with \\n and \\r escapes) to the terminal. Steps run in the order given. When they
are done, the output is read until the command exits. Prints everything the command wrote to
its terminal, then exits with the command's exit code (124 on a time-out, 125 on a failed
expect).
"""
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time


def main():
    argv = sys.argv[1:]
    timeout = 30.0
    steps = []
    while argv and argv[0] != "--":
        opt = argv.pop(0)
        val = argv.pop(0)
        if opt == "--timeout":
            timeout = float(val)
        elif opt in ("--expect", "--send"):
            steps.append((opt[2:], val.encode().decode("unicode_escape").encode()))
        else:
            sys.exit(f"pty_drive.py: unknown option {opt}")
    cmd = argv[1:]
    if not cmd:
        sys.exit("pty_drive.py: no command")
    deadline = time.monotonic() + timeout
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    # A real terminal has a size; clients pass it on to the container's pty.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    out = bytearray()
    seen = 0

    def read_some(wait):
        r, _, _ = select.select([fd], [], [], wait)
        if not r:
            return True
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            return False
        if not data:
            return False
        out.extend(data)
        return True

    status = 0
    open_ = True
    for kind, text in steps:
        if kind == "send":
            os.write(fd, text)
            continue
        while text not in out[seen:]:
            if time.monotonic() > deadline or not open_:
                sys.stdout.write(out.decode(errors="replace"))
                sys.stderr.write(f"pty_drive.py: never saw {text!r}\n")
                if open_:
                    os.kill(pid, 9)
                os.waitpid(pid, 0)
                sys.exit(125)
            open_ = read_some(0.1)
        seen = out.index(text, seen) + len(text)
    while open_ and time.monotonic() < deadline:
        open_ = read_some(0.1)
    if open_:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.stdout.write(out.decode(errors="replace"))
        sys.stderr.write("pty_drive.py: timed out\n")
        sys.exit(124)
    _, st = os.waitpid(pid, 0)
    status = os.waitstatus_to_exitcode(st)
    sys.stdout.write(out.decode(errors="replace"))
    sys.exit(status if status >= 0 else 128 - status)


main()
