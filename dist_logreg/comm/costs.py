"""Cost-model formulas of an allreduce (pure arithmetic: no MPI, no numpy).

Hockney alpha-beta(-gamma) after Thakur, Rabenseifner and Gropp (2005); see DESIGN.md.
"""

from __future__ import annotations

import math


def busbw_factor(world_size: int) -> float:
    """nccl-tests' bus-bandwidth factor for allreduce, ``2(p-1)/p``: busbw = algbw * factor."""
    return 2.0 * (world_size - 1) / world_size


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


def model_time(name: str, payload: int, p: int, alpha: float, beta: float) -> float:
    """Hockney alpha-beta time of one allreduce: ``alpha`` s per message, ``beta`` s per byte."""
    if p == 1:
        return 0.0
    lg = math.log2(p)
    if name == "ring":
        return 2 * (p - 1) * alpha + busbw_factor(p) * payload * beta
    if name == "recursive-doubling":
        return lg * (alpha + payload * beta)
    return 2 * lg * alpha + busbw_factor(p) * payload * beta
