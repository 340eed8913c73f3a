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
from functools import cached_property

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
        ranks = np.arange(p)
        host_of = tuple((ranks // k).tolist())
        hosts = host_of[-1] + 1
        leaf_of = None
        factor = 1.0
        if hosts_per_leaf and hosts > hosts_per_leaf:
            leaf_of = tuple((np.arange(hosts) // hosts_per_leaf).tolist())
            factor = oversubscription / hosts_per_leaf
        node_of = tuple((ranks // ranks_per_node).tolist()) if ranks_per_node else None
        return cls(host_of, leaf_of, factor, node_of)

    def __hash__(self) -> int:
        # computed once: a prediction looks up the steps of a placement of up to 10^6 ranks
        # many times (a table, a crossover search)
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.host_of, self.leaf_of, self.uplink_factor, self.node_of))

    @cached_property
    def host_array(self) -> np.ndarray:
        return np.asarray(self.host_of, dtype=np.int64)

    @property
    def ranks(self) -> int:
        return len(self.host_of)

    @cached_property
    def hosts(self) -> int:
        return int(np.count_nonzero(np.bincount(self.host_array)))


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


def _busiest(src_keys, dst_keys, frac: np.ndarray, mask: np.ndarray) -> float:
    """The most any key (host, leaf) sends or receives of the flows in ``mask``."""
    if frac.size and frac.strides == (0,):  # one size for every flow: count, do not weigh
        s, d = src_keys[mask], dst_keys[mask]
        top = max(np.bincount(s).max(), np.bincount(d).max()) if s.size else 0
        return float(top) * float(frac[0])
    w = frac[mask]
    return max(_max_load(src_keys[mask], w), _max_load(dst_keys[mask], w))


def shape(name: str, place: Placement) -> list[Step]:
    """The steps of ``name`` on ``place``, each with the load of its bottleneck link."""
    p = place.ranks
    if p <= 1:
        return []
    host = place.host_array
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
        top = float(ph.frac.max())
        any_cross = bool(cross.any())
        if any_cross:
            load = _busiest(hs, hd, ph.frac, cross)
            if leaf is not None:
                ls, ld = leaf[hs], leaf[hd]
                load = max(load, _busiest(ls, ld, ph.frac, ls != ld) * place.uplink_factor)
        else:
            load = top
        steps.append(Step(ph.repeat, any_cross, top, load, ph.reduce))
    return steps
