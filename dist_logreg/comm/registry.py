"""The algorithm registry: a name (:data:`~dist_logreg.collective.algorithms.ALGORITHMS`) to an
allreduce."""

from __future__ import annotations

from mpi4py import MPI

from dist_logreg.collective.algorithms import ALGORITHMS, COMPRESSORS
from dist_logreg.comm.base import Allreduce, MPIAllreduce
from dist_logreg.comm.p2p import FLAT, Hierarchical, P2PAllreduce
from dist_logreg.comm.wrappers import FP16Compressed


def make_allreduce(
    name: str,
    comm: MPI.Comm,
    ranks_per_node: int | None = None,
    compress: str = "none",
    scale: float = 1.0,
) -> Allreduce:
    """Collective: build the allreduce called ``name`` (one of :data:`ALGORITHMS`) on ``comm``."""
    if name == "mpi":
        inner: Allreduce = MPIAllreduce(comm)
    elif name == "hierarchical":
        inner = Hierarchical(comm, ranks_per_node)
    elif name in FLAT:
        inner = P2PAllreduce(comm, name)
    else:
        raise ValueError(f"unknown allreduce algorithm {name!r}; expected one of {ALGORITHMS}")
    if compress == "fp16":
        return FP16Compressed(inner, scale)
    if compress != "none":
        raise ValueError(f"unknown compression {compress!r}; expected one of {COMPRESSORS}")
    return inner
