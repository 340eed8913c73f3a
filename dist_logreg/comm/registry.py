"""The registry: an algorithm's record (:mod:`dist_logreg.collective.algorithms`) to a running
allreduce, with its compression.

Example::

    >>> ar = make_allreduce("ring", comm)                        # any name in the table
    >>> ar = make_allreduce("hierarchical-2d:rabenseifner", comm)  # its inter algorithm
    >>> ar = make_allreduce(name, comm, compress="fp16", fp16_scale=batch_size)
    >>> ar.allreduce(buf)
"""

from __future__ import annotations

from mpi4py import MPI

from dist_logreg.collective import algorithms
from dist_logreg.comm.base import Allreduce
from dist_logreg.comm.wrappers import FP16Compressed


def make_allreduce(
    name: str,
    comm: MPI.Comm,
    *,
    ranks_per_node: int | None = None,
    compress: str = "none",
    fp16_scale: float = 1.0,
) -> Allreduce:
    """Collective: build the allreduce called ``name`` (a record of the table) on ``comm``.

    ``ranks_per_node``: the nodes of a topology-aware algorithm (None: the ranks that share
    memory). ``compress``: one of :data:`~dist_logreg.collective.algorithms.COMPRESSORS`;
    ``fp16_scale``: what fp16 divides by before the cast (the global batch size).
    """
    record = algorithms.get(name)  # ValueError naming the choices
    if compress not in algorithms.COMPRESSORS:
        raise ValueError(
            f"unknown compression {compress!r}; expected one of {algorithms.COMPRESSORS}"
        )
    runner = record.runner_class()
    params = dict(record.params)  # hierarchical-2d: its inter-node algorithm
    if record.topology_aware:
        inner: Allreduce = runner(comm, ranks_per_node, **params)
    else:
        inner = runner(comm, **params)
    if params:
        inner.name = record.name  # hierarchical-2d:rabenseifner, as the records say
    if compress == "fp16":
        return FP16Compressed(inner, fp16_scale)
    return inner
