"""Ranks on hosts: ``place(ranks, fabric, ranks_per_host, mode, seed) -> host_of``.

``packed`` fills hosts, and so leaves and pods, in rank order (what a topology-aware
scheduler does); ``random`` puts the ranks on the same hosts in a random order (a scheduler
that ignores the topology); ``spread`` deals ranks round-robin over every leaf of the
fabric, so neighbours in rank order sit under different leaves.
"""

from __future__ import annotations

import numpy as np

from dist_logreg.errors import UsageError

MODES = ("packed", "random", "spread")


def place(
    ranks: int, fabric, ranks_per_host: int = 1, mode: str = "packed", seed: int = 0
) -> np.ndarray:
    """``host_of``, shape ``(ranks,)``: the host of each rank.

    Raises a ``UsageError`` when the fabric has too few host slots.
    """
    if ranks < 1 or ranks_per_host < 1:
        raise UsageError(
            f"expected ranks >= 1 and ranks per host >= 1, got {ranks} and {ranks_per_host}"
        )
    slots = fabric.hosts * ranks_per_host
    if ranks > slots:
        raise UsageError(
            f"--ranks: the fabric has {fabric.hosts} hosts x {ranks_per_host} ranks per host = "
            f"{slots} slots, got {ranks} ranks"
        )
    r = np.arange(ranks, dtype=np.int64)
    if mode == "packed":
        return r // ranks_per_host
    if mode == "random":
        return np.random.default_rng(seed).permutation(ranks) // ranks_per_host
    if mode == "spread":
        leaves, per_leaf = fabric.shape.n_leaves, fabric.shape.hosts
        leaf, idx = r % leaves, r // leaves
        return leaf * per_leaf + idx // ranks_per_host
    raise UsageError(f"--placement: expected one of {'|'.join(MODES)}, got {mode!r}")


def cross_leaf_fraction(host_of: np.ndarray, fabric, src, dst, weight) -> float:
    """Share of ``weight`` (bytes) whose two ranks sit under different leaves."""
    la, lb = fabric.leaf_of(host_of[src]), fabric.leaf_of(host_of[dst])
    total = float(np.sum(weight))
    return float(np.sum(np.where(la != lb, weight, 0.0))) / total if total else 0.0
