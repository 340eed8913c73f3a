"""Shared by the benchmarks/bench_packet_*.py question scripts: one ns-3 import, one row."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from dist_logreg.sim import ns3driver
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


def start() -> tuple:
    """Import ns-3 once; returns (flow engine, packet engine)."""
    ns3driver.load()
    print(f"loadavg at start {os.getloadavg()}", file=sys.stderr)
    return get_engine("flow"), get_engine("packet")


def job(spec: str, alg: str, nbytes: int, seed: int = 0, mode: str = "packed", **options) -> Job:
    fab = parse_fabric(spec)
    return Job(
        fab,
        place(fab.hosts, fab, 1, mode, seed),
        alg,
        nbytes,
        seed=seed,
        exact=True,
        options=options,
    )


def row(res) -> dict:
    p = res.extra["packet"]
    keep = (
        "wall_s",
        "drops",
        "ecn_marks",
        "lost",
        "retransmissions",
        "timeouts",
        "peak_queue_bytes",
    )
    out = {"time_s": res.time_s, **{k: p[k] for k in keep}}
    q = p["queue"]["links"]
    out["mean_queue_bytes"] = float(np.mean([np.mean(v) for v in q.values()])) if q else 0.0
    return out


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
