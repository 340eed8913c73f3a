"""Slurm on the emulated hosts: one ``slurmctld`` and one ``slurmd`` per host namespace."""

from __future__ import annotations

import os
import signal

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster.state import STATE_ROOT, Cluster


def start(c: Cluster, say=print) -> None:
    raise UsageError("--slurm: not implemented yet")


def stop(name: str) -> int:
    """End every daemon ``start`` recorded for cluster ``name`` (by pid); how many."""
    path = STATE_ROOT / name / "slurm" / "pids"
    if not path.exists():
        return 0
    n = 0
    for line in path.read_text().split():
        try:
            os.kill(int(line), signal.SIGTERM)
            n += 1
        except (ProcessLookupError, ValueError):
            pass
    return n
