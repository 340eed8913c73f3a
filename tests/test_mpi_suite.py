"""Runs the pytest-mpi tests in tests/mpi under mpirun at world sizes 1, 2 and 3."""

import sys

import pytest

from tests.helpers import WORLD_SIZES, run_mpi

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("n", [*WORLD_SIZES, 4])  # 4: the communication algorithms' issue
def test_pytest_mpi_suite(n):
    result = run_mpi(
        n,
        [
            sys.executable,
            "-m",
            "pytest",
            "--with-mpi",
            "tests/mpi",
            "-q",
            "-p",
            "no:cacheprovider",
            "--timeout",
            "90",
            "--color",
            "no",
        ],
        timeout=200,
    )
    tail = f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"at {n} ranks:\n{tail}"
    assert " passed" in result.stdout and "failed" not in result.stdout
