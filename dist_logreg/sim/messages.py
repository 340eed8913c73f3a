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
    last_send = np.full(ranks, -1, dtype=np.int64)
    pending: list[list[int]] = [[] for _ in range(ranks)]
    src, dst, size, phase, red, deps = [], [], [], [], [], [[]]
    n = 0
    for t, (s, d, frac, reduces) in enumerate(steps(algorithm, ranks, node_of)):
        ids = np.arange(n, n + s.size)
        for r in s.tolist():
            own = [int(last_send[r])] if last_send[r] >= 0 else []
            deps.append(own + pending[r])
            pending[r] = []
        for i, r in zip(ids.tolist(), d.tolist(), strict=True):
            pending[r].append(i)
        last_send[s] = ids
        b = chunk_bytes(frac, nbytes)
        src.append(s), dst.append(d), size.append(b), phase.append(np.full(s.size, t))
        red.append(b if reduces else np.zeros_like(b))
        n += s.size
    lengths = np.array([len(x) for x in deps[1:]], dtype=np.int64)
    cat = lambda xs, dt=np.int64: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    return MessageGraph(
        src_rank=cat(src),
        dst_rank=cat(dst),
        nbytes=cat(size),
        phase=cat(phase),
        reduce=cat(red),
        dep_indptr=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        dep_indices=np.array([j for x in deps[1:] for j in x], dtype=np.int64),
    )
