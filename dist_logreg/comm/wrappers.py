"""Wrappers around an allreduce, with the same interface (:mod:`dist_logreg.comm.base`).

:class:`Instrumented` records every call into preallocated storage; :class:`FP16Compressed`
reduces a half-precision copy. Without wrappers results are unchanged; the instrumentation
only reads the clock, so results with and without it are bit-identical.
"""

from __future__ import annotations

from array import array
from time import perf_counter_ns

import numpy as np
from mpi4py import MPI

from dist_logreg.comm.base import Allreduce


class Instrumented(Allreduce):
    """Wraps an allreduce; records start time, duration, payload bytes and step per call.

    Storage is four preallocated ``array('q')`` (a C int64 store, no Python object kept
    per call, where a list would keep one int per value), grown by doubling if a run makes
    more calls than planned. Nothing is built or written per call; :meth:`records` views
    them as numpy arrays at the end. The wrapper's cost per call (two clock reads, four
    stores) is measured against the bare call by ``benchmarks/bench_overhead.py``.

    For non-blocking calls the duration runs from the post to the moment completion was
    observed (by :meth:`progress` or :meth:`wait`): an upper bound on the transfer.

    Each call's ``step`` argument is recorded with it: the optimizer step it belongs to.
    """

    def __init__(self, inner: Allreduce, capacity: int = 1024):
        self.inner = inner
        self.name = inner.name
        self.traffic = inner.traffic
        self.node_of = inner.node_of
        self.calls = 0
        self._call = inner.allreduce
        self._wire_itemsize = getattr(inner, "wire_itemsize", 0)  # compressed payloads
        capacity = max(1, capacity)
        self._cap = capacity
        self._start = array("q", bytes(8 * capacity))
        self._ns = array("q", bytes(8 * capacity))
        self._bytes = array("q", bytes(8 * capacity))
        self._step = array("q", bytes(8 * capacity))
        self._inflight: list = []  # (request, record index)

    def allreduce(self, buf: np.ndarray, step: int = -1, _clock=perf_counter_ns) -> None:
        t0 = _clock()
        self._call(buf, step)
        t1 = _clock()
        i = self.calls
        if i == self._cap:
            self._grow()
        self._start[i] = t0
        self._ns[i] = t1 - t0
        self._bytes[i] = buf.size * self._wire_itemsize if self._wire_itemsize else buf.nbytes
        self._step[i] = step
        self.calls = i + 1

    def start(self, buf: np.ndarray, step: int = -1) -> None:
        t0 = perf_counter_ns()
        req = self.inner.istart(buf)
        i = self.calls
        if i == self._cap:
            self._grow()
        self._start[i] = t0
        self._bytes[i] = buf.size * self._wire_itemsize if self._wire_itemsize else buf.nbytes
        self._step[i] = step
        self.calls = i + 1
        if req is None:  # a blocking algorithm: already complete
            self._ns[i] = perf_counter_ns() - t0
        else:
            self._inflight.append((req, i))

    def progress(self) -> None:
        still = []
        for req, i in self._inflight:
            if req.Test():
                self._ns[i] = perf_counter_ns() - self._start[i]
            else:
                still.append((req, i))
        self._inflight = still

    def wait(self) -> None:
        requests = [req for req, _ in self._inflight]
        while requests:  # Waitany: each bucket's own completion time
            k = MPI.Request.Waitany(requests)
            i = self._inflight[k][1]
            self._ns[i] = perf_counter_ns() - self._start[i]
            del requests[k], self._inflight[k]
        self.inner.wait()  # let a wrapped layer finish its part (fp16: decompress)

    def free(self) -> None:
        self.inner.free()

    def _grow(self) -> None:
        for name in ("_start", "_ns", "_bytes", "_step"):
            getattr(self, name).frombytes(bytes(8 * self._cap))  # as many zeros again
        self._cap *= 2

    def records(self) -> dict[str, np.ndarray]:
        """The calls so far as int64 arrays: ``start_ns``, ``ns``, ``bytes``, ``step``."""
        n = self.calls
        return {
            key: np.frombuffer(getattr(self, name), dtype=np.int64)[:n].copy()
            for key, name in (
                ("start_ns", "_start"),
                ("ns", "_ns"),
                ("bytes", "_bytes"),
                ("step", "_step"),
            )
        }


class FP16Compressed(Allreduce):
    """Reduce a half-precision copy of the buffer (Horovod's fp16 compression).

    float16 tops out at 65504, and the buffer holds *sums* over a rank's rows, which grow
    with the batch. Each rank therefore divides by ``scale`` (the global batch size, known
    before the step) before the cast, so what is summed is each rank's share of the *mean*,
    bounded by the largest feature magnitude whatever the batch or world size; the result
    is multiplied back. Costs: half the bytes of float32, a quarter of float64, and about
    3 significant digits per element.
    """

    wire_itemsize = 2  # what crosses the network: float16

    def __init__(self, inner: Allreduce, scale: float):
        self.inner = inner
        self.name = inner.name
        self.traffic = inner.traffic
        self.node_of = inner.node_of
        self.scale = float(scale)
        self._halves: dict[tuple[int, int], np.ndarray] = {}  # (address, size) -> half copy
        self._inflight: list[tuple[np.ndarray, np.ndarray]] = []  # (buf, half) to decompress

    def compress(self, buf: np.ndarray) -> np.ndarray:
        """The scaled float16 copy of ``buf``, in storage reused for the same buffer."""
        key = (buf.ctypes.data, buf.size)
        half = self._halves.get(key)
        if half is None:
            half = self._halves[key] = np.empty(buf.size, dtype=np.float16)
        np.multiply(buf, 1.0 / self.scale, out=half, casting="same_kind")
        return half

    def decompress(self, half: np.ndarray, buf: np.ndarray) -> None:
        buf[...] = half  # widen first: the product may not fit in float16
        buf *= self.scale

    def allreduce(self, buf: np.ndarray, step: int = -1) -> None:
        half = self.compress(buf)
        self.inner.allreduce(half, step)
        self.decompress(half, buf)

    def istart(self, buf: np.ndarray):
        # Non-blocking: the half copy must live until wait(); decompress happens there.
        half = self.compress(buf)
        self._inflight.append((buf, half))
        return self.inner.istart(half)

    def free(self) -> None:
        self.inner.free()

    def wait(self) -> None:
        super().wait()
        for buf, half in self._inflight:
            self.decompress(half, buf)
        self._inflight.clear()
