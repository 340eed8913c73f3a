"""``cluster up --calibrate``: the TCP ceilings of each link class, stored in the state.

A shaped link does not give TCP its nominal rate (the bucket, the queue and the
acknowledgements that share the queue with data going the other way all take their
part), and an allreduce sends both ways at once. So ``--calibrate`` measures, per class,
one TCP stream one way and one stream each way at once, with iperf3 when it is installed
and a built-in probe (:mod:`dist_logreg.ops.cluster.probe`) otherwise. ``host``: two hosts
under one leaf (their path is two host links); ``uplink``: hosts under different leaves
(one flow takes one spine). Runs then report busbw as a percentage of the bidirectional
ceiling of the slowest class they cross.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import subprocess
import sys
import time

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster.state import Cluster, in_ns, spawn
from dist_logreg.units import rate_bits

PORT = 5201  # iperf3's; each host is its own namespace, so it is free


def classes(c: Cluster) -> dict[str, tuple[str, str]]:
    """``{class: (sending host, receiving host)}`` for the classes this topology has."""
    by_leaf: dict[int, list[str]] = {}
    for h in c.hosts:
        by_leaf.setdefault(c.leaf_of[h], []).append(h)
    out = {}
    same = [hs for hs in by_leaf.values() if len(hs) >= 2]
    if same:
        out["host"] = (same[0][0], same[0][1])
    if len(by_leaf) >= 2:
        out["uplink" if c.spec.topology != "flat" else "host"] = (by_leaf[0][0], by_leaf[1][0])
    return out


def _run(ns: str, args: list[str]) -> subprocess.Popen:
    return spawn([*in_ns(ns), *args])  # ended on every exit path (state.end_children)


def _ready(proc: subprocess.Popen, word: str, timeout: float = 10.0) -> str:
    """The first line of ``proc``'s output that contains ``word`` (a server is listening)."""
    fd, seen = proc.stdout.fileno(), b""  # raw reads: select() cannot see a reader's buffer
    end = time.monotonic() + timeout
    while time.monotonic() < end and select.select([fd], [], [], end - time.monotonic())[0]:
        chunk = os.read(fd, 4096)
        seen += chunk
        for line in seen.decode(errors="replace").splitlines():
            if word in line:
                return line
        if not chunk:
            break
    proc.kill()
    raise UsageError(f"calibration: `{' '.join(proc.args)}` did not start: {proc.stderr.read()}")


def _finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise UsageError(
            f"calibration: `{' '.join(proc.args)}` did not finish in {timeout:.0f} s"
        ) from None
    if proc.returncode != 0:
        raise UsageError(f"calibration: `{' '.join(proc.args)}` failed: {err.strip()[-500:]}")
    return out


def _builtin(c: Cluster, a: str, b: str, seconds: float, bidir: bool) -> list[float]:
    probe = [sys.executable, "-m", "dist_logreg.ops.cluster.probe"]
    server = _run(b, [*probe, "serve", "2" if bidir else "1"])
    port = _ready(server, "port").split()[-1]
    down = "1" if bidir else "0"
    client = _run(a, [*probe, "client", c.addresses[b], port, str(seconds), "1", down])
    got = [json.loads(_finish(server, seconds + 30).splitlines()[-1])]
    if bidir:
        got.append(json.loads(_finish(client, seconds + 30)))
    else:
        _finish(client, seconds + 30)
    return [g["bytes"] * 8 / g["seconds"] / 1e9 if g["seconds"] else 0.0 for g in got]


def _iperf3(c: Cluster, a: str, b: str, seconds: float, bidir: bool) -> list[float]:
    server = _run(b, ["iperf3", "-s", "-1", "--forceflush", "-p", str(PORT)])
    _ready(server, "listening")
    whole = str(max(1, math.ceil(seconds)))  # iperf3 takes whole seconds (0 is forever)
    args = ["iperf3", "-c", c.addresses[b], "-p", str(PORT), "-t", whole, "-J"]
    client = _run(a, [*args, *(["--bidir"] if bidir else [])])
    end = json.loads(_finish(client, seconds + 30))["end"]
    _finish(server, 30)
    got = [end["sum_received"]["bits_per_second"] / 1e9]
    if bidir:
        got.append(end["sum_received_bidir_reverse"]["bits_per_second"] / 1e9)
    return got


def calibrate(c: Cluster, seconds: float = 2.0, tool: str = "auto", say=print) -> dict:
    """Measure every class; returns what ``state.json`` stores under ``calibration``."""
    if tool == "auto":
        tool = "iperf3" if shutil.which("iperf3") else "builtin"
    measure = _iperf3 if tool == "iperf3" else _builtin
    result = {"tool": tool, "seconds": seconds, "streams_per_direction": 1, "classes": {}}
    for cls, (a, b) in classes(c).items():
        one = measure(c, a, b, seconds, bidir=False)[0]
        both = measure(c, a, b, seconds, bidir=True)
        result["classes"][cls] = {
            "between": f"{a[len(c.name) + 1 :]}>{b[len(c.name) + 1 :]}",
            "one_way_Gbps": one,
            "bidir_Gbps": sum(both) / 2,
            "bidir_each_Gbps": both,
        }
        say(
            f"  calibrated {cls:<7} one-way {one:.3f} Gbit/s, bidirectional "
            f"{both[0]:.3f} + {both[1]:.3f} Gbit/s ({tool}, {seconds:g} s each)"
        )
    return result


def ceiling(c: Cluster, hosts_used: list[str]) -> tuple[str, float] | None:
    """``(class, Gbit/s per direction)``: the slowest calibrated class ``hosts_used`` cross."""
    cal = c.calibration.get("classes", {})
    crossed = ["host"] if "host" in cal else []
    if len({c.leaf_of[h] for h in hosts_used}) > 1 and "uplink" in cal:
        crossed.append("uplink")
    if not crossed:
        return None

    # The nominally slower class is the bottleneck; measurements only break ties (a probe's
    # noise must not make a faster class look like the limit).
    def nominal(cls: str) -> float:
        rate = c.spec.uplink_rate if cls == "uplink" else c.spec.rate
        return rate_bits(rate) if rate else float("inf")

    slowest = min(crossed, key=lambda k: (nominal(k), cal[k]["bidir_Gbps"]))
    return slowest, cal[slowest]["bidir_Gbps"]
