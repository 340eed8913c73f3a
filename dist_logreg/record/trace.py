"""The timeline: clock alignment across ranks and the Chrome trace file (``--trace``).

Each rank's clock (``perf_counter_ns``: monotonic, arbitrary origin per host) is mapped
onto rank 0's by a few ping-pongs at start-up (Cristian's algorithm): rank r sends its time
``t1``, rank 0 answers with its own ``t2``, rank r reads ``t3`` on arrival; then
``offset = t2 - (t1 + t3) / 2``, within ``+-(t3 - t1) / 2``. The round with the smallest
round trip is kept. Clock drift during the run is not corrected.
"""

from __future__ import annotations

import json
from pathlib import Path
from time import perf_counter_ns

import numpy as np

from dist_logreg.files import write_atomically

ROUNDS = 16


def clock_offset(comm, rounds: int = ROUNDS) -> tuple[int, int]:
    """Collective: ``(offset_ns, error_ns)`` to add to this rank's clock to get rank 0's."""
    rank, size = comm.Get_rank(), comm.Get_size()
    stamp = np.zeros(1, dtype=np.int64)
    best = (0, 0) if rank == 0 else (0, np.iinfo(np.int64).max)
    if rank == 0:
        for peer in range(1, size):
            for _ in range(rounds):
                comm.Recv(stamp, peer, 77)
                stamp[0] = perf_counter_ns()
                comm.Send(stamp, peer, 77)
    else:
        for _ in range(rounds):
            t1 = perf_counter_ns()
            stamp[0] = t1
            comm.Send(stamp, 0, 77)
            comm.Recv(stamp, 0, 77)
            t3 = perf_counter_ns()
            half_rtt = (t3 - t1) // 2
            if half_rtt < best[1]:
                best = (int(stamp[0]) - (t1 + t3) // 2, half_rtt)
    comm.Barrier()
    return best


def clock_sync(per_rank: list[dict]) -> dict:
    """How the ranks' clocks were aligned: each offset to rank 0 and its error bound."""
    return {
        "method": "ping-pong with rank 0 at start-up, smallest round trip of "
        f"{ROUNDS}; offsets fixed for the run (drift not corrected)",
        "offset_ns": [r["clock_offset_ns"] for r in per_rank],
        "error_ns": [r["clock_error_ns"] for r in per_rank],
    }


def write_trace(path: Path, per_rank: list[dict], algorithm: str, bucketed: bool) -> dict:
    """Rank 0: write ``trace.json`` from the gathered records; returns the clock-sync report.

    Each rank is a process in the viewer, with two tracks: ``step`` (data, compute, comm or
    compute+buckets, update) and ``allreduce`` (every call, with bytes and algorithm).
    """
    starts = [int(r["marks"][0, 0]) + r["clock_offset_ns"] for r in per_rank if r["marks"].size]
    origin = min(starts, default=0)
    events: list[dict] = []

    def span(rank: int, tid: int, name: str, t0: int, t1: int, off: int, args: dict) -> None:
        events.append(
            {
                "name": name,
                "ph": "X",
                "pid": rank,
                "tid": tid,
                "ts": (t0 + off - origin) / 1e3,
                "dur": max(t1 - t0, 0) / 1e3,
                "args": args,
            }
        )

    for r in per_rank:
        rank, off = r["rank"], r["clock_offset_ns"]
        events += [
            {"name": "process_name", "ph": "M", "pid": rank, "args": {"name": f"rank {rank}"}},
            {"name": "thread_name", "ph": "M", "pid": rank, "tid": 0, "args": {"name": "step"}},
            {
                "name": "thread_name",
                "ph": "M",
                "pid": rank,
                "tid": 1,
                "args": {"name": "allreduce"},
            },
        ]
        # this run's arrays start at its first step (a resumed run's: past 0; indexing them
        # by the step number was an IndexError after the run: fourteenth attack, P-H10)
        for i, (t0, t1, t2, t3, t4) in enumerate(r["marks"].tolist()):
            step = i + r["first_step"]
            span(rank, 0, "data", t0, t1, off, {"step": step})
            if bucketed:
                span(
                    rank,
                    0,
                    "compute+buckets",
                    t1,
                    t3,
                    off,
                    {"step": step, "exposed_comm_us": int(r["comm_ns"][i]) / 1e3},
                )
            else:
                span(rank, 0, "compute", t1, t2, off, {"step": step})
                span(rank, 0, "comm", t2, t3, off, {"step": step})
            span(rank, 0, "update", t3, t4, off, {"step": step})
        c = r["calls"]
        for step, nbytes, start, ns in zip(
            c["step"].tolist(),
            c["bytes"].tolist(),
            c["start_ns"].tolist(),
            c["ns"].tolist(),
            strict=True,
        ):
            span(
                rank,
                1,
                "allreduce",
                start,
                start + ns,
                off,
                {"step": step, "bytes": nbytes, "algorithm": algorithm},
            )
    sync = clock_sync(per_rank)
    doc = {"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"clock_sync": sync}}
    write_atomically(path, json.dumps(doc))  # whole or not at all, never through a link
    return sync
