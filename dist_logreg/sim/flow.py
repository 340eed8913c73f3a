"""The flow engine: max-min fair flows, phase-synchronous (here) or event by event
(``--exact``, :mod:`.exact`). Phase-synchronous: each step's flows share the fabric max-min
fairly; a step ends when its last message has arrived; the allreduce is the sum of its steps.

A step of ``F`` flows (one per message; every message of a step has the same size ``x``)
is routed once (:meth:`Fabric.route_many`) and drained once with 1-byte flows: max-min
rates do not depend on the size, so the finish time of each flow is ``x`` times its
1-byte finish time, and a step's time is ``alpha + max_f(latency_f + x * u_f) +
gamma * reduced bytes``. The collision statistics count flows over each switch's
equal-cost next hops (:meth:`Topology.ecmp_groups`). Steps with the same flows (the repeats
of the ring, the halving and doubling steps of Rabenseifner, recursive doubling's exchanges
at one distance, every seed that hashes the same way) are computed once, kept in a
:class:`StepCache`. Flows between two ranks of one host never touch a link: they run at
``host_rate`` each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from dist_logreg.sim import exact as exact_mode
from dist_logreg.sim import maxmin
from dist_logreg.sim.fabric import Fabric
from dist_logreg.sim.job import Job, Result, job_phases


@dataclass
class StepCost:
    """One routed, drained step (per byte of its messages)."""

    u: np.ndarray  # (F,) s/B: finish time of a 1-byte message under sharing
    lat: np.ndarray  # (F,) s: hop latencies of each flow's path
    u_ideal: np.ndarray  # (F,) s/B: the same with only the host links finite
    link_weight: np.ndarray  # (L,) flows (weights) on each link
    critical: int  # link class of the last flow's tightest link (-1: inside hosts)
    max_uplink: float  # most flows (weights) on one equal-cost next hop
    excess: float  # flows on equal-cost next hops beyond an even spread
    inter: np.ndarray  # (F,) bool: the flow leaves its host (else it runs at host-rate)


def _excess(w: np.ndarray) -> float:
    """Flows beyond ``ceil(total/n)`` per next hop, for a (switches, n) array of counts."""
    if w.size == 0:
        return 0.0
    even = np.ceil(w.sum(axis=1, keepdims=True) / w.shape[1] - 1e-9)
    return float(np.maximum(w - even, 0.0).sum())


def cost_step(fab: Fabric, src_host, dst_host, keys) -> StepCost:
    """Route and drain one step of flows (1 byte each)."""
    f = src_host.size
    a = fab.route_many(src_host, dst_host, keys)
    inter = np.diff(a.indptr) > 0
    u = np.full(f, 1.0 / fab.host_rate)
    u_ideal = u.copy()
    lat = np.zeros(f)
    weight = np.zeros(fab.links)
    critical, max_up, excess = -1, 0.0, 0.0
    if inter.any():
        ai = a[inter]
        u[inter] = maxmin.drain(ai, fab.link_rate, np.ones(ai.shape[0]))
        lat[inter] = ai @ fab.link_latency
        host = fab.edge_links()
        u_ideal[inter] = maxmin.drain(
            ai[:, np.flatnonzero(host)], fab.link_rate[host], np.ones(ai.shape[0])
        )
        weight = np.asarray(ai.sum(axis=0)).ravel()
        last = int(np.argmax(lat[inter] + u[inter]))
        critical = int(fab.link_class[maxmin.bottleneck_link(ai, fab.link_rate, last)])
        for group in fab.topology.ecmp_groups():
            w = weight[group]
            max_up, excess = max(max_up, float(w.max(initial=0.0))), excess + _excess(w)
    return StepCost(u, lat, u_ideal, weight, critical, max_up, excess, inter)


class StepCache:
    """Costed steps by (fabric, hosts and ranks of the flows): each computed once."""

    def __init__(self):
        self._steps: dict = {}

    def get(self, fab: Fabric, src_host, dst_host, keys) -> StepCost:
        h = hashlib.blake2b(digest_size=16)
        for arr in (src_host, dst_host, keys):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        route = (id(fab.topology), id(fab.pinned))
        k = (route, fab.hash, fab.hash_seed, fab.polarize, fab.host_rate, h.digest())
        if k not in self._steps:
            self._steps[k] = (fab, cost_step(fab, src_host, dst_host, keys))
        return self._steps[k][1]

    def __len__(self) -> int:
        return len(self._steps)


def simulate(fab: Fabric, host_of: np.ndarray, steps, nbytes: float, cache: StepCache) -> dict:
    """Phase-synchronous time of one allreduce: ``steps`` are the algorithm's phases."""
    p = host_of.size
    total = ideal = 0.0
    link_bytes = np.zeros(fab.links)
    class_time = np.zeros(len(fab.class_names) + 1)
    max_up = excess = 0.0
    for ph in steps:
        x = float(ph.frac.max()) * nbytes  # every flow of our steps has the same size
        keys = ph.src * p + ph.dst  # one connection per rank pair
        c = cache.get(fab, host_of[ph.src], host_of[ph.dst], keys)
        red = ph.reduce * nbytes * fab.gamma
        finish = c.lat + x * c.u
        last = int(np.argmax(finish))
        t = fab.alpha + float(finish[last]) + red
        total += ph.repeat * t
        ideal += ph.repeat * (fab.alpha + float(np.max(c.lat + x * c.u_ideal)) + red)
        link_bytes += ph.repeat * x * c.link_weight
        # the last flow inside a host: host-rate bounds the step (it was named after the
        # links of the hosts' other flows, 20 % busy: nineteenth attack, W-H5)
        class_time[c.critical if c.inter[last] else -1] += ph.repeat * t
        max_up, excess = max(max_up, c.max_uplink), excess + ph.repeat * c.excess
    return _summary(fab, total, ideal, link_bytes, class_time, max_up, excess)


def _summary(fab, total, ideal, link_bytes, class_time, max_up, excess) -> dict:
    util = link_bytes / fab.link_rate / total if total > 0 else link_bytes * 0.0
    links = {}
    for i, name in enumerate(fab.class_names):
        mine = util[fab.link_class == i]
        if mine.size:
            links[name] = {"max_util": float(mine.max()), "mean_util": float(mine.mean())}
    crit = int(np.argmax(class_time))
    bottleneck = (
        "host-internal"
        if crit == len(fab.class_names) or not class_time.any()
        else fab.class_names[crit]
    )
    up = np.isin(fab.link_class, [fab.class_names.index(c) for c in fab.topology.uplink_classes])
    return {
        "time_s": total,
        "ideal_s": ideal,
        "bottleneck": bottleneck,
        "max_flows_per_uplink": max_up,
        "collisions": excess,
        "links": links,
        "cross_leaf_bytes": float(link_bytes[up].sum()),
    }


class FlowEngine:
    """Max-min fair flows; phase-synchronous, or event by event with ``Job.exact``."""

    name = "flow"

    def __init__(self):
        self.cache = StepCache()

    def run(self, job: Job) -> Result:
        host_of = np.asarray(job.host_of, dtype=np.int64)
        out = simulate(job.fabric, host_of, job_phases(job), float(job.nbytes), self.cache)
        arrivals = None
        if job.exact:
            sync_time = out["time_s"]
            out.update(exact_mode.simulate(job, host_of))
            arrivals = out.pop("arrivals")
            out["phase_sync_s"] = sync_time
        extra = {k: out.pop(k) for k in list(out) if k not in Result.__dataclass_fields__}
        return Result(**out, messages=arrivals, extra=extra)
