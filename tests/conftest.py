"""Shared test helpers: launching ``mpirun`` with a hard timeout, and small data files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# One BLAS thread, as the trainer sets for each rank, before numpy loads: with BLAS threads on
# a machine shared by test runs, scikit-learn's estimator checks ran 7x slower here.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: World sizes every multi-rank test runs at (odd sizes find bugs).
WORLD_SIZES = (1, 2, 3)


def pytest_ignore_collect(collection_path, config):
    # tests/mpi runs under mpirun with --with-mpi (see test_mpi_suite.py), never in the
    # plain run, so the plain run reports no skipped tests for it.
    if collection_path.name == "mpi" and not config.getoption("with_mpi", default=False):
        return True
    return None


def mpi_env() -> dict[str, str]:
    """Environment for Open MPI on this kind of machine: root allowed, idle ranks yield."""
    env = dict(os.environ)
    env.update(
        {
            "OMPI_ALLOW_RUN_AS_ROOT": "1",
            "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_mpi_yield_when_idle": "1",
            # Shared memory only: no TCP listener is needed between ranks of one machine.
            "OMPI_MCA_btl": "self,sm",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_mpi(n: int, args: list[str], timeout: float = 60, cwd: Path | None = None) -> Completed:
    """Run ``mpirun -n n ARGS`` and return its result; a hang fails the test after ``timeout``.

    The launcher runs in its own process group, so on timeout the whole group (mpirun and
    every rank) is killed and nothing is left behind.
    """
    cmd = [str(BIN / "mpirun"), "-n", str(n), "--oversubscribe", *args]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mpi_env(),
        cwd=cwd or ROOT,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(
            f"mpirun -n {n} {' '.join(args)} did not finish in {timeout} s "
            f"(deadlock?)\nstdout:\n{out}\nstderr:\n{err}"
        )
    return Completed(proc.returncode, out, err)


def train_cmd(*args: str) -> list[str]:
    """The ``dist-logreg train`` command line as the installed console script."""
    return [str(BIN / "dist-logreg"), "train", *args]


@pytest.fixture
def small_problem():
    """A small deterministic binary problem: (X, y) float64, 240 rows x 5 features."""
    rng = np.random.default_rng(1234)
    X = rng.standard_normal((240, 5))
    w = np.array([1.5, -2.0, 0.5, 0.0, 1.0])
    y = (rng.random(240) < 1 / (1 + np.exp(-(X @ w - 0.3)))).astype(np.float64)
    return X, y


#: The run the fault-tolerance and supervise tests kill, resume and compare (40 steps, with
#: momentum, so that resuming must restore the velocity too).
FAULT_RUN = ["--samples", "3000", "--features", "7", "--batch-size", "100", "--steps", "40",
             "--momentum", "0.5", "--seed", "2", "--log-every", "1"]  # fmt: skip


def load_model(d: Path) -> np.ndarray:
    """``[coef..., intercept]`` of the model.npz in ``d``."""
    m = np.load(d / "model.npz", allow_pickle=False)
    return np.append(m["coef"], m["intercept"])


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """Models of uninterrupted ``FAULT_RUN`` runs at 2 and 3 ranks."""
    out = {}
    for n in (2, 3):
        d = tmp_path_factory.mktemp(f"ref{n}")
        r = run_mpi(n, train_cmd(*FAULT_RUN, "--out", str(d)), timeout=60)
        assert r.returncode == 0, r.stderr
        out[n] = load_model(d)
    return out
