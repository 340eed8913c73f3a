"""RoCEv2 against TCP in the packet engine: loss, PFC's victims, DCQCN, spraying.

Run:  python benchmarks/bench_rdma.py [--part a,b,c,d] [--bytes 4M] [--json rows.json]

A small leaf-spine (2 leaves of 4 hosts at 10 Gbit/s; 2 spines for the ring and spraying,
1 spine with 10 Gbit/s uplinks, so 4:1 oversubscribed, for the incast), small enough to run
in minutes on 2 cores:

(a) loss 1e-5 .. 1e-2 per link: ring allreduce time and retransmitted bytes, RoCE
    go-back-N, RoCE selective repeat, TCP cubic;
(b) an incast (one host of leaf 0 and two of leaf 1 into a host of leaf 1; 40 Gbit/s
    uplinks) next to a victim flow (another host of leaf 0 into another of leaf 1, sharing
    only the spine's port towards leaf 1 with the incast): the victim's time with PFC
    (lossless, the spine paused: head-of-line blocking) and without (lossy, go-back-N),
    against its time alone;
(c) the same incast under DCQCN, DCTCP and no congestion control (PFC on for RoCE): peak
    and mean bottleneck queue, PAUSEs, completion; and DCQCN's Kmin swept;
(d) spraying (hash=spray, 2 spines) under RoCE go-back-N and selective repeat: reordering
    taken for loss.

Prints one line per case and the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from dist_logreg.sim import ns3driver, ns3net
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from dist_logreg.sim.transports.roce import Roce
from dist_logreg.sim.transports.tcp import Tcp
from dist_logreg.units import parse_bytes

RING_SPEC = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4,rate=10G,uplink-rate=10G"
RATE = 10e9 / 8
LAT = 1e-6


def _two_leaves(queue=1 << 20, k=0, kmax=None, pfc=False, up=RATE):
    """Hosts 0-3 on leaf 8, 4-7 on leaf 9, one spine 10; host links 10 Gbit/s, leaf-spine
    links ``up`` bytes/s; every link 1 us.
    Link ids: host h up 2h, down 2h+1; leaf l (0, 1) up 16 + 2l, down 17 + 2l."""
    src, dst = [], []
    for h in range(8):
        src += [h, 8 + h // 4]
        dst += [8 + h // 4, h]
    for leaf in (8, 9):
        src += [leaf, 10]
        dst += [10, leaf]
    n = len(src)
    nic = np.array(src) < 8
    rate = np.where((np.array(src) >= 8) & (np.array(dst) >= 8), up, RATE)
    return ns3net.Network(
        hosts=8,
        nodes=11,
        link_src=np.array(src),
        link_dst=np.array(dst),
        link_rate=rate,
        link_latency=np.full(n, LAT),
        queue_bytes=np.where(nic, 1 << 30, queue if not pfc else 1 << 30),
        ecn_k=np.where(nic, 0, k),
        loss=np.zeros(n),
        ecn_kmax=None if kmax is None else np.where(nic, 0, kmax),
        ecn_pmax=0.01,
        pfc=pfc,
    )


def _path(a, b):
    """Links from host a to host b: through their leaf, or through the spine."""
    if a // 4 == b // 4:
        return [2 * a, 2 * b + 1]
    return [2 * a, 16 + 2 * (a // 4), 17 + 2 * (b // 4), 2 * b + 1]


def _flows(pairs, nbytes):
    n = len(pairs)
    return ns3net.Transfers(
        conn_src=np.array([a for a, _ in pairs]),
        conn_dst=np.array([b for _, b in pairs]),
        conn_path=[_path(a, b) for a, b in pairs],
        msg_conn=np.arange(n),
        msg_bytes=np.full(n, nbytes),
        msg_delay=np.zeros(n),
        dep_indptr=np.zeros(n + 1, int),
        dep_indices=np.zeros(0, int),
    )


INCAST = [(0, 4), (1, 4), (2, 4)]
# (b): host 0 (leaf 0) and hosts 5, 6 (leaf 1) into host 4; the victim, host 1 into host 7,
# shares only the spine's port towards leaf 1 with host 0's flow (uplinks 4x faster)
INCAST_B = [(0, 4), (5, 4), (6, 4)]
VICTIM_B = [(1, 7)]


def part_a(nbytes, rows):
    fab = parse_fabric(RING_SPEC)
    eng = get_engine("packet")
    for loss in (1e-5, 1e-4, 1e-3, 1e-2):
        for name, opts in (
            ("roce-gbn", {"transport": "roce", "retransmit": "gbn"}),
            ("roce-selective", {"transport": "roce", "retransmit": "selective"}),
            ("tcp-cubic", {"transport": "tcp", "tcp": "cubic"}),
        ):
            job = Job(fab, place(8, fab), "ring", nbytes, options={**opts, "loss": loss})
            r = eng.run(job)
            p = r.extra["packet"]
            row = {
                "part": "a",
                "loss": loss,
                "transport": name,
                "time_s": r.time_s,
                "retransmitted_bytes": p["retransmitted_bytes"],
                "wall_s": p["wall_s"],
            }
            _show(rows, row)


def part_b(nbytes, rows):
    alone = ns3net.run(
        _two_leaves(pfc=True, up=4 * RATE), _flows(VICTIM_B, nbytes), Roce(cc="none")
    )
    for pfc in (True, False):
        net = _two_leaves(queue=256 << 10, pfc=pfc, up=4 * RATE)
        res = ns3net.run(net, _flows(INCAST_B + VICTIM_B, nbytes), Roce(cc="none"))
        row = {
            "part": "b",
            "pfc": pfc,
            "victim_s": float(res.msg_done[3]),
            "victim_alone_s": float(alone.msg_done[0]),
            "slowdown": float(res.msg_done[3] / alone.msg_done[0]),
            "incast_s": float(res.msg_done[:3].max()),
            "pauses": int(res.link_pauses.sum()),
            "drops": int(res.link_drops.sum()),
            "wall_s": res.wall_s,
        }
        _show(rows, row)


def part_c(nbytes, rows):
    bottleneck = 16  # leaf 0 -> spine: 3 hosts' 30 Gbit/s into one 10 Gbit/s uplink
    cases = [("dcqcn Kmin 5K", _two_leaves(k=5 << 10, kmax=200 << 10, pfc=True), Roce())]
    cases += [
        (f"dcqcn Kmin {k >> 10}K", _two_leaves(k=k, kmax=max(200 << 10, 2 * k), pfc=True), Roce())
        for k in (20 << 10, 80 << 10)
    ]
    cases += [
        ("roce no cc", _two_leaves(pfc=True), Roce(cc="none")),
        ("dctcp K 65K", _two_leaves(k=65 << 10), Tcp("dctcp")),
        ("cubic", _two_leaves(), Tcp("cubic")),
    ]
    for name, net, transport in cases:
        every = 20e-6
        res = ns3net.run(net, _flows(INCAST, nbytes), transport, sample_every_s=every)
        q = res.queue_bytes[:, bottleneck] if res.queue_t.size else np.zeros(1)
        row = {
            "part": "c",
            "case": name,
            "peak_queue": int(res.link_peak[bottleneck]),
            "mean_queue": float(q.mean()),
            "pauses": int(res.link_pauses.sum()),
            "done_s": float(res.msg_done.max()),
            "drops": int(res.link_drops.sum()),
            "wall_s": res.wall_s,
        }
        _show(rows, row)


def part_d(nbytes, rows):
    fab = parse_fabric(RING_SPEC + ",hash=spray")
    eng = get_engine("packet")
    for retransmit in ("gbn", "selective"):
        opts = {"transport": "roce", "retransmit": retransmit, "cc": "none"}
        r = eng.run(Job(fab, place(8, fab), "ring", nbytes, options=opts))
        p = r.extra["packet"]
        row = {
            "part": "d",
            "retransmit": retransmit,
            "time_s": r.time_s,
            "retransmitted_bytes": p["retransmitted_bytes"],
            "nacks": p["nacks"],
            "wall_s": p["wall_s"],
        }
        _show(rows, row)


def _show(rows, row):
    row["loadavg"] = os.getloadavg()[0]
    rows.append(row)
    print(
        "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="a,b,c,d")
    ap.add_argument("--bytes", default="4M", help="ring buffer (a, d), bytes per flow (b, c)")
    ap.add_argument("--json", default=None, help="write the rows here")
    args = ap.parse_args()
    t = time.perf_counter()
    ns3driver.load()
    print(f"ns-3 import + compile: {time.perf_counter() - t:.1f} s; loadavg {os.getloadavg()}")
    nbytes, rows = parse_bytes(args.bytes), []
    parts = {"a": part_a, "b": part_b, "c": part_c, "d": part_d}
    for p in args.part.split(","):
        parts[p](nbytes, rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
