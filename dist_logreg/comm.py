"""Communication: reduce a flat numpy buffer in place, and the instrumentation around it.

Knows nothing of models. Every allreduce implementation has the same tiny interface::

    name: str                         # which algorithm, for the outputs
    allreduce(buf: ndarray) -> None   # in-place SUM over all ranks of the communicator

and :class:`Instrumented` wraps any of them with the same interface, recording each
call into preallocated storage. With or without the wrapper, results are bit-identical:
it only reads the clock around the call.
"""

from __future__ import annotations

from time import perf_counter_ns

import numpy as np
from mpi4py import MPI


class MPIAllreduce:
    """The MPI library's own ``MPI_Allreduce``, in place (no second buffer to copy)."""

    name = "mpi"

    def __init__(self, comm: MPI.Comm):
        self.comm = comm
        self._allreduce = comm.Allreduce  # bound once: this call is the whole hot path

    def allreduce(self, buf: np.ndarray) -> None:
        self._allreduce(MPI.IN_PLACE, buf, MPI.SUM)


class Instrumented:
    """Wraps an allreduce; records start time, duration, payload bytes and step per call.

    Storage is preallocated Python lists (an element store costs ~20 ns, a numpy scalar
    store ~80 ns), grown by doubling if a run makes more calls than planned. Nothing is
    built or written per call; :meth:`records` turns them into arrays at the end. The
    wrapper costs about 0.2-0.4 us per call (two clock reads and four list stores): noise
    next to a step, but visible next to a few-microsecond allreduce of a tiny buffer
    (benchmarks/bench_step.py measures it).

    Set ``step`` before each call so records carry the optimizer step they belong to.
    """

    def __init__(self, inner, capacity: int = 1024):
        self.inner = inner
        self.name = inner.name
        self.step = -1
        self.calls = 0
        self._call = inner.allreduce
        capacity = max(1, capacity)
        self._start = [0] * capacity
        self._ns = [0] * capacity
        self._bytes = [0] * capacity
        self._step = [0] * capacity

    def allreduce(self, buf: np.ndarray, _clock=perf_counter_ns) -> None:
        t0 = _clock()
        self._call(buf)
        t1 = _clock()
        i = self.calls
        if i == len(self._ns):
            self._grow()
        self._start[i] = t0
        self._ns[i] = t1 - t0
        self._bytes[i] = buf.nbytes
        self._step[i] = self.step
        self.calls = i + 1

    def _grow(self) -> None:
        for name in ("_start", "_ns", "_bytes", "_step"):
            lst = getattr(self, name)
            lst.extend([0] * len(lst))

    def records(self) -> dict[str, np.ndarray]:
        """The calls so far as int64 arrays: ``start_ns``, ``ns``, ``bytes``, ``step``."""
        n = self.calls
        return {
            "start_ns": np.array(self._start[:n], dtype=np.int64),
            "ns": np.array(self._ns[:n], dtype=np.int64),
            "bytes": np.array(self._bytes[:n], dtype=np.int64),
            "step": np.array(self._step[:n], dtype=np.int64),
        }


def busbw_factor(world_size: int) -> float:
    """nccl-tests' bus-bandwidth factor for allreduce, ``2(p-1)/p``: busbw = algbw * factor."""
    return 2.0 * (world_size - 1) / world_size
