"""What a bench run may allocate: the machine's available memory shared by the ranks on it,
and this process's address-space limit (``ulimit -v``)."""

from __future__ import annotations

import resource

from dist_logreg.errors import UsageError


def address_space_left() -> int | None:
    """Bytes this process may still map under ``RLIMIT_AS``, or None when unlimited."""
    try:
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (OSError, ValueError):
        return None
    if limit == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status") as fh:
            kib = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError, IndexError):
        kib = 0
    return max(0, limit - kib * 1024)


def check(per_rank: int, holders: int, what: str, advice: str, available: int | None) -> None:
    """``UsageError`` before allocating when ``holders`` ranks of this machine, each
    holding ``per_rank`` bytes at once, need more than ``available`` (the machine's), or
    one rank more than its address-space limit leaves."""
    gib = 2**30
    if available and per_rank * holders > available:
        raise UsageError(
            f"{what}: the buffers need about {per_rank / gib:.2f} GiB per rank x {holders} "
            f"rank(s) on this machine = {per_rank * holders / gib:.2f} GiB, over the "
            f"{available / gib:.2f} GiB available; expected {advice}"
        )
    left = address_space_left()
    if left is not None and per_rank > left:
        raise UsageError(
            f"{what}: the buffers need about {per_rank / gib:.2f} GiB per rank, over the "
            f"{left / gib:.2f} GiB this process may still map (its address-space limit, "
            f"ulimit -v); expected {advice}"
        )
