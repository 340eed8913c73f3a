"""The step-by-step schedules of the allreduce algorithms, as flows between ranks (pure).

Each builder lists what its algorithm in :mod:`dist_logreg.comm.p2p` does, step by step:
which rank sends how much (as a fraction of the payload) to which, and how much the busiest
rank reduces. The algorithm table (:mod:`dist_logreg.collective.algorithms`) points each
record at its builder; :func:`dist_logreg.collective.schedule.phases` reads the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pow2_below(p: int) -> int:
    """The largest power of two <= ``p`` (the group MPICH's algorithms fold into)."""
    return 1 << (p.bit_length() - 1)


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
    return Phase(
        repeat, src, np.asarray(dst, dtype=np.int64), np.broadcast_to(frac, src.shape), reduce
    )


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
    i = np.arange(q, dtype=np.int64)
    real = np.where(i < extra, 2 * i + 1, i + extra)
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


def rabenseifner_phases(p: int, near: bool = True) -> list[Phase]:
    """Recursive halving (reduce-scatter) then recursive doubling (allgather).

    ``near`` (MPICH's order, SMPI's ``rab_rdb``): halving at distance 1, 2, 4, ... and
    doubling back from ``p'/2`` to 1, so the two largest exchanges (half the payload each)
    are between neighbours; otherwise halving at ``p'/2`` first and doubling from 1 (the
    largest exchanges at the farthest distance)."""
    fold_in, fold_out, real = _folded(p)
    q = real.size
    me = np.arange(q)
    masks = [1 << i for i in range(q.bit_length() - 1)]
    order = masks if near else masks[::-1]
    halving = [
        _phase(1, real, real[me ^ m], 0.5 ** (i + 1), 0.5 ** (i + 1)) for i, m in enumerate(order)
    ]
    doubling = [
        _phase(1, real, real[me ^ m], 0.5 ** (i + 1), 0.0)
        for i, m in reversed(list(enumerate(order)))
    ]
    return fold_in + halving + doubling + fold_out


def rabenseifner_far_phases(p: int) -> list[Phase]:
    """Rabenseifner's allreduce halving at distance ``p'/2`` first (the former order)."""
    return rabenseifner_phases(p, near=False)


def _slots(node_of) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(node, slot, count, order)``: each rank's node index (0..H-1, by node label), its
    place among its node's ranks (0: the lowest rank), the ranks of each node, and the ranks
    sorted by node (stable). O(p): a million ranks must not loop over nodes in Python."""
    _, node, count = np.unique(np.asarray(node_of), return_inverse=True, return_counts=True)
    order = np.argsort(node, kind="stable")
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    slot = np.empty(node.size, dtype=np.int64)
    slot[order] = np.arange(node.size) - np.repeat(first, count)
    return node, slot, count, order


def hierarchical_phases(node_of) -> list[Phase]:
    """Linear reduce to each node's lowest rank, ring among those leaders, linear broadcast."""
    node, slot, count, order = _slots(node_of)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    leader_of = order[first[node]]  # the lowest rank of each rank's node
    leaders = np.sort(order[first])
    up, down = [], []
    by_slot = np.argsort(slot, kind="stable")
    bounds = np.searchsorted(slot[by_slot], np.arange(1, int(count.max()) + 1))
    for i in range(1, int(count.max())):
        src = by_slot[bounds[i - 1] : bounds[i]]
        src = src[np.argsort(leader_of[src], kind="stable")]
        dst = leader_of[src]
        up.append(_phase(1, src, dst, 1.0, 1.0))
        down.append(_phase(1, dst, src, 1.0, 0.0))
    return up + ring_phases(leaders) + down


def hierarchical_2d_phases(node_of, inter) -> list[Phase]:
    """Ring reduce-scatter inside each node, ``inter`` among the ranks of the same place on
    every node (one allreduce per rail, of ``1/k`` of the payload), ring allgather inside.

    ``inter(h)``: the flat schedule of the allreduce among ``h`` nodes (ranks ``0..h-1``, the
    nodes in order). Nodes of different sizes: ``inter`` over all ranks (the fallback of
    :class:`dist_logreg.comm.hierarchical_2d.Hierarchical2D`).
    """
    node, slot, count, order = _slots(node_of)
    p, h, k = node.size, count.size, int(count[0])
    if np.any(count != k):
        return inter(p) if p > 1 else []
    # members[j, i]: the rank at place j of node i (ranks sorted by node are node-major)
    members = np.empty((k, h), dtype=np.int64)
    members[slot, node] = np.arange(p)
    rank = np.arange(p)
    right = members[(slot + 1) % k, node]
    intra = [] if k == 1 else [_phase(k - 1, rank, right, 1.0 / k, 1.0 / k)]
    gather = [] if k == 1 else [_phase(k - 1, rank, right, 1.0 / k, 0.0)]
    rails = []
    for ph in inter(h) if h > 1 else []:  # every rail's step at once: node i -> rank of rail j
        rails.append(
            _phase(
                ph.repeat,
                members[:, ph.src].ravel(),
                members[:, ph.dst].ravel(),
                np.tile(ph.frac / k, k),
                ph.reduce / k,
            )
        )
    return intra + rails + gather


def two_d_schedule(across):
    """The ``(p, node_of)`` schedule of hierarchical-2d with ``across(h, None)`` (a flat
    record's schedule) among the nodes."""

    def schedule(p: int, node_of) -> list[Phase]:
        nodes = np.arange(p) if node_of is None else node_of
        return hierarchical_2d_phases(nodes, lambda h: across(h, None))

    return schedule
