"""The interface every allreduce has, and the MPI library's own allreduce.

Every allreduce, and every wrapper around one, has this one signature (PyTorch DDP
comm-hook style)::

    name: str                                  # which algorithm, for the outputs
    allreduce(buf, step=-1) -> None            # blocking in-place SUM over all ranks
    start(buf, step=-1) / progress() / wait()  # the same, non-blocking (bucketed overlap)

``step`` is the optimizer step the call belongs to: algorithms ignore it, the
instrumentation records it. It travels with the call, so no caller sets state on a wrapper.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from mpi4py import MPI

from dist_logreg.collective import algorithms as table


class Allreduce:
    """Base of every allreduce: the non-blocking calls, for algorithms that have none.

    ``start`` of a blocking algorithm runs it to completion at once (nothing overlaps);
    :class:`MPIAllreduce` overrides :meth:`istart` with a real ``Iallreduce``.
    """

    name = "?"
    traffic = None  # algorithms written here count their traffic; MPI's own cannot
    node_of = None  # rank -> node index, where the algorithm knows the topology

    def allreduce(self, buf: np.ndarray, step: int = -1) -> None:
        raise NotImplementedError

    def bind(self, buf: np.ndarray):
        """A call with no arguments that reduces ``buf`` once (for a timed loop)."""
        return partial(self.allreduce, buf)

    def istart(self, buf: np.ndarray):
        """Start a non-blocking allreduce; returns an ``MPI.Request``, or None if done."""
        self.allreduce(buf)
        return None

    def start(self, buf: np.ndarray, step: int = -1) -> None:
        req = self.istart(buf)
        if req is not None:
            self._pending().append(req)

    def progress(self) -> None:
        """Let outstanding requests advance (MPI progresses only inside MPI calls)."""
        for req in self._pending():
            req.Test()

    def wait(self) -> None:
        pending = self._pending()
        if pending:
            MPI.Request.Waitall(pending)
            pending.clear()

    def free(self) -> None:
        """Release communicators the algorithm created (collective); a no-op by default."""

    def _pending(self) -> list:
        if not hasattr(self, "_requests"):
            self._requests: list = []
        return self._requests


class MPIAllreduce(Allreduce):
    """The MPI library's own ``MPI_Allreduce``, in place (no second buffer to copy)."""

    name = table.MPI.name

    def __init__(self, comm: MPI.Comm):
        self.comm = comm
        self._allreduce = comm.Allreduce  # bound once: this call is the whole hot path

    def allreduce(self, buf: np.ndarray, step: int = -1) -> None:
        self._allreduce(MPI.IN_PLACE, buf, MPI.SUM)

    def bind(self, buf: np.ndarray):
        # The library call itself, bound: a timed loop adds no Python frame to it.
        return partial(self._allreduce, MPI.IN_PLACE, buf, MPI.SUM)

    def istart(self, buf: np.ndarray):
        return self.comm.Iallreduce(MPI.IN_PLACE, buf, MPI.SUM)
