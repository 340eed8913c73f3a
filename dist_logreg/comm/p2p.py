"""Allreduce algorithms written on buffer-based point-to-point calls, for study.

Each has the interface of :mod:`dist_logreg.comm.base` (``name``, ``allreduce(buf)``: in-place
SUM) and counts exactly what this rank sends to each peer (:class:`Traffic`). All of them
work for any world size (non-powers of two included) and any element count (including
fewer elements than ranks). Every rank ends with bitwise-identical results: each element
is reduced in one fixed order and then copied, or reduced pairwise (IEEE addition is
commutative, so ``a + b == b + a`` on both partners).

Costs (Hockney alpha-beta; Thakur, Rabenseifner and Gropp 2005), ``S`` payload bytes,
``p`` ranks, per rank:

=====================  ==========================  ==============================
algorithm              messages                    bytes sent
=====================  ==========================  ==============================
ring                   2(p-1)                      2(p-1)/p * S
recursive-doubling     log2(p)                     log2(p) * S
rabenseifner           2 log2(p)                   2(p-1)/p * S
rabenseifner-far       2 log2(p)                   2(p-1)/p * S
=====================  ==========================  ==============================

(exact for powers of two and, for ring, element counts divisible by p; other sizes add a
fold-in/fold-out step or uneven chunks, which :class:`Traffic` counts as they happen).
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from dist_logreg.collective import algorithms as table
from dist_logreg.comm.base import Allreduce
from dist_logreg.comm.links import Link, Scratch, Traffic, bounds, pair_rank
from dist_logreg.comm.reduce_scatter_allgather import ring_allgather, ring_reduce_scatter


def ring(link: Link, buf: np.ndarray, scratch: Scratch) -> None:
    """Reduce-scatter then allgather around the ring ``r -> r+1``; ``2(p-1)`` steps.

    Rank ``r`` reduces chunk ``r + 1`` (``shift=1``): the order each chunk is summed in, so
    the bits every rank ends with, are this algorithm's since its first version.
    """
    ring_reduce_scatter(link, buf, scratch, shift=1)
    ring_allgather(link, buf, shift=1)


def _fold_in(link: Link, buf: np.ndarray, scratch: Scratch) -> tuple[int, int, int]:
    """Reduce ``p`` ranks to the largest power of two ``p2`` (MPICH's scheme).

    Of the first ``2 * extra`` ranks, each even one sends its buffer to the odd one above and
    sits out. Returns ``(new_rank, p2, extra)``, ``new_rank = -1`` for a rank sitting out.
    """
    p, r = link.size, link.rank
    p2 = 1 << (p.bit_length() - 1)
    extra = p - p2
    if r < 2 * extra:
        if r % 2 == 0:
            link.send(buf, r + 1)
            return -1, p2, extra
        tmp = scratch.get(buf.size, buf.dtype)
        link.recv(tmp, r - 1)
        buf += tmp
        return r // 2, p2, extra
    return r - extra, p2, extra


def _fold_out(link: Link, buf: np.ndarray, new_rank: int, extra: int) -> None:
    """Give the ranks that sat out the finished result."""
    r = link.rank
    if r < 2 * extra:
        if new_rank < 0:
            link.recv(buf, r + 1)
        else:
            link.send(buf, r - 1)


def recursive_doubling(link: Link, buf: np.ndarray, scratch: Scratch) -> None:
    """Exchange whole buffers with partners at distance 1, 2, 4, ...; ``log2(p)`` steps."""
    if link.size == 1:
        return
    me, p2, extra = _fold_in(link, buf, scratch)
    if me >= 0:
        tmp = scratch.get(buf.size, buf.dtype)
        mask = 1
        while mask < p2:
            partner = pair_rank(me ^ mask, extra)
            link.sendrecv(buf, partner, tmp, partner)
            buf += tmp  # partner computes tmp + buf: the same bits
            mask <<= 1
    _fold_out(link, buf, me, extra)


def rabenseifner(link: Link, buf: np.ndarray, scratch: Scratch, near: bool = True) -> None:
    """Reduce-scatter by recursive halving, then allgather by recursive doubling.

    ``near`` (MPICH's order): halve at distance 1, 2, 4, ... and double back from ``p'/2``,
    so the half-buffer exchanges are between neighbours (the same host or leaf when ranks
    are packed); otherwise halve at ``p'/2`` first and double from 1. Either way a rank keeps
    the lower half of its range when its bit of the distance is 0, so each element is
    reduced by one rank per step in a fixed order, then copied: identical bits everywhere.
    """
    if link.size == 1:
        return
    me, p2, extra = _fold_in(link, buf, scratch)
    if me >= 0:
        b = bounds(buf.size, p2)
        tmp = scratch.get(buf.size, buf.dtype)
        masks = [1 << i for i in range(p2.bit_length() - 1)]
        order = masks if near else masks[::-1]
        lo, hi = 0, p2  # the chunk range this rank is responsible for
        for mask in order:  # halving: keep one half of my range, send the other to my partner
            partner = pair_rank(me ^ mask, extra)
            mid = (lo + hi) // 2
            (klo, khi), (slo, shi) = (
                ((lo, mid), (mid, hi)) if not me & mask else ((mid, hi), (lo, mid))
            )
            incoming = tmp[: b[khi] - b[klo]]
            link.sendrecv(buf[b[slo] : b[shi]], partner, incoming, partner)
            buf[b[klo] : b[khi]] += incoming
            lo, hi = klo, khi
        for mask in reversed(order):  # doubling: swap finished ranges, the range doubles
            partner = pair_rank(me ^ mask, extra)
            width = hi - lo
            plo, phi = (lo + width, hi + width) if not me & mask else (lo - width, lo)
            link.sendrecv(buf[b[lo] : b[hi]], partner, buf[b[plo] : b[phi]], partner)
            lo, hi = min(lo, plo), max(hi, phi)
    _fold_out(link, buf, me, extra)


def rabenseifner_far(link: Link, buf: np.ndarray, scratch: Scratch) -> None:
    """Rabenseifner's allreduce halving at distance ``p'/2`` first (the former order)."""
    rabenseifner(link, buf, scratch, near=False)


class P2PAllreduce(Allreduce):
    """A flat algorithm above on a communicator, with its traffic counted: a subclass names
    its record (``name``) and its function (``algorithm``).

    Example::

        >>> ar = Ring(MPI.COMM_WORLD)
        >>> ar.allreduce(buf)          # in-place SUM; ar.traffic counts what was sent
    """

    name = ""
    algorithm = staticmethod(ring)

    def __init__(self, comm: MPI.Comm):
        self.traffic = Traffic(comm.Get_size())
        self._link = Link(comm, comm, self.traffic)
        self._scratch = Scratch()

    def allreduce(self, buf: np.ndarray, step: int = -1) -> None:
        self.algorithm(self._link, buf, self._scratch)


class Ring(P2PAllreduce):
    name = table.RING.name
    algorithm = staticmethod(ring)


class RecursiveDoubling(P2PAllreduce):
    name = table.RECURSIVE_DOUBLING.name
    algorithm = staticmethod(recursive_doubling)


class Rabenseifner(P2PAllreduce):
    name = table.RABENSEIFNER.name
    algorithm = staticmethod(rabenseifner)


class RabenseifnerFar(P2PAllreduce):
    name = table.RABENSEIFNER_FAR.name
    algorithm = staticmethod(rabenseifner_far)


class Hierarchical(Allreduce):
    """Topology-aware: reduce inside each node, ring among node leaders, broadcast back.

    Nodes are the groups of ranks that share memory (``MPI_Comm_split_type(SHARED)``), or
    consecutive blocks of ``ranks_per_node`` ranks, so one machine can act as several nodes.
    Only the leaders (lowest rank of each node) send across nodes. The intra-node reduce
    and broadcast are linear (the leader receives from / sends to each member in order),
    which fixes the summation order.
    """

    name = table.HIERARCHICAL.name

    def __init__(self, comm: MPI.Comm, ranks_per_node: int | None = None):
        rank = comm.Get_rank()
        if ranks_per_node:
            self.node = comm.Split(rank // ranks_per_node, rank)
        else:
            self.node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
        self.is_leader = self.node.Get_rank() == 0
        self.leaders = comm.Split(0 if self.is_leader else MPI.UNDEFINED, rank)
        leader_world_rank = comm.allgather(rank if self.is_leader else -1)
        first = self.node.bcast(rank, root=0)
        self.node_of = comm.allgather(sorted(r for r in leader_world_rank if r >= 0).index(first))
        self.traffic = Traffic(comm.Get_size())
        self._node = Link(self.node, comm, self.traffic)
        self._leaders = Link(self.leaders, comm, self.traffic) if self.is_leader else None
        self._scratch = Scratch()

    def allreduce(self, buf: np.ndarray, step: int = -1) -> None:
        node = self._node
        if self.is_leader:
            tmp = self._scratch.get(buf.size, buf.dtype)
            for member in range(1, node.size):
                node.recv(tmp, member)
                buf += tmp
            ring(self._leaders, buf, self._scratch)
            for member in range(1, node.size):
                node.send(buf, member)
        else:
            node.send(buf, 0)
            node.recv(buf, 0)

    def free(self) -> None:
        self.node.Free()
        if self.leaders != MPI.COMM_NULL:
            self.leaders.Free()
