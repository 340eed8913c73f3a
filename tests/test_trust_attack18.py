"""Issue 29, the eighteenth attack: each test fails before its fix (U- on training and its
readers, V- on the simulator)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import BIN, run_mpi, train_cmd


def dl(*args: str, cwd=None):
    """``dist-logreg ARGS`` at one rank (train and predict start MPI: not in this process)."""
    return run_mpi(1, [str(BIN / "dist-logreg"), *args], timeout=120, cwd=cwd)


@pytest.mark.parametrize("spec", ["bucket-sizes=1M,buckets=1", "bucket-sizes=8T"])
def test_a_workload_of_its_own_bucket_sizes_is_reported(tmp_path, spec):
    """V-H1: the bucket count (a fix of the seventeenth attack's) was the gradient over
    ``buckets`` where the workload lists its own sizes: 1 bucket counted as 1,048,576."""
    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--algorithm", "ring"]
    r = dl("simulate", *args, "--workload", f"{spec},forward=1ms,backward=1ms", "--out",
           str(tmp_path / "s"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
