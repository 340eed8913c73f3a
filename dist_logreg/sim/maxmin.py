"""Max-min fair sharing of links by flows (progressive filling), vectorised on scipy.sparse.

A flow ``f`` at rate ``r_f`` puts ``A[f, l] * r_f`` on link ``l`` (``A``: flows x links,
weights 1 on a hashed path, ``1/n`` on each of ``n`` sprayed paths). Progressive filling
raises every unfrozen flow's rate together until a link is full, freezes the flows that
cross a full link, and repeats: the max-min fair allocation (Bertsekas and Gallager,
*Data Networks*, 6.5.2). :func:`drain` recomputes it each time flows finish.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: A link is full when less than this share of its capacity is left; flows finishing
#: within this relative time of each other finish together.
TOL = 1e-9


def rates(a: sp.csr_matrix, at: sp.csr_matrix, cap: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Max-min fair rate of each flow (B/s), shape (F,); 0 for inactive flows.

    ``a``: (F, L) CSR, ``at``: its transpose in CSR, ``cap``: (L,) B/s, ``active``: (F,) bool.
    Every active flow must cross at least one link.
    """
    rate = np.zeros(a.shape[0])
    left = cap.astype(float).copy()
    free = active.copy()
    while free.any():
        n = at @ free.astype(float)  # weight of the unfrozen flows on each link
        used = n > 0
        inc = np.min(left[used] / n[used])
        rate[free] += inc
        left[used] -= inc * n[used]
        full = used & (left <= TOL * cap)
        if not full.any():  # rounding: freeze the tightest link anyway
            full = used & (left / np.where(used, n, 1) <= np.min(left[used] / n[used]) * (1 + 1e-6))
        free &= ~((a @ full.astype(float)) > 0)
    return rate


def drain(a: sp.csr_matrix, cap: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    """Finish time (s) of each flow when all start at 0 and share max-min fairly.

    ``a``: (F, L) CSR weights, every row non-empty; ``cap``: (L,) B/s; ``nbytes``: (F,) B.
    Rates are recomputed every time a group of flows finishes, except where every flow
    has the same size: then the flows finish in order of their max-min rates, fastest
    first, and removing the fastest flows changes no other rate (a flow's bottleneck link is
    full and carries no faster flow; the faster flows are not on it), so one allocation
    gives every finish time, ``nbytes / rate``. The tests hold the two ways against each other.
    """
    a = sp.csr_matrix(a)
    at = a.T.tocsr()
    if nbytes.size and np.all(nbytes == nbytes[0]):
        return nbytes / rates(a, at, cap, np.ones(nbytes.size, bool))
    return drain_events(a, at, cap, nbytes)


def drain_events(a, at, cap, nbytes) -> np.ndarray:
    """:func:`drain`, recomputing the rates each time a group of flows finishes."""
    left = nbytes.astype(float).copy()
    done = np.zeros(left.size)
    active = left > 0
    t = 0.0
    while active.any():
        r = rates(a, at, cap, active)
        need = np.full(left.size, np.inf)
        need[active] = left[active] / r[active]
        dt = need.min()
        ends = active & (need <= dt * (1 + TOL))
        t += dt
        left[active] -= r[active] * dt
        done[ends] = t
        left[ends] = 0.0
        active &= ~ends
    return done


def bottleneck_link(a: sp.csr_matrix, cap: np.ndarray, flow: int) -> int:
    """The link of ``flow`` with the most weight per unit of capacity (its tightest link)."""
    row = a.getrow(flow)
    load = np.asarray(a.sum(axis=0)).ravel()[row.indices] / cap[row.indices]
    return int(row.indices[np.argmax(load)])
