"""The point-to-point link every algorithm of :mod:`~dist_logreg.comm.p2p` and
:mod:`~dist_logreg.comm.reduce_scatter_allgather` runs on: a communicator with its traffic
counted in the parent's ranks, a reusable receive buffer, and the chunking they share.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


class Traffic:
    """Bytes and messages this rank sent to each rank of the parent communicator."""

    def __init__(self, size: int):
        self.bytes = [0] * size
        self.messages = [0] * size

    def sent(self, dest: int, nbytes: int) -> None:
        self.bytes[dest] += nbytes
        self.messages[dest] += 1


class Scratch:
    """A reusable receive buffer, grown on demand (no allocation per call)."""

    def __init__(self):
        self._buf = np.empty(0)

    def get(self, n: int, dtype) -> np.ndarray:
        if self._buf.dtype != dtype or self._buf.size < n:
            self._buf = np.empty(max(n, 1), dtype=dtype)
        return self._buf[:n]


def bounds(n: int, parts: int) -> list[int]:
    """Split ``n`` elements into ``parts`` contiguous chunks whose sizes differ by at most one:
    chunk ``r`` is ``[b[r], b[r + 1])``."""
    return [k * n // parts for k in range(parts + 1)]


class Link:
    """A communicator plus the map from its ranks to the parent's, and traffic counting."""

    def __init__(self, comm: MPI.Comm, parent: MPI.Comm, traffic: Traffic):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.to_parent = MPI.Group.Translate_ranks(
            comm.Get_group(), list(range(self.size)), parent.Get_group()
        )
        self.traffic = traffic

    def sendrecv(self, send: np.ndarray, dest: int, recv: np.ndarray, source: int) -> None:
        self.comm.Sendrecv(send, dest, 0, recv, source, 0)
        self.traffic.sent(self.to_parent[dest], send.nbytes)

    def send(self, buf: np.ndarray, dest: int) -> None:
        self.comm.Send(buf, dest, 0)
        self.traffic.sent(self.to_parent[dest], buf.nbytes)

    def recv(self, buf: np.ndarray, source: int) -> None:
        self.comm.Recv(buf, source, 0)


def pair_rank(new_rank: int, extra: int) -> int:
    """Rank in the communicator of a rank of the power-of-two group (MPICH's fold: the first
    ``2 * extra`` ranks are paired, the odd one of each pair stays in the group)."""
    return new_rank * 2 + 1 if new_rank < extra else new_rank + extra
