"""Ranks on endpoints: ``place(ranks, fabric, ranks_per_host, mode, seed) -> host_of``.

An endpoint is where a rank sits: one per host on the Clos fabrics (its NIC), one per GPU
on the rail family (``gpus-per-host`` per host, in host order); ``ranks_per_host`` ranks
share one endpoint. ``packed`` fills endpoints (and so hosts, leaves and pods) in rank
order (what a topology-aware scheduler does); ``random`` puts the ranks on the same
endpoints in a random order (a scheduler that ignores the topology); ``spread`` deals ranks
round-robin over every leaf of the fabric (the topology's ``locality("leaf")``), so
neighbours in rank order sit under different leaves; ``scatter`` takes whole hosts drawn at
random from the whole fabric and fills each in order (a scheduler that hands out whole
nodes wherever they are free).
"""

from __future__ import annotations

import numpy as np

from dist_logreg.errors import UsageError

MODES = ("packed", "random", "spread", "scatter")


def _too_many(ranks: int, fabric, ranks_per_host: int, slots: int) -> UsageError:
    per = fabric.endpoints // fabric.hosts
    what = f"{fabric.hosts} hosts x {ranks_per_host} ranks per host = {slots} slots"
    if per > 1:
        what = (
            f"{fabric.hosts} hosts x {per} GPUs = {fabric.endpoints} GPUs x {ranks_per_host} "
            f"rank(s) per GPU = {slots} slots"
        )
    hint = getattr(fabric.topology, "size_hint", None)
    need = f"; {ranks} ranks need {hint(-(-ranks // ranks_per_host))}" if hint else ""
    return UsageError(f"--ranks: the fabric has {what}, got {ranks} ranks{need}")


def check_slots(ranks: int, fabric, ranks_per_host: int = 1) -> None:
    """``UsageError`` when ``ranks`` do not fit the fabric's endpoints (a sweep checks
    every point with it before the first runs)."""
    if ranks_per_host >= 1 and ranks > (slots := fabric.endpoints * ranks_per_host):
        raise _too_many(ranks, fabric, ranks_per_host, slots)


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
    check_slots(ranks, fabric, ranks_per_host)
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
    if mode == "scatter":
        per = fabric.endpoints // fabric.hosts  # endpoints of a host: its GPUs
        slot = r // ranks_per_host
        hosts = np.random.default_rng(seed).permutation(fabric.hosts)[: slot[-1] // per + 1]
        return hosts[slot // per] * per + slot % per
    raise UsageError(f"--placement: expected one of {'|'.join(MODES)}, got {mode!r}")
