"""The steps of each allreduce algorithm as flows between ranks, and their load on a fabric.

Pure (numpy, no MPI). :func:`phases` lists what an algorithm does, step by step (its record's
schedule in :mod:`dist_logreg.collective.algorithms`, built in
:mod:`dist_logreg.collective.steps`): which rank sends how much (as a fraction of the
payload) to which, and how much the busiest rank reduces. The tests check these flows
against the traffic the algorithms count. An algorithm without a schedule (the MPI
library's own) gets a generic shape: ``ceil(lg p)`` messages carrying a ring's load.

:func:`shape` places the ranks on hosts (and hosts under leaves) and turns each step into
what it costs (the fluid model: a step is as slow as its most loaded link): a step with any
flow between hosts costs ``alpha_inter + load * beta_inter``, where ``load`` is the most any
host link carries in one direction, or a leaf uplink carries times how much slower the
uplink is; a step inside hosts costs ``alpha_intra + largest flow * beta_intra``. The
reduction of the step adds ``reduce * gamma``. All of it is linear in the parameters, which
is what lets :mod:`dist_logreg.collective.costfit` fit them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dist_logreg.collective import algorithms
from dist_logreg.collective.steps import Phase

__all__ = ["Phase", "Placement", "Step", "phases", "shape", "traffic"]


def phases(name: str, p: int, node_of=None) -> list[Phase]:
    """The steps of algorithm ``name`` on ``p`` ranks (``node_of``: the nodes of a
    topology-aware algorithm), from its record in the algorithm table."""
    alg = algorithms.get(name)
    if alg.phases is None:
        raise ValueError(f"no step-by-step schedule for {name!r}: {alg.why}")
    return [] if p <= 1 else alg.phases(p, None if node_of is None else np.asarray(node_of))


def traffic(name: str, p: int, payload: float, node_of=None) -> tuple[np.ndarray, np.ndarray]:
    """``(bytes, messages)``, ``p x p``: what rank i sends rank j in one allreduce."""
    nbytes, messages = np.zeros((p, p)), np.zeros((p, p), dtype=np.int64)
    for ph in phases(name, p, node_of):
        np.add.at(nbytes, (ph.src, ph.dst), ph.repeat * ph.frac * payload)
        np.add.at(messages, (ph.src, ph.dst), ph.repeat)
    return nbytes, messages


@dataclass(frozen=True)
class Placement:
    """Where the ranks sit: ``host_of[rank]``; two-tier: ``leaf_of[host]`` and how much
    slower (per byte) a leaf's uplink is than a host link (``uplink_factor``, ``X/H`` for
    ``H`` hosts per leaf at ``X:1`` oversubscription); ``node_of[rank]``: hierarchical's
    nodes (default: the hosts)."""

    host_of: tuple[int, ...]
    leaf_of: tuple[int, ...] | None = None
    uplink_factor: float = 1.0
    node_of: tuple[int, ...] | None = None

    @classmethod
    def blocks(
        cls,
        p: int,
        ranks_per_host: int = 0,
        hosts_per_leaf: int = 0,
        oversubscription: float = 1.0,
        ranks_per_node: int = 0,
    ) -> Placement:
        """Ranks in order, ``ranks_per_host`` per host (0: all on one host), hosts in order,
        ``hosts_per_leaf`` per leaf (0: one flat fabric)."""
        k = ranks_per_host or p
        host_of = tuple(r // k for r in range(p))
        hosts = host_of[-1] + 1
        leaf_of = None
        factor = 1.0
        if hosts_per_leaf and hosts > hosts_per_leaf:
            leaf_of = tuple(h // hosts_per_leaf for h in range(hosts))
            factor = oversubscription / hosts_per_leaf
        node_of = tuple(r // ranks_per_node for r in range(p)) if ranks_per_node else None
        return cls(host_of, leaf_of, factor, node_of)

    @property
    def ranks(self) -> int:
        return len(self.host_of)

    @property
    def hosts(self) -> int:
        return len(set(self.host_of))


@dataclass(frozen=True)
class Step:
    """A step's cost per payload byte: ``repeat`` times ``alpha + load*n*beta + reduce*n*gamma``
    on link kind ``inter`` (between hosts) or not; ``msg``: its largest message / payload."""

    repeat: int
    inter: bool
    msg: float
    load: float
    reduce: float


def _max_load(keys: np.ndarray, weights: np.ndarray) -> float:
    return float(np.bincount(keys, weights=weights).max()) if keys.size else 0.0


def shape(name: str, place: Placement) -> list[Step]:
    """The steps of ``name`` on ``place``, each with the load of its bottleneck link."""
    p = place.ranks
    if p <= 1:
        return []
    host = np.asarray(place.host_of)
    alg = algorithms.get(name)
    if alg.phases is None and alg.collective != algorithms.ALLREDUCE:
        a, b, c = alg.closed_form(p)  # generic, from the closed form: a steps of b/a, c/a
        return [Step(int(a), place.hosts > 1, b / a, b / a, c / a)]
    if alg.phases is None:  # generic: a log p latency, a ring's load
        ring = shape(algorithms.RING.name, place)
        lat = math.ceil(math.log2(p))
        load = sum(s.repeat * s.load for s in ring) / lat
        return [Step(lat, place.hosts > 1, 1.0, load, (p - 1) / p / lat)]
    leaf = None if place.leaf_of is None else np.asarray(place.leaf_of)
    steps = []
    for ph in phases(name, p, place.node_of if place.node_of is not None else host):
        hs, hd = host[ph.src], host[ph.dst]
        cross = hs != hd
        if cross.any():
            w = ph.frac[cross]
            load = max(_max_load(hs[cross], w), _max_load(hd[cross], w))
            if leaf is not None:
                up = leaf[hs] != leaf[hd]
                w = ph.frac[up]
                up_load = max(_max_load(leaf[hs[up]], w), _max_load(leaf[hd[up]], w))
                load = max(load, up_load * place.uplink_factor)
        else:
            load = float(ph.frac.max())
        steps.append(Step(ph.repeat, bool(cross.any()), float(ph.frac.max()), load, ph.reduce))
    return steps
