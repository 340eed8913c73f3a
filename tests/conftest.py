"""pytest's hooks and shared fixtures; the helpers tests import are in ``tests/helpers.py``."""

from __future__ import annotations

import os

# One BLAS thread, as the trainer sets for each rank, before numpy loads: with BLAS threads on
# a machine shared by test runs, scikit-learn's estimator checks ran 7x slower here.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import (  # noqa: E402, F401  (re-exported for code not yet moved)
    BIN,
    FAULT_RUN,
    ROOT,
    WORLD_SIZES,
    load_model,
    mpi_env,
    run_mpi,
    train_cmd,
)


def pytest_ignore_collect(collection_path, config):
    # tests/mpi runs under mpirun with --with-mpi (see test_mpi_suite.py), never in the
    # plain run, so the plain run reports no skipped tests for it.
    if collection_path.name == "mpi" and not config.getoption("with_mpi", default=False):
        return True
    return None


@pytest.fixture
def small_problem():
    """A small deterministic binary problem: (X, y) float64, 240 rows x 5 features."""
    rng = np.random.default_rng(1234)
    X = rng.standard_normal((240, 5))
    w = np.array([1.5, -2.0, 0.5, 0.0, 1.0])
    y = (rng.random(240) < 1 / (1 + np.exp(-(X @ w - 0.3)))).astype(np.float64)
    return X, y


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


@pytest.fixture(autouse=True)
def _sigint_as_python_sets_it():
    """Every test starts with Python's own Ctrl-C handler (a library that ignores SIGINT
    in this process would make an in-process Ctrl-C a no-op, and its children inherit the
    ignore: two Ctrl-C tests waited out their timeouts in a whole-suite run), and one that
    changes it gets it back."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    if before in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if signal.getsignal(signal.SIGINT) is not before and before is not None:
        signal.signal(signal.SIGINT, before)
