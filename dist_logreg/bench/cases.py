"""What ``bench`` runs for each collective: its buffers, its timed call and its exact check.

A case is one implementation of one collective at one size. :meth:`Case.setup` allocates the
buffers (zeros: what the timed calls move, so that repeated in-place sums never overflow)
and returns the call to time; :meth:`Case.check` refills them with known small integers,
runs the call once more and counts the elements that differ from the exact result (the
integers are exact in float32 and float64). This is nccl-tests' way: timed iterations, then
a checked one, on every row.

Values (``e``: element index, ``r``: rank, ``p`` ranks, ``v(e) = e mod 13 + 1``):

- allreduce, reduce-scatter: rank ``r`` holds ``v(e) * (r + 1)``; the sum is
  ``v(e) * p(p+1)/2`` (reduce-scatter: on each rank's own chunk);
- allgather: rank ``r`` fills its chunk with ``v(e) * (r + 1)``;
- broadcast: rank 0 holds ``v(e)``, the others zeros;
- alltoall: what rank ``s`` sends to rank ``d``, element ``e`` of the chunk:
  ``v(e) + 14 * (s + p * d)``.

Sizes: the payload ``S`` is nccl-tests' "size": the allreduce and broadcast buffer, the
reduce-scatter input, the allgather output and the alltoall send buffer. Where chunks are
involved the element count is rounded down to a multiple of ``p`` (at least ``p``).
"""

from __future__ import annotations

import numpy as np

from dist_logreg.collective.algorithms import BUSBW_FACTORS, COLLECTIVES
from dist_logreg.comm.links import bounds

CHUNKED = ("reduce-scatter", "allgather", "alltoall")


class Case:
    """One implementation ``impl`` (an allreduce, or a :mod:`~dist_logreg.comm.collectives`
    object) of ``collective`` on ``comm``."""

    def __init__(self, collective: str, impl, comm):
        if collective not in COLLECTIVES:
            raise ValueError(f"expected one of {COLLECTIVES}, got {collective!r}")
        self.collective, self.impl, self.comm = collective, impl, comm
        self.name = impl.name
        self.p, self.rank = comm.Get_size(), comm.Get_rank()

    def busbw_factor(self) -> float:
        return BUSBW_FACTORS[self.collective](self.p)

    def count_for(self, nbytes: int, itemsize: int) -> int:
        n = max(1, nbytes // itemsize)
        if self.collective in CHUNKED:
            n = max(self.p, n - n % self.p)
        return n

    def setup(self, nbytes: int, dtype):
        """Allocate zeroed buffers for ``nbytes``; returns ``(count, call)``."""
        dtype = np.dtype(dtype)
        n = self.count_for(nbytes, dtype.itemsize)
        self.buf = np.zeros(n, dtype=dtype)
        self.out = None
        b = bounds(n, self.p)
        self.own = slice(b[self.rank], b[self.rank + 1])
        if self.collective == "allreduce":
            return n, self.impl.bind(self.buf)
        if self.collective == "reduce-scatter":
            if self.impl.in_place:
                self.out = self.buf[self.own]
            else:
                self.out = np.zeros(self.own.stop - self.own.start, dtype=dtype)
        elif self.collective == "alltoall":
            self.out = np.zeros(n, dtype=dtype)
        return n, self.impl.bind(self.buf, self.out)

    def check(self, call) -> int:
        """Fill the buffers with known values, ``call()`` once; elements wrong on this rank."""
        buf, p, r, kind = self.buf, self.p, self.rank, self.collective
        v = (np.arange(buf.size) % 13 + 1).astype(buf.dtype)
        if kind == "allgather":
            buf[:] = 0
            buf[self.own] = v[self.own] * (r + 1)
            counts = np.diff(bounds(buf.size, p))
            expected, got = v * np.repeat(np.arange(1, p + 1), counts).astype(buf.dtype), buf
        elif kind == "broadcast":
            buf[:] = v if r == 0 else 0
            expected, got = v, buf
        elif kind == "alltoall":
            c = buf.size // p
            local = (np.arange(c) % 13 + 1).astype(buf.dtype)
            for d in range(p):
                buf[d * c : (d + 1) * c] = local + 14 * (r + p * d)
            expected = np.concatenate([local + 14 * (s + p * r) for s in range(p)])
            got = self.out
        else:  # allreduce, reduce-scatter
            buf[:] = v * (r + 1)
            total = v * (p * (p + 1) // 2)
            expected, got = (total, buf) if kind == "allreduce" else (total[self.own], None)
        call()
        if got is None:
            got = self.out
        return int(np.count_nonzero(got != expected))
