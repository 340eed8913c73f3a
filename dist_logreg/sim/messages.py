"""The messages of one allreduce and what each waits for: ``messages(algorithm, ranks, nbytes)``.

Built from the algorithm's phases (:func:`dist_logreg.collective.schedule.phases`, every repeat
of a phase its own step). A ``MessageGraph`` has arrays, one entry per message:
``src_rank``, ``dst_rank``, ``nbytes`` (int, B, rounded up: :func:`chunk_bytes`), ``phase``
(the step), ``reduce`` (bytes the receiver reduces on arrival), and dependencies in CSR
form, ``dep_indptr``/``dep_indices``:
message ``i`` starts once every message ``dep_indices[dep_indptr[i]:dep_indptr[i+1]]`` has
arrived. A rank's message of step ``t`` depends on its own previous send and on every
message it received since that send (in the ring: the send and the receive of step
``t-1``). Only built for ``--exact`` and the packet engine: its size grows with ranks x steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dist_logreg.collective.schedule import phases
from dist_logreg.sim import jit
from dist_logreg.sim.jit import njit


@dataclass(frozen=True)
class MessageGraph:
    src_rank: np.ndarray
    dst_rank: np.ndarray
    nbytes: np.ndarray
    phase: np.ndarray
    reduce: np.ndarray
    dep_indptr: np.ndarray
    dep_indices: np.ndarray

    @property
    def size(self) -> int:
        return self.src_rank.size

    def deps(self, i: int) -> np.ndarray:
        return self.dep_indices[self.dep_indptr[i] : self.dep_indptr[i + 1]]


def steps(algorithm: str, ranks: int, node_of=None) -> list:
    """``[(src, dst, frac, reduces)]`` per step, repeats expanded."""
    out = []
    for ph in phases(algorithm, ranks, node_of):
        out += [(ph.src, ph.dst, ph.frac, ph.reduce > 0)] * ph.repeat
    return out


def chunk_bytes(frac, nbytes: int) -> np.ndarray:
    """Whole bytes of messages carrying ``frac`` of ``nbytes``: rounded UP, the largest
    chunk of an uneven split (1000 B in 16 chunks: some of 63 B, and a ring's chain of
    dependencies carries one chunk all the way round), never 0 B for a share of a payload
    (a 2-byte ring on 16 ranks still sends a byte per message, and pays its latency).
    Rounding to the nearest would send 62 B and beat the lower bound."""
    exact = np.asarray(frac, dtype=float) * nbytes
    return np.ceil(exact * (1.0 - 1e-12)).astype(np.int64)  # 65536.0000001 is 65536


def messages(algorithm: str, ranks: int, nbytes: int, node_of=None) -> MessageGraph:
    """Every message of one allreduce of ``nbytes`` on ``ranks`` ranks, with dependencies."""
    st = steps(algorithm, ranks, node_of)
    cat = lambda xs: np.concatenate(xs, dtype=np.int64) if xs else np.zeros(0, np.int64)  # noqa: E731
    sizes, chunk = [], {}  # repeats of a step share its arrays: one rounding each
    for s, _, frac, _ in st:
        sizes.append(s.size)
        chunk.setdefault(id(frac), chunk_bytes(frac, nbytes))
    b = [chunk[id(frac)] for _, _, frac, _ in st]
    src, dst = cat([s for s, *_ in st]), cat([d for _, d, *_ in st])
    start = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
    indptr, indices = jit.interruptible(depends, src, dst, start, np.int64(ranks))
    return MessageGraph(
        src_rank=src,
        dst_rank=dst,
        nbytes=cat(b),
        phase=np.repeat(np.arange(len(st), dtype=np.int64), sizes),
        reduce=cat([x if st[t][3] else np.zeros_like(x) for t, x in enumerate(b)]),
        dep_indptr=indptr,
        dep_indices=indices,
    )


@njit
def depends(src, dst, start, ranks, posted=None):
    """The dependency CSR of messages ``start[t]:start[t+1]`` of each step ``t``: a send
    waits for its rank's previous send and for what the rank received since (in order).

    With ``posted`` (bool per message, MPI's rendezvous: :mod:`.exact`): instead, for each
    message ``i`` where it is set, what its receiver waited for before the step of ``i``
    (its last send before it, and what it received after that), else nothing."""
    m = src.size
    indptr, nxt = np.zeros(m + 1, np.int64), np.full(m, -1, np.int64)
    for fill in range(2):  # count, then the same walk writing the indices
        indices = np.empty(indptr[m] if fill else 0, np.int64)
        last, count = np.full(ranks, -1, np.int64), np.zeros(ranks, np.int64)
        head, tail = np.full(ranks, -1, np.int64), np.full(ranks, -1, np.int64)
        for t in range(start.size - 1):
            for i in range(start[t], start[t + 1]):  # sends first: what the rank has by now
                r = src[i] if posted is None else dst[i]
                if posted is not None and not posted[i]:
                    continue
                if not fill:
                    indptr[i + 1] = (1 if last[r] >= 0 else 0) + count[r]
                else:
                    k, j = indptr[i], head[r]
                    if last[r] >= 0:
                        indices[k], k = last[r], k + 1
                    for _ in range(count[r]):
                        indices[k], k, j = j, k + 1, nxt[j]
                if posted is None:
                    head[r], count[r] = -1, 0
            for i in range(start[t], start[t + 1]):
                if posted is not None:
                    head[src[i]], count[src[i]] = -1, 0
                last[src[i]] = i
            for i in range(start[t], start[t + 1]):  # then this step's receives
                r = dst[i]
                if count[r] == 0:
                    head[r] = i
                else:
                    nxt[tail[r]] = i
                tail[r], count[r] = i, count[r] + 1
        if not fill:
            for i in range(m):
                indptr[i + 1] += indptr[i]
    return indptr, indices
