"""Reduce-scatter and allgather on point-to-point calls: the two halves of two allreduces.

The ring allreduce is a ring reduce-scatter followed by a ring allgather; Rabenseifner's is
a reduce-scatter by recursive halving followed by an allgather by recursive doubling. Here
each half stands alone, with the layout a reduce-scatter and an allgather have: the buffer
of ``n`` elements is cut into ``p`` contiguous chunks (sizes differ by at most one,
``bounds(n, p)``) and chunk ``r`` belongs to rank ``r``.

- reduce-scatter, in place: every rank passes its whole buffer; afterwards rank ``r``'s
  chunk holds the SUM over ranks of that chunk (the other chunks hold partial sums).
- allgather, in place: rank ``r`` passes the buffer with its own chunk filled; afterwards
  every rank holds every chunk.

Costs per rank (``S`` payload bytes, ``p`` a power of two; Thakur, Rabenseifner and Gropp
2005): ring ``(p-1)`` messages of ``S/p``; recursive halving/doubling ``log2(p)`` messages,
``(p-1)/p * S`` in all. For other ``p``, halving and doubling fold the first ``2 * extra``
ranks in pairs (MPICH's scheme), which adds one message of up to ``S`` (halving: the whole
buffer in, one chunk out; doubling: one chunk in, the whole buffer out).

Every element of a reduced chunk is summed in one fixed order, so a chunk's bits do not
depend on which rank reads it.
"""

from __future__ import annotations

import numpy as np

from dist_logreg.comm.links import Link, Scratch, bounds, pair_rank


def ring_reduce_scatter(link: Link, buf: np.ndarray, scratch: Scratch, shift: int = 0) -> None:
    """``p - 1`` steps around ``r -> r+1``; rank ``r`` ends with the sum of chunk ``r``
    (of chunk ``r + shift`` with ``shift``: the ring allreduce's own order, ``shift=1``)."""
    p, r = link.size, link.rank
    if p == 1:
        return
    b = bounds(buf.size, p)
    right, left = (r + 1) % p, (r - 1) % p
    tmp = scratch.get(b[1] - b[0] + 1, buf.dtype)
    for s in range(p - 1):  # send the chunk summed so far, add the one coming in
        sc, rc = (r + shift - 1 - s) % p, (r + shift - 2 - s) % p
        incoming = tmp[: b[rc + 1] - b[rc]]
        link.sendrecv(buf[b[sc] : b[sc + 1]], right, incoming, left)
        buf[b[rc] : b[rc + 1]] += incoming


def ring_allgather(
    link: Link, buf: np.ndarray, scratch: Scratch | None = None, shift: int = 0
) -> None:
    """``p - 1`` steps around ``r -> r+1``, each chunk received straight into place; rank
    ``r`` starts with chunk ``r + shift`` filled."""
    p, r = link.size, link.rank
    if p == 1:
        return
    b = bounds(buf.size, p)
    right, left = (r + 1) % p, (r - 1) % p
    for s in range(p - 1):
        sc, rc = (r + shift - s) % p, (r + shift - s - 1) % p
        link.sendrecv(buf[b[sc] : b[sc + 1]], right, buf[b[rc] : b[rc + 1]], left)


def _groups(p: int) -> tuple[int, int, list[int]]:
    """``(p2, extra, first)``: rank ``i`` of the power-of-two group owns chunks
    ``first[i] .. first[i + 1] - 1`` (two chunks for the ``extra`` paired ranks)."""
    p2 = 1 << (p.bit_length() - 1)
    extra = p - p2
    return p2, extra, [2 * i if i < extra else i + extra for i in range(p2)] + [p]


def recursive_halving(link: Link, buf: np.ndarray, scratch: Scratch) -> None:
    """Reduce-scatter by recursive halving: ``log2(p)`` exchanges of halving size."""
    p, r = link.size, link.rank
    if p == 1:
        return
    b = bounds(buf.size, p)
    p2, extra, first = _groups(p)
    tmp = scratch.get(buf.size, buf.dtype)
    if r < 2 * extra:  # fold in: the even rank of each pair hands its buffer to the odd one
        if r % 2 == 0:
            link.send(buf, r + 1)
            link.recv(buf[b[r] : b[r + 1]], r + 1)  # fold out: its own finished chunk
            return
        link.recv(tmp, r - 1)
        buf += tmp
    me = r // 2 if r < 2 * extra else r - extra
    lo, hi = 0, p2  # the group ranks whose chunks I still reduce
    mask = p2 // 2
    while mask:
        partner = pair_rank(me ^ mask, extra)
        mid = (lo + hi) // 2
        (klo, khi), (slo, shi) = ((lo, mid), (mid, hi)) if not me & mask else ((mid, hi), (lo, mid))
        keep = slice(b[first[klo]], b[first[khi]])
        incoming = tmp[: keep.stop - keep.start]
        link.sendrecv(buf[b[first[slo]] : b[first[shi]]], partner, incoming, partner)
        buf[keep] += incoming
        lo, hi = klo, khi
        mask >>= 1
    if r < 2 * extra:  # the odd rank of a pair: give the even one its chunk
        link.send(buf[b[r - 1] : b[r]], r - 1)


def recursive_doubling_allgather(link: Link, buf: np.ndarray, scratch=None) -> None:
    """Allgather by recursive doubling: ``log2(p)`` exchanges of doubling size."""
    p, r = link.size, link.rank
    if p == 1:
        return
    b = bounds(buf.size, p)
    p2, extra, first = _groups(p)
    if r < 2 * extra:  # fold in: the even rank of a pair hands its chunk to the odd one
        if r % 2 == 0:
            link.send(buf[b[r] : b[r + 1]], r + 1)
            link.recv(buf, r + 1)  # fold out: the whole result
            return
        link.recv(buf[b[r - 1] : b[r]], r - 1)
    me = r // 2 if r < 2 * extra else r - extra
    lo, hi = me, me + 1  # the group ranks whose chunks I hold
    mask = 1
    while mask < p2:
        partner = pair_rank(me ^ mask, extra)
        width = hi - lo
        plo, phi = (lo + width, hi + width) if not me & mask else (lo - width, lo)
        link.sendrecv(
            buf[b[first[lo]] : b[first[hi]]], partner, buf[b[first[plo]] : b[first[phi]]], partner
        )
        lo, hi = min(lo, plo), max(hi, phi)
        mask <<= 1
    if r < 2 * extra:
        link.send(buf, r - 1)
