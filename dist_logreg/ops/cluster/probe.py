"""A small TCP throughput probe, run inside the emulated hosts (when iperf3 is missing).

::

    python -m dist_logreg.ops.cluster.probe serve STREAMS      # prints "port N", then JSON
    python -m dist_logreg.ops.cluster.probe client ADDR PORT SECONDS UP DOWN

The client opens UP connections on which it sends and DOWN on which the server sends, each
for SECONDS. Each side prints what it received as JSON: ``{"bytes": B, "seconds": S}``,
S from the first connection accepted or opened to the last byte received.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

CHUNK = b"\0" * (1 << 20)


def _pump(sock: socket.socket, seconds: float) -> None:
    end = time.monotonic() + seconds
    with sock:
        while time.monotonic() < end:
            sock.sendall(CHUNK)


def _drain(sock: socket.socket, got: list[int], last: list[float]) -> None:
    with sock:
        while data := sock.recv(1 << 20):
            got.append(len(data))
        last.append(time.monotonic())


def _report(threads, got, last, start) -> None:
    for t in threads:
        t.join()
    seconds = (max(last) - start) if last else 0.0
    print(json.dumps({"bytes": sum(got), "seconds": seconds}), flush=True)


def serve(streams: int) -> None:
    srv = socket.create_server(("0.0.0.0", 0))
    print(f"port {srv.getsockname()[1]}", flush=True)
    got, last, threads, start = [], [], [], None
    for _ in range(streams):
        conn, _ = srv.accept()
        start = start or time.monotonic()
        mode, seconds = conn.recv(16, socket.MSG_WAITALL).decode().split()
        if mode == "up":
            threads.append(threading.Thread(target=_drain, args=(conn, got, last)))
        else:
            threads.append(threading.Thread(target=_pump, args=(conn, float(seconds))))
        threads[-1].start()
    _report(threads, got, last, start)


def client(addr: str, port: int, seconds: float, up: int, down: int) -> None:
    got, last, threads = [], [], []
    start = time.monotonic()
    for mode in ["up"] * up + ["dn"] * down:
        sock = socket.create_connection((addr, port), timeout=30)
        sock.sendall(f"{mode} {seconds}".ljust(16).encode())
        if mode == "up":
            threads.append(threading.Thread(target=_pump, args=(sock, seconds)))
        else:
            threads.append(threading.Thread(target=_drain, args=(sock, got, last)))
    for t in threads:
        t.start()
    _report(threads, got, last, start)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    else:
        client(
            sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        )
