"""The steps of each allreduce algorithm as flows between ranks, and their load on a fabric.

Pure (numpy, no MPI). :func:`phases` lists what :mod:`dist_logreg.comm.p2p` does, step by
step: which rank sends how much (as a fraction of the payload) to which, and how much the
busiest rank reduces. The tests check these flows against the traffic the algorithms count.

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

from dist_logreg.collective.closed_form import pow2_below


@dataclass(frozen=True)
class Phase:
    """One step of an algorithm, run ``repeat`` times; all of its flows run at once.

    ``frac``: bytes of each flow / payload bytes; ``reduce``: bytes the busiest rank
    reduces in the step / payload bytes.
    """

    repeat: int
    src: np.ndarray
    dst: np.ndarray
    frac: np.ndarray
    reduce: float


def _phase(repeat: int, src, dst, frac, reduce: float) -> Phase:
    src = np.asarray(src, dtype=np.int64)
    return Phase(repeat, src, np.asarray(dst, dtype=np.int64), np.broadcast_to(frac, src.shape),
                 reduce)  # fmt: skip


def ring_phases(ranks) -> list[Phase]:
    """Reduce-scatter then allgather around ``ranks[i] -> ranks[i+1]``: 2(h-1) steps of 1/h."""
    ranks = np.asarray(ranks, dtype=np.int64)
    h = ranks.size
    if h < 2:
        return []
    dst = np.roll(ranks, -1)
    return [_phase(h - 1, ranks, dst, 1.0 / h, 1.0 / h), _phase(h - 1, ranks, dst, 1.0 / h, 0.0)]


def _folded(p: int) -> tuple[list[Phase], list[Phase], np.ndarray]:
    """MPICH's fold to a power of two: (fold-in, fold-out, real rank of each new rank)."""
    q = pow2_below(p)
    extra = p - q
    real = np.array([2 * i + 1 if i < extra else i + extra for i in range(q)], dtype=np.int64)
    if not extra:
        return [], [], real
    evens = np.arange(0, 2 * extra, 2)
    return [_phase(1, evens, evens + 1, 1.0, 1.0)], [_phase(1, evens + 1, evens, 1.0, 0.0)], real


def recursive_doubling_phases(p: int) -> list[Phase]:
    """Whole-buffer exchanges at distance 1, 2, 4, ... among the folded power of two."""
    fold_in, fold_out, real = _folded(p)
    me = np.arange(real.size)
    steps = [
        _phase(1, real, real[me ^ (1 << i)], 1.0, 1.0) for i in range(real.size.bit_length() - 1)
    ]
    return fold_in + steps + fold_out


def rabenseifner_phases(p: int) -> list[Phase]:
    """Recursive halving (reduce-scatter) then recursive doubling (allgather)."""
    fold_in, fold_out, real = _folded(p)
    q = real.size
    me = np.arange(q)
    masks = [1 << i for i in range(q.bit_length() - 1)]
    halving = [_phase(1, real, real[me ^ m], m / q, m / q) for m in reversed(masks)]
    doubling = [_phase(1, real, real[me ^ m], m / q, 0.0) for m in masks]
    return fold_in + halving + doubling + fold_out


def hierarchical_phases(node_of) -> list[Phase]:
    """Linear reduce to each node's lowest rank, ring among those leaders, linear broadcast."""
    node_of = np.asarray(node_of)
    members = [np.flatnonzero(node_of == n) for n in dict.fromkeys(node_of.tolist())]
    members.sort(key=lambda m: m[0])
    leaders = np.array([m[0] for m in members], dtype=np.int64)
    k = max(m.size for m in members)
    up, down = [], []
    for i in range(1, k):
        src = [m[i] for m in members if m.size > i]
        dst = [m[0] for m in members if m.size > i]
        up.append(_phase(1, src, dst, 1.0, 1.0))
        down.append(_phase(1, dst, src, 1.0, 0.0))
    return up + ring_phases(leaders) + down


def phases(name: str, p: int, node_of=None) -> list[Phase]:
    """The steps of algorithm ``name`` on ``p`` ranks (``node_of``: hierarchical's nodes)."""
    if p <= 1:
        return []
    if name == "ring":
        return ring_phases(np.arange(p))
    if name == "recursive-doubling":
        return recursive_doubling_phases(p)
    if name == "rabenseifner":
        return rabenseifner_phases(p)
    if name == "hierarchical":
        return hierarchical_phases(np.arange(p) if node_of is None else node_of)
    raise ValueError(f"no step-by-step schedule for {name!r}")


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
    if name == "mpi":  # generic: a log p latency, a ring's (bandwidth-optimal) load
        ring = shape("ring", place)
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
