#!/usr/bin/env python3
"""Times `docker commit` and `docker diff` on two Engine API daemons in interleaved rounds.

usage: bench.py BERTH_SOCK DOCKER_SOCK ROUNDS FILES

Each round, for each daemon (the order alternates): a container from busybox:bench writes FILES
small files into a new directory and exits; then GET /containers/{id}/changes and
POST /commit are timed (wall time of the request, from sending it to the end of the answer);
the container and the image are removed (untimed). Prints Markdown tables: min/median/max per
daemon and the median of the per-round ratios berth/docker.
"""
import http.client
import json
import socket
import statistics
import sys
import time


class UnixConn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=600)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        self.sock = s


def call(sock, method, path, body=None):
    c = UnixConn(sock)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    t = time.perf_counter()
    c.request(method, "/v1.41" + path, body=data, headers=headers)
    r = c.getresponse()
    raw = r.read()
    dt = time.perf_counter() - t
    c.close()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {raw[:300]!r}")
    return dt, (json.loads(raw) if raw.strip() else None)


def one(sock, files, round_no):
    script = (
        f"mkdir /d && i=0; while [ $i -lt {files} ]; do echo $i > /d/f$i; i=$((i+1)); done"
    )
    _, c = call(sock, "POST", "/containers/create", {
        "Image": "busybox:bench",
        "Cmd": ["sh", "-c", script],
        "HostConfig": {"NetworkMode": "none"},
    })
    cid = c["Id"]
    call(sock, "POST", f"/containers/{cid}/start")
    _, w = call(sock, "POST", f"/containers/{cid}/wait")
    assert w["StatusCode"] == 0, w
    t_diff, changes = call(sock, "GET", f"/containers/{cid}/changes")
    n = len(changes or [])
    assert n >= files, f"diff listed {n} changes"
    t_commit, img = call(sock, "POST", f"/commit?container={cid}&repo=bench&tag=r{round_no}")
    call(sock, "DELETE", f"/containers/{cid}?force=1")
    call(sock, "DELETE", f"/images/{img['Id']}?force=1")
    return t_diff, t_commit


def main():
    berth, docker, rounds, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    res = {"berth": {"diff": [], "commit": []}, "docker": {"diff": [], "commit": []}}
    socks = {"berth": berth, "docker": docker}
    one(berth, files, "warm")
    one(docker, files, "warm")
    for r in range(rounds):
        order = ["berth", "docker"] if r % 2 == 0 else ["docker", "berth"]
        for name in order:
            d, c = one(socks[name], files, r)
            res[name]["diff"].append(d)
            res[name]["commit"].append(c)
    ms = lambda xs: [x * 1000 for x in xs]
    print(f"{rounds} interleaved rounds; wall time of the API request in ms.\n")
    print("| operation | daemon | min | median | max |")
    print("|---|---|---:|---:|---:|")
    for op in ("commit", "diff"):
        for name in ("berth", "docker"):
            xs = ms(res[name][op])
            print(f"| {op} | {name} | {min(xs):.1f} | {statistics.median(xs):.1f} | {max(xs):.1f} |")
    print("\n| median of per-round ratios | berth / docker |")
    print("|---|---:|")
    for op in ("commit", "diff"):
        ratios = [b / d for b, d in zip(res["berth"][op], res["docker"][op])]
        print(f"| {op} | {statistics.median(ratios):.3f} |")


if __name__ == "__main__":
    main()
