#!/usr/bin/env python3
"""Runs a command on a fresh pseudo-terminal (24x80) and scripts it.

usage: pty_drive.py TIMEOUT STEP... -- COMMAND...
  STEP is "expect:TEXT" (wait until TEXT appeared in the output since the last match) or
  "send:TEXT" (type TEXT; \\r, \\x10 style escapes are decoded).
Prints everything the command wrote; exits with the command's exit code, or 124 when a
step timed out (the command is then killed).
"""
import os, pty, sys, time, select, signal, struct, fcntl, termios

def main():
    timeout = float(sys.argv[1])
    i = sys.argv.index("--")
    steps, cmd = sys.argv[2:i], sys.argv[i + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    out = b""
    seen = 0
    deadline = time.time() + timeout

    def read_some(wait):
        nonlocal out
        r, _, _ = select.select([fd], [], [], wait)
        if r:
            try:
                d = os.read(fd, 65536)
            except OSError:
                return False
            if not d:
                return False
            out += d
        return True

    for st in steps:
        kind, _, text = st.partition(":")
        data = text.encode().decode("unicode_escape").encode("latin-1")
        if kind == "send":
            time.sleep(0.05)
            os.write(fd, data)
        elif kind == "expect":
            while data not in out[seen:]:
                if time.time() > deadline or not read_some(0.1):
                    if data in out[seen:]:
                        break
                    sys.stdout.write(out.decode(errors="replace"))
                    sys.stdout.write("\n[pty_drive: timed out waiting for %r]\n" % text)
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    sys.exit(124)
            seen = out.index(data, seen) + len(data)
    while time.time() < deadline:
        if not read_some(0.1):
            break
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid:
            while read_some(0.05):
                pass
            break
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0) if not 'wpid' in dir() or not wpid else (wpid, status)
    sys.stdout.write(out.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status) if status is not None else 124)

main()
