"""The collectives besides allreduce, each as the MPI library's and, where we have one, ours.

Every object has ``collective`` and ``name`` and one method, ``bind(buf, out)``, that
returns a call with no arguments doing the collective once on those buffers (a
``functools.partial`` of the buffer-based mpi4py call, so a timed loop pays nothing on top
of the call itself). The layouts (``n`` elements cut into ``p`` chunks by
:func:`~dist_logreg.comm.links.bounds`, chunk ``r`` belonging to rank ``r``):

==============  ===================================  ======================================
collective      ``buf``                              ``out``
==============  ===================================  ======================================
reduce-scatter  all ``n`` elements of this rank      rank ``r``'s chunk of the SUM; for ours
                                                     (``in_place``): the view of chunk r
allgather       ``n`` elements, own chunk filled     unused (in place)
broadcast       ``n`` elements, filled on rank 0     unused (in place)
alltoall        ``n`` elements, chunk j for rank j   ``n`` elements, chunk j from rank j
==============  ===================================  ======================================

Example::

    >>> rs = make_collective("reduce-scatter", name, comm)  # a record of the table
    >>> call = rs.bind(buf, buf[lo:hi])  # ours reduces in place: out is the own chunk
    >>> call()
"""

from __future__ import annotations

from functools import partial

import numpy as np
from mpi4py import MPI

from dist_logreg.collective import algorithms
from dist_logreg.comm import reduce_scatter_allgather as halves
from dist_logreg.comm.links import Link, Scratch, Traffic, bounds


def counts_displs(n: int, p: int) -> tuple[list[int], list[int]]:
    """Element counts and offsets of the ``p`` chunks of an ``n``-element buffer."""
    b = bounds(n, p)
    return [b[k + 1] - b[k] for k in range(p)], b[:-1]


class _MPI:
    """The MPI library's own (its traffic is not observable)."""

    name = algorithms.MPI.name
    in_place = False  # reduce-scatter into a separate ``out``
    traffic = None

    def __init__(self, comm: MPI.Comm):
        self.comm = comm


class MPIReduceScatter(_MPI):
    collective = "reduce-scatter"

    def bind(self, buf: np.ndarray, out: np.ndarray | None = None):
        counts, _ = counts_displs(buf.size, self.comm.Get_size())
        if len(set(counts)) == 1:
            return partial(self.comm.Reduce_scatter_block, buf, out, MPI.SUM)
        return partial(self.comm.Reduce_scatter, buf, out, counts, MPI.SUM)


class MPIAllgather(_MPI):
    collective = "allgather"

    def bind(self, buf: np.ndarray, out: np.ndarray | None = None):
        counts, displs = counts_displs(buf.size, self.comm.Get_size())
        if len(set(counts)) == 1:
            return partial(self.comm.Allgather, MPI.IN_PLACE, buf)
        return partial(self.comm.Allgatherv, MPI.IN_PLACE, [buf, counts, displs, None])


class MPIBroadcast(_MPI):
    collective = "broadcast"

    def bind(self, buf: np.ndarray, out: np.ndarray | None = None):
        return partial(self.comm.Bcast, buf, 0)


class MPIAlltoall(_MPI):
    collective = "alltoall"

    def bind(self, buf: np.ndarray, out: np.ndarray | None = None):
        return partial(self.comm.Alltoall, buf, out)


class _Ours:
    """One of our halves (:mod:`dist_logreg.comm.reduce_scatter_allgather`), its traffic counted."""

    in_place = True  # reduce-scatter leaves the result in the own chunk of ``buf``
    collective = name = "?"

    def __init__(self, comm: MPI.Comm):
        self.traffic = Traffic(comm.Get_size())
        self._link = Link(comm, comm, self.traffic)
        self._scratch = Scratch()

    def bind(self, buf: np.ndarray, out: np.ndarray | None = None):
        return partial(type(self).run, self._link, buf, self._scratch)


class RingReduceScatter(_Ours):
    collective, name = "reduce-scatter", algorithms.RING.name
    run = staticmethod(halves.ring_reduce_scatter)


class HalvingReduceScatter(_Ours):
    collective, name = "reduce-scatter", algorithms.RECURSIVE_HALVING
    run = staticmethod(halves.recursive_halving)


class RingAllgather(_Ours):
    collective, name = "allgather", algorithms.RING.name
    run = staticmethod(halves.ring_allgather)


class DoublingAllgather(_Ours):
    collective, name = "allgather", algorithms.RECURSIVE_DOUBLING.name
    run = staticmethod(halves.recursive_doubling_allgather)


def make_collective(collective: str, name: str, comm: MPI.Comm):
    """Collective: the implementation ``name`` of ``collective`` on ``comm``, from its
    record in the algorithm table (a ``ValueError`` names the choices)."""
    return algorithms.get(name, collective).runner_class()(comm)
