"""Cost-model formulas of an allreduce (pure arithmetic: no MPI).

The coefficients are the records' ``closed_form`` in the algorithm table
(:mod:`dist_logreg.collective.algorithms`); this module asks the table. Hockney
alpha-beta-gamma after Thakur, Rabenseifner and Gropp (2005), with the coefficients
MPICH's sources state: one allreduce of ``n`` payload bytes on ``p`` ranks costs
``a(p)*alpha + b(p)*n*beta + c(p)*n*gamma`` on its critical path, ``alpha`` seconds per
message, ``beta`` per byte sent, ``gamma`` per byte reduced. See docs/design.md, "Cost model".

=====================  ===================  =====================  ====================
algorithm              a(p)                 b(p)                   c(p)
=====================  ===================  =====================  ====================
ring                   2(p-1)               2(p-1)/p               (p-1)/p
recursive-doubling     lg p' + 2f           lg p' + 2f             lg p' + f
rabenseifner           2 lg p' + 2f         2(p'-1)/p' + 2f        (p'-1)/p' + f
rabenseifner-far       2 lg p' + 2f         2(p'-1)/p' + 2f        (p'-1)/p' + f
mpi (generic)          ceil(lg p)           2(p-1)/p               (p-1)/p
=====================  ===================  =====================  ====================

``p'`` is the largest power of two <= p and ``f`` is 1 when ``p != p'`` (MPICH folds the
extra ranks in first, whole buffers, and hands them the result at the end), else 0. For
``mpi`` the library's choice is not observable: the generic form assumes the latency of a
logarithmic algorithm and the bandwidth of an optimal one, and a fit says so.
The two orders of Rabenseifner's allreduce cost the same over one kind of link; on a
fabric they differ in where the large halves go (docs/allreduce.md).
``hierarchical`` and ``hierarchical-2d`` have no single closed form (intra- and inter-node
links differ): see :func:`hierarchical_coefficients` and :func:`hierarchical_2d_coefficients`;
:func:`coefficients` answers None and :func:`why_not` says why.
"""

from __future__ import annotations

from dist_logreg.collective import algorithms
from dist_logreg.collective.steps import pow2_below

__all__ = [
    "busbw_factor",
    "coefficients",
    "hierarchical_2d_coefficients",
    "hierarchical_coefficients",
    "model_time",
    "model_wire_bytes",
    "pow2_below",
    "why_not",
]


def busbw_factor(world_size: int) -> float:
    """nccl-tests' bus-bandwidth factor for allreduce, ``2(p-1)/p``: busbw = algbw * factor."""
    return 2.0 * (world_size - 1) / world_size


def coefficients(name: str, p: int) -> tuple[float, float, float] | None:
    """``(a, b, c)`` of one allreduce on ``p`` ranks over one kind of link (table above), or
    None where the algorithm has no closed form (its record says why: :func:`why_not`)."""
    alg = algorithms.get(name)
    if alg.closed_form is None:
        return None
    if p <= 1:
        return 0.0, 0.0, 0.0
    return alg.closed_form(p)


def why_not(name: str) -> str:
    """One line: why ``name`` has no closed form ("" when it has one)."""
    alg = algorithms.get(name)
    return "" if alg.closed_form else f"no closed form for {name}: {alg.why}"


def hierarchical_coefficients(ranks_per_node: int, nodes: int) -> dict[str, float]:
    """Hierarchical allreduce, ``k`` ranks in each of ``H`` nodes, per kind of link.

    Linear reduce inside each node ``(k-1)(alpha_i + n beta_i + n gamma)``, ring among the
    node leaders ``2(H-1) alpha_e + 2(H-1)/H n beta_e + (H-1)/H n gamma``, linear broadcast
    ``(k-1)(alpha_i + n beta_i)``. Keys: ``a_intra b_intra a_inter b_inter c``.
    """
    k, h = ranks_per_node, nodes
    a_e, b_e, c_e = coefficients(algorithms.RING.name, h)
    return {
        "a_intra": 2.0 * (k - 1),
        "b_intra": 2.0 * (k - 1),
        "a_inter": a_e,
        "b_inter": b_e,
        "c": (k - 1) + c_e,
    }


def hierarchical_2d_coefficients(
    ranks_per_node: int,
    nodes: int,
    inter: str = algorithms.INTER_DEFAULT,
    nics_per_node: int | None = None,
) -> dict[str, float]:
    """Hierarchical-2d allreduce, ``k`` ranks in each of ``H`` nodes, per kind of link.

    Ring reduce-scatter inside each node ``(k-1)(alpha_i + n/k beta_i + n/k gamma)``;
    ``inter`` among the ``H`` ranks of each rail on ``n/k`` bytes, all rails at once,
    ``a_e alpha_e + b_e n/k beta_e + c_e n/k gamma`` (its closed form on ``H``); ring
    allgather inside ``(k-1)(alpha_i + n/k beta_i)``. Keys as
    :func:`hierarchical_coefficients`. With a ring across, ``c = (kH-1)/kH``: each element
    is reduced ``p - 1`` times, as in any allreduce.

    ``nics_per_node`` (default ``k``: one per rank, the rail-optimized node): the ``k`` rails
    share the node's NICs, ``k / nics`` flows on each, so ``b_inter = b_e / nics``; on a
    node with one NIC the inter-node bytes are those of ``inter`` on the whole buffer.
    ``inter`` may also name the 2-D record itself: ``hierarchical-2d:rabenseifner`` (what
    ``--allreduce`` and ``--algorithm`` take) is Rabenseifner's across.
    """
    inter = dict(algorithms.get(inter).params).get("inter", inter)
    k, h = ranks_per_node, nodes
    a_e, b_e, c_e = coefficients(inter, h)
    return {
        "a_intra": 2.0 * (k - 1),
        "b_intra": 2.0 * (k - 1) / k,
        "a_inter": a_e,
        "b_inter": b_e / (nics_per_node or k),
        "c": (k - 1) / k + c_e / k,
    }


def model_wire_bytes(name: str, payload: int, p: int) -> float:
    """Cost-model bytes one rank sends per allreduce of ``payload`` bytes (an ESTIMATE).

    ring and rabenseifner (reduce-scatter + allgather): ``2(p-1)/p * S``; recursive
    doubling: ``log2(p) * S``; for ``mpi`` the library's choice is not observable, so the
    bandwidth-optimal ``2(p-1)/p * S`` is the estimate (a lower bound for any algorithm).
    The factor is each record's ``wire_bytes_factor``.
    """
    return algorithms.get(name).wire_bytes_factor(p) * payload


def model_time(
    name: str, payload: int, p: int, alpha: float, beta: float, gamma: float = 0.0
) -> float | None:
    """Hockney time of one allreduce over one kind of link: ``a alpha + b n beta + c n gamma``
    (None where the algorithm has no closed form, :func:`why_not`)."""
    abc = coefficients(name, p)
    if abc is None:
        return None
    a, b, c = abc
    return a * alpha + b * payload * beta + c * payload * gamma
