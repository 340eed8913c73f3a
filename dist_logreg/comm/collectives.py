"""The collectives besides allreduce, each as the MPI library's and, where we have one, ours.

Every object has ``collective`` and ``name`` and one method, ``bind(buf, out)``, that
returns a call with no arguments doing the collective once on those buffers (a
``functools.partial`` of the buffer-based mpi4py call, so a timed loop pays nothing on top
of the call itself). The layouts (``n`` elements cut into ``p`` chunks by
:func:`~dist_logreg.comm.halves.bounds`, chunk ``r`` belonging to rank ``r``):

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

    >>> rs = make_collective("reduce-scatter", "ring", comm)
    >>> call = rs.bind(buf, buf[lo:hi])  # ours reduces in place: out is the own chunk
    >>> call()
"""

from __future__ import annotations

from functools import partial

import numpy as np
from mpi4py import MPI

from dist_logreg.collective.algorithms import ALGORITHMS, IMPLEMENTATIONS, RECURSIVE_HALVING
from dist_logreg.comm import halves
from dist_logreg.comm.p2p import _P2P, Traffic, _Scratch

MPI_NAME, RING, RECURSIVE_DOUBLING = ALGORITHMS[0], ALGORITHMS[1], ALGORITHMS[2]


def counts_displs(n: int, p: int) -> tuple[list[int], list[int]]:
    """Element counts and offsets of the ``p`` chunks of an ``n``-element buffer."""
    b = halves.bounds(n, p)
    return [b[k + 1] - b[k] for k in range(p)], b[:-1]


class MPICollective:
    """The MPI library's own reduce-scatter, allgather, broadcast or alltoall."""

    name = MPI_NAME
    in_place = False  # reduce-scatter into a separate ``out``
    traffic = None  # the library's own traffic is not observable

    def __init__(self, collective: str, comm: MPI.Comm):
        self.collective = collective
        self.comm = comm

    def bind(self, buf: np.ndarray, out: np.ndarray | None = None):
        comm, p, kind = self.comm, self.comm.Get_size(), self.collective
        if kind == "broadcast":
            return partial(comm.Bcast, buf, 0)
        if kind == "alltoall":
            return partial(comm.Alltoall, buf, out)
        counts, displs = counts_displs(buf.size, p)
        if kind == "reduce-scatter":
            if len(set(counts)) == 1:
                return partial(comm.Reduce_scatter_block, buf, out, MPI.SUM)
            return partial(comm.Reduce_scatter, buf, out, counts, MPI.SUM)
        if kind == "allgather":
            if len(set(counts)) == 1:
                return partial(comm.Allgather, MPI.IN_PLACE, buf)
            return partial(comm.Allgatherv, MPI.IN_PLACE, [buf, counts, displs, None])
        raise ValueError(f"no MPI collective {kind!r}")


class P2PCollective:
    """One of our halves (:mod:`dist_logreg.comm.halves`), its traffic counted."""

    in_place = True  # reduce-scatter leaves the result in the own chunk of ``buf``

    def __init__(self, collective: str, name: str, comm: MPI.Comm):
        self.collective, self.name = collective, name
        self.traffic = Traffic(comm.Get_size())
        self._link = _P2P(comm, comm, self.traffic)
        self._scratch = _Scratch()
        self._algorithm = OURS[(collective, name)]

    def bind(self, buf: np.ndarray, out: np.ndarray | None = None):
        return partial(self._algorithm, self._link, buf, self._scratch)


#: (collective, name) -> our implementation on point-to-point calls.
OURS = {
    ("reduce-scatter", RING): halves.ring_reduce_scatter,
    ("reduce-scatter", RECURSIVE_HALVING): halves.recursive_halving,
    ("allgather", RING): halves.ring_allgather,
    ("allgather", RECURSIVE_DOUBLING): halves.recursive_doubling_allgather,
}


def make_collective(collective: str, name: str, comm: MPI.Comm):
    """Collective: the implementation ``name`` of ``collective`` on ``comm``."""
    if name not in IMPLEMENTATIONS.get(collective, ()):
        raise ValueError(
            f"no {collective} called {name!r}; expected one of "
            f"{IMPLEMENTATIONS.get(collective, ())}"
        )
    if name == MPI_NAME:
        return MPICollective(collective, comm)
    return P2PCollective(collective, name, comm)
