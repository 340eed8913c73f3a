"""Ranks on endpoints: ``place(ranks, fabric, ranks_per_host, mode, seed) -> host_of``.

``packed`` fills endpoints (one per host today), and so leaves and pods, in rank order (what
a topology-aware scheduler does); ``random`` puts the ranks on the same endpoints in a
random order (a scheduler that ignores the topology); ``spread`` deals ranks round-robin
over every leaf of the fabric (the topology's ``locality("leaf")``), so neighbours in rank
order sit under different leaves.
"""

from __future__ import annotations

import numpy as np

from dist_logreg.errors import UsageError

MODES = ("packed", "random", "spread")


def place(
    ranks: int, fabric, ranks_per_host: int = 1, mode: str = "packed", seed: int = 0
) -> np.ndarray:
    """``host_of``, shape ``(ranks,)``: the endpoint of each rank.

    Raises a ``UsageError`` when the fabric has too few host slots.
    """
    if ranks < 1 or ranks_per_host < 1:
        raise UsageError(
            f"expected ranks >= 1 and ranks per host >= 1, got {ranks} and {ranks_per_host}"
        )
    slots = fabric.endpoints * ranks_per_host
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
        leaf_of = fabric.topology.locality("leaf")
        leaves, order = np.unique(leaf_of, return_inverse=True)
        members = np.argsort(order, kind="stable").reshape(leaves.size, -1)  # equal leaves
        return members[r % leaves.size, r // leaves.size // ranks_per_host]
    raise UsageError(f"--placement: expected one of {'|'.join(MODES)}, got {mode!r}")
