"""Schedules and closed forms of reduce-scatter, allgather, broadcast and alltoall (pure).

The step-by-step schedules of :mod:`dist_logreg.comm.reduce_scatter_allgather` (the ring's
and Rabenseifner's two halves), as flows between ranks in the units of
:mod:`dist_logreg.collective.steps` (fractions of the payload ``S``: the reduce-scatter's
input, the allgather's output), and
the Hockney coefficients ``(a, b, c)`` of ``a alpha + b S beta + c S gamma`` on one kind of
link (Thakur, Rabenseifner and Gropp 2005; ``p'`` the largest power of two <= p, ``f`` 1
when ranks fold in):

=========================  ===================  ==========================  ============
algorithm                  a(p)                 b(p)                        c(p)
=========================  ===================  ==========================  ============
ring reduce-scatter        p-1                  (p-1)/p                     (p-1)/p
recursive halving          lg p' + 2f           (p'-1)/p' + f(1 + 1/p)      (p'-1)/p' + f
ring allgather             p-1                  (p-1)/p                     0
recursive doubling (AG)    lg p' + 2f           (p'-1)/p' + f(1 + 1/p)      0
mpi reduce-scatter         ceil(lg p)           (p-1)/p                     (p-1)/p
mpi allgather              ceil(lg p)           (p-1)/p                     0
mpi broadcast              ceil(lg p)           1                           0
mpi alltoall               p-1                  (p-1)/p                     0
=========================  ===================  ==========================  ============

The MPI rows are generic shapes (the library's choice is not observable): a logarithmic
latency and the bandwidth-optimal load, a pairwise exchange for alltoall. For ``p`` not a
power of two the folded group's chunks are uneven; the schedules below count them exactly,
the closed forms take the even-chunk approximation.
"""

from __future__ import annotations

import math

import numpy as np

from dist_logreg.collective.steps import Phase, _phase, pow2_below


def _groups(p: int) -> tuple[int, int, np.ndarray, list[int]]:
    """``(p', extra, real, first)``: group rank ``i`` is rank ``real[i]`` and owns chunks
    ``first[i] .. first[i + 1] - 1`` (two for the paired ranks), as
    comm.reduce_scatter_allgather folds."""
    q = pow2_below(p)
    extra = p - q
    real = np.array([2 * i + 1 if i < extra else i + extra for i in range(q)], dtype=np.int64)
    first = [2 * i if i < extra else i + extra for i in range(q)] + [p]
    return q, extra, real, first


def ring_reduce_scatter_phases(p: int) -> list[Phase]:
    ranks = np.arange(p)
    return [_phase(p - 1, ranks, np.roll(ranks, -1), 1.0 / p, 1.0 / p)] if p > 1 else []


def ring_allgather_phases(p: int) -> list[Phase]:
    ranks = np.arange(p)
    return [_phase(p - 1, ranks, np.roll(ranks, -1), 1.0 / p, 0.0)] if p > 1 else []


def halving_phases(p: int) -> list[Phase]:
    """Fold in (whole buffers), recursive halving, fold out (one chunk)."""
    q, extra, real, first = _groups(p)
    me = np.arange(q)
    evens = np.arange(0, 2 * extra, 2)
    out = [_phase(1, evens, evens + 1, 1.0, 1.0)] if extra else []
    lo, hi = np.zeros(q, dtype=np.int64), np.full(q, q)
    mask = q // 2
    while mask:
        mid = (lo + hi) // 2
        upper = (me & mask) != 0  # keeps the upper half, sends the lower
        slo, shi = np.where(upper, lo, mid), np.where(upper, mid, hi)
        frac = (np.take(first, shi) - np.take(first, slo)) / p
        out.append(_phase(1, real, real[me ^ mask], frac, float(frac.max())))
        lo, hi = np.where(upper, mid, lo), np.where(upper, hi, mid)
        mask >>= 1
    if extra:
        out.append(_phase(1, evens + 1, evens, 1.0 / p, 0.0))
    return out


def doubling_allgather_phases(p: int) -> list[Phase]:
    """Fold in (one chunk), recursive doubling, fold out (the whole buffer)."""
    q, extra, real, first = _groups(p)
    me = np.arange(q)
    evens = np.arange(0, 2 * extra, 2)
    out = [_phase(1, evens, evens + 1, 1.0 / p, 0.0)] if extra else []
    lo, hi = me.copy(), me + 1
    mask = 1
    while mask < q:
        frac = (np.take(first, hi) - np.take(first, lo)) / p
        out.append(_phase(1, real, real[me ^ mask], frac, 0.0))
        width = hi - lo
        upper = (me & mask) != 0
        lo, hi = np.where(upper, lo - width, lo), np.where(upper, hi, hi + width)
        mask <<= 1
    if extra:
        out.append(_phase(1, evens + 1, evens, 1.0, 0.0))
    return out


def _fold(p: int) -> tuple[int, float, float]:
    q = pow2_below(p)
    return q, 1.0 if q != p else 0.0, math.log2(q)


def ring_ar_form(p: int) -> tuple[float, float, float]:
    """The allreduces' closed forms (the table's records; closed_form.py tabulates them)."""
    return 2.0 * (p - 1), 2.0 * (p - 1) / p, (p - 1) / p


def doubling_ar_form(p: int) -> tuple[float, float, float]:
    _, f, k = _fold(p)
    return k + 2 * f, k + 2 * f, k + f


def rabenseifner_ar_form(p: int) -> tuple[float, float, float]:
    q, f, k = _fold(p)
    return 2 * k + 2 * f, 2.0 * (q - 1) / q + 2 * f, (q - 1) / q + f


def generic_ar_form(p: int) -> tuple[float, float, float]:
    return float(math.ceil(math.log2(p))), 2.0 * (p - 1) / p, (p - 1) / p


def ring_rs_form(p: int) -> tuple[float, float, float]:
    return float(p - 1), (p - 1) / p, (p - 1) / p


def ring_ag_form(p: int) -> tuple[float, float, float]:
    return float(p - 1), (p - 1) / p, 0.0


def halving_form(p: int) -> tuple[float, float, float]:
    q, f, k = _fold(p)
    return k + 2 * f, (q - 1) / q + f * (1 + 1 / p), (q - 1) / q + f


def doubling_ag_form(p: int) -> tuple[float, float, float]:
    q, f, k = _fold(p)
    return k + 2 * f, (q - 1) / q + f * (1 + 1 / p), 0.0


def generic_rs_form(p: int) -> tuple[float, float, float]:
    return float(math.ceil(math.log2(p))), (p - 1) / p, (p - 1) / p


def generic_ag_form(p: int) -> tuple[float, float, float]:
    return float(math.ceil(math.log2(p))), (p - 1) / p, 0.0


def generic_bcast_form(p: int) -> tuple[float, float, float]:
    return float(math.ceil(math.log2(p))), 1.0, 0.0


def generic_alltoall_form(p: int) -> tuple[float, float, float]:
    return float(p - 1), (p - 1) / p, 0.0


def one_minus_one_over(p: int) -> float:
    """Bytes one rank sends per payload byte in a bandwidth-optimal half: ``(p-1)/p``."""
    return (p - 1) / p
