"""Cost-model formulas of an allreduce (pure arithmetic: no MPI, no numpy).

Hockney alpha-beta-gamma after Thakur, Rabenseifner and Gropp (2005), with the coefficients
MPICH's sources state: one allreduce of ``n`` payload bytes on ``p`` ranks costs
``a(p)*alpha + b(p)*n*beta + c(p)*n*gamma`` on its critical path, ``alpha`` seconds per
message, ``beta`` per byte sent, ``gamma`` per byte reduced. See DESIGN.md.

=====================  ===================  =====================  ====================
algorithm              a(p)                 b(p)                   c(p)
=====================  ===================  =====================  ====================
ring                   2(p-1)               2(p-1)/p               (p-1)/p
recursive-doubling     lg p' + 2f           lg p' + 2f             lg p' + f
rabenseifner           2 lg p' + 2f         2(p'-1)/p' + 2f        (p'-1)/p' + f
mpi (generic)          ceil(lg p)           2(p-1)/p               (p-1)/p
=====================  ===================  =====================  ====================

``p'`` is the largest power of two <= p and ``f`` is 1 when ``p != p'`` (MPICH folds the
extra ranks in first, whole buffers, and hands them the result at the end), else 0. For
``mpi`` the library's choice is not observable: the generic form assumes the latency of a
logarithmic algorithm and the bandwidth of an optimal one, and a fit says so.
"""

from __future__ import annotations

import math


def busbw_factor(world_size: int) -> float:
    """nccl-tests' bus-bandwidth factor for allreduce, ``2(p-1)/p``: busbw = algbw * factor."""
    return 2.0 * (world_size - 1) / world_size


def pow2_below(p: int) -> int:
    """The largest power of two <= ``p`` (the group MPICH's algorithms fold into)."""
    return 1 << (p.bit_length() - 1)


def coefficients(name: str, p: int) -> tuple[float, float, float]:
    """``(a, b, c)`` of one allreduce on ``p`` ranks over one kind of link (table above)."""
    if p <= 1:
        return 0.0, 0.0, 0.0
    q = pow2_below(p)
    f = 1.0 if q != p else 0.0
    k = math.log2(q)
    if name == "ring":
        return 2.0 * (p - 1), 2.0 * (p - 1) / p, (p - 1) / p
    if name == "recursive-doubling":
        return k + 2 * f, k + 2 * f, k + f
    if name == "rabenseifner":
        return 2 * k + 2 * f, 2.0 * (q - 1) / q + 2 * f, (q - 1) / q + f
    if name == "mpi":
        return float(math.ceil(math.log2(p))), 2.0 * (p - 1) / p, (p - 1) / p
    raise ValueError(f"no closed-form cost for {name!r}; see hierarchical_coefficients")


def hierarchical_coefficients(ranks_per_node: int, nodes: int) -> dict[str, float]:
    """Hierarchical allreduce, ``k`` ranks in each of ``H`` nodes, per kind of link.

    Linear reduce inside each node ``(k-1)(alpha_i + n beta_i + n gamma)``, ring among the
    node leaders ``2(H-1) alpha_e + 2(H-1)/H n beta_e + (H-1)/H n gamma``, linear broadcast
    ``(k-1)(alpha_i + n beta_i)``. Keys: ``a_intra b_intra a_inter b_inter c``.
    """
    k, h = ranks_per_node, nodes
    a_e, b_e, c_e = coefficients("ring", h)
    return {
        "a_intra": 2.0 * (k - 1),
        "b_intra": 2.0 * (k - 1),
        "a_inter": a_e,
        "b_inter": b_e,
        "c": (k - 1) + c_e,
    }


def model_wire_bytes(name: str, payload: int, p: int) -> float:
    """Cost-model bytes one rank sends per allreduce of ``payload`` bytes (an ESTIMATE).

    ring and rabenseifner (reduce-scatter + allgather): ``2(p-1)/p * S``; recursive
    doubling: ``log2(p) * S``; for ``mpi`` the library's choice is not observable, so the
    bandwidth-optimal ``2(p-1)/p * S`` is the estimate (a lower bound for any algorithm).
    """
    if p == 1:
        return 0.0
    if name == "recursive-doubling":
        return math.log2(p) * payload
    return busbw_factor(p) * payload


def model_time(
    name: str, payload: int, p: int, alpha: float, beta: float, gamma: float = 0.0
) -> float:
    """Hockney time of one allreduce over one kind of link: ``a alpha + b n beta + c n gamma``."""
    a, b, c = coefficients(name, p)
    return a * alpha + b * payload * beta + c * payload * gamma
