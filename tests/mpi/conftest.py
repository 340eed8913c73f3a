"""Shared fixtures of the multi-rank tests (run under ``mpirun -n N python -m pytest --with-mpi``).

Expected values are computed from size and rank, never written for one world size; asserts
on rank-dependent values are collective (allgathered), so a failure on one rank fails all
ranks instead of leaving the others waiting (``tests.helpers.collective_assert``).
"""

import pytest
from mpi4py import MPI

from tests.helpers import collective_assert  # noqa: F401  (re-exported for code not yet moved)


def _communicator(kind: str):
    if kind == "world":
        return MPI.COMM_WORLD, False
    if kind == "self":
        return MPI.COMM_SELF, False
    return MPI.COMM_WORLD.Dup(), True


@pytest.fixture(params=["world", "dup", "self"])
def comm(request):
    """COMM_WORLD, a duplicate of it, and COMM_SELF: the library must never assume
    COMM_WORLD, and a one-rank communicator inside a larger job must work too."""
    c, owned = _communicator(request.param)
    yield c
    if owned:
        c.Free()


@pytest.fixture(params=["world", "dup"])
def world_comm(request):
    """COMM_WORLD and a duplicate: for tests that need every rank of the job (min_size)."""
    c, owned = _communicator(request.param)
    yield c
    if owned:
        c.Free()
