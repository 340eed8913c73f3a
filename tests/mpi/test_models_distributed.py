"""Multi-rank tests of the softmax model, sparse rows, LIBSVM parts, held-out evaluation and
the estimator; run under ``mpirun -n N python -m pytest --with-mpi`` at N = 1..4."""

import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI
from sklearn.datasets import (
    dump_svmlight_file,
    load_breast_cancer,
    load_digits,
    load_iris,
    load_svmlight_file,
)
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from dist_logreg.comm.base import MPIAllreduce
from dist_logreg.comm.wrappers import Instrumented
from dist_logreg.errors import UsageError
from dist_logreg.train import models, sparse
from dist_logreg.train.config import TrainConfig
from dist_logreg.train.data import Dataset
from dist_logreg.train.loop import train
from dist_logreg.train.prepare import synthetic_classes
from tests.helpers import collective_assert
from tests.oracle import QuietReporter, serial_sgd

pytestmark = pytest.mark.mpi


def _sparse_problem(n=400, d=50, classes=4, seed=3):
    """Generated sparse rows (10% non-zero) with labels from a softmax (or logistic) model."""
    rng = np.random.default_rng(seed)
    X = sp.random_array((n, d), density=0.1, rng=rng, format="csr") * 3.0
    Z = X @ rng.standard_normal((d, classes))
    y = np.argmax(Z + rng.gumbel(size=Z.shape), axis=1).astype(np.float64)
    return sp.csr_array(X), y


@pytest.mark.parametrize("batch_size, dtype", [(61, "float64"), (97, "float32")])  # 61, 97: prime
def test_softmax_world_size_invariance(comm, batch_size, dtype):
    ds = synthetic_classes(700, 9, 5, seed=11, dtype=dtype)
    mdl = models.Softmax(9, 5)
    cfg = TrainConfig(
        batch_size=batch_size,
        steps=15,
        lr=0.4,
        l2=1e-3,
        momentum=0.5,
        seed=11,
        dtype=dtype,
        check_every=5,
    )
    allreduce = Instrumented(MPIAllreduce(comm), 4)
    result = train(comm, allreduce, cfg, ds, QuietReporter(), model=mdl)
    everyone = comm.allgather(result.params.tobytes())
    collective_assert(comm, len(set(everyone)) == 1, "replicas differ")
    expected = serial_sgd(
        ds.X,
        ds.y,
        batch_size=batch_size,
        steps=15,
        lr=0.4,
        l2=1e-3,
        momentum=0.5,
        seed=11,
        classes=5,
    )
    tol = {"float64": 1e-10, "float32": 2e-4}[dtype]
    collective_assert(
        comm,
        np.allclose(result.params, expected, rtol=tol, atol=tol),
        f"max diff {np.max(np.abs(result.params - expected))}",
    )
    # One allreduce per step, of K (d + 1) + 2 elements.
    rec = allreduce.records()
    itemsize = np.dtype(dtype).itemsize
    collective_assert(
        comm, allreduce.calls == 15 and np.all(rec["bytes"] == (5 * 10 + 2) * itemsize)
    )
    assert result.coef.shape == (5, 9) and result.intercept.shape == (5,)


@pytest.mark.parametrize("classes", [0, 4])  # binary, softmax
def test_sparse_rows_train_like_dense_rows(comm, classes):
    X, y = _sparse_problem()
    if not classes:
        y = (y > 1).astype(np.float64)
    mdl = models.make(50, classes or 2, bool(classes))
    cfg = TrainConfig(batch_size=61, steps=12, lr=0.3, l2=1e-3, momentum=0.3, seed=2, check_every=4)
    sparse_run = train(
        comm, MPIAllreduce(comm), cfg, Dataset(X, y, "csr"), QuietReporter(), model=mdl
    )
    expected = serial_sgd(
        X.toarray(),
        y,
        batch_size=61,
        steps=12,
        lr=0.3,
        l2=1e-3,
        momentum=0.3,
        seed=2,
        classes=classes,
    )
    collective_assert(
        comm,
        np.allclose(sparse_run.params, expected, rtol=1e-10, atol=1e-12),
        f"max diff {np.max(np.abs(sparse_run.params - expected))}",
    )


def _standardized(loader, rows=None):
    X, y = loader(return_X_y=True)
    X, y = X[:rows], y[:rows]
    return StandardScaler().fit_transform(X), y.astype(np.float64)


@pytest.mark.parametrize(
    "name",
    [
        "iris (softmax)",
        "breast_cancer (binary)",
        "digits (softmax)",
        "sparse (softmax)",
        "sparse (binary)",
    ],
)
def test_full_batch_training_reaches_scikit_learns_optimum(name):
    comm = MPI.COMM_WORLD
    if name.startswith("iris"):
        X, y = _standardized(load_iris)
    elif name.startswith("breast"):
        X, y = _standardized(load_breast_cancer)
    elif name.startswith("digits"):
        X, y = _standardized(load_digits, rows=300)
    else:
        X, y = _sparse_problem(n=200, d=30)
        y = y if "softmax" in name else (y > 1).astype(np.float64)
    n, d = X.shape
    k = np.unique(y).size
    l2 = 0.02 if name.startswith("digits") else 0.01
    ref = LogisticRegression(C=1 / (l2 * n), solver="newton-cholesky", tol=1e-12).fit(X, y)
    mdl = models.make(d, k, k > 2)
    # Full-batch heavy-ball gradient descent. Measured here: with these settings 100 steps
    # came within 2e-7 of the optimum (300 on digits, more curved); the rest is margin.
    lr, momentum, steps = (1.0, 0.9, 400) if name.startswith("digits") else (5.0, 0.6, 130)
    cfg = TrainConfig(batch_size=n, steps=steps, lr=lr, l2=l2, momentum=momentum, check_every=0)
    result = train(comm, MPIAllreduce(comm), cfg, Dataset(X, y, name), QuietReporter(), model=mdl)
    coef, intercept = mdl.unpack(result.params)
    gap = max(
        np.max(np.abs(np.atleast_2d(coef) - ref.coef_)),
        np.max(np.abs(np.atleast_1d(intercept) - ref.intercept_)),
    )
    collective_assert(comm, gap < 1e-6, f"{name}: max difference from scikit-learn {gap}")


def test_libsvm_parts_are_read_by_all_ranks(comm, tmp_path_factory):
    size, rank = comm.Get_size(), comm.Get_rank()
    folder = comm.bcast(str(tmp_path_factory.mktemp("svm")) if rank == 0 else None)
    path = f"{folder}/d.svm"
    X, y = _sparse_problem(n=97, d=30)
    if rank == 0:
        dump_svmlight_file(X, y, path, zero_based=False, comment="written for the test")
    comm.Barrier()
    part, _, first, n = sparse.read_part(comm, path, "float64", None)
    rows = comm.allgather(part.shape[0])
    collective_assert(comm, sum(rows) == 97 and first == sum(rows[:rank]) and n == 97, str(rows))
    collective_assert(comm, size == 1 or max(rows) < 97, "one rank parsed everything")
    full, labels = sparse.load_svmlight(comm, path, "float64", 30)
    whole_X, whole_y = load_svmlight_file(path, zero_based=False, n_features=30)  # one reader
    ok = np.array_equal(full.toarray(), whole_X.toarray()) and np.array_equal(labels, whole_y)
    ok = ok and np.allclose(full.toarray(), X.toarray(), rtol=1e-15, atol=0)
    collective_assert(comm, ok, "assembled rows differ from the file")


def test_a_bad_line_in_the_last_part_stops_every_rank(comm, tmp_path_factory):
    size, rank = comm.Get_size(), comm.Get_rank()
    folder = comm.bcast(str(tmp_path_factory.mktemp("bad")) if rank == 0 else None)
    path = f"{folder}/bad.svm"
    if rank == 0:
        lines = [f"{i % 2} 1:{i} 3:1" for i in range(60)]
        lines[58] = "1 3:1 2:5"  # line 59, in the last rank's part
        with open(path, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    comm.Barrier()
    with pytest.raises(UsageError) as info:
        sparse.load_svmlight(comm, path, "float64", None)
    prefix = f"rank {size - 1}: " if size > 1 else ""
    text = str(info.value)
    collective_assert(
        comm,
        text.startswith(prefix)
        and "bad.svm: line 59: expected increasing feature indices, got 2 after 3" in text,
        text,
    )


def test_held_out_metrics_equal_the_serial_ones(comm):
    from sklearn.metrics import log_loss, roc_auc_score

    ds = Dataset(*_standardized(load_breast_cancer), "bc", checked=True)
    val = Dataset(ds.X[::3].copy(), ds.y[::3].copy(), "val", checked=True)
    cfg = TrainConfig(batch_size=64, steps=30, lr=0.5, l2=1e-3, seed=1, eval_every=10)
    result = train(
        comm, MPIAllreduce(comm), cfg, ds, QuietReporter(), model=models.Binary(30), val=val
    )
    collective_assert(comm, [e["step"] for e in result.evals] == [10, 20, 30])
    p = models.Binary(30).proba(val.X, result.params)[:, 1]
    last = result.evals[-1]
    ok = (
        abs(last["loss"] - log_loss(val.y, p)) < 1e-12
        and abs(last["auc"] - roc_auc_score(val.y, p)) < 1e-12
        and abs(last["accuracy"] - np.mean((p > 0.5) == val.y)) < 1e-12
    )
    collective_assert(comm, ok, str(last))


def test_estimator_fits_every_ranks_rows_together(world_comm):
    comm = world_comm
    from dist_logreg import DistLogisticRegression

    size, rank = comm.Get_size(), comm.Get_rank()
    X, y = _standardized(load_iris)
    mine = np.arange(rank, len(y), size)  # each rank passes other rows
    est = DistLogisticRegression(
        l2=0.01, solver="gd", learning_rate=1.0, momentum=0.9, tol=1e-10, max_iter=2000, comm=comm
    )
    est.fit(X[mine], y[mine])
    alone = DistLogisticRegression(
        l2=0.01, solver="gd", learning_rate=1.0, momentum=0.9, tol=1e-10, max_iter=2000
    ).fit(X, y)
    everyone = comm.allgather(est.coef_.tobytes())
    collective_assert(comm, len(set(everyone)) == 1, "replicas differ")
    collective_assert(comm, np.allclose(est.coef_, alone.coef_, atol=1e-8), "differs from one rank")
    score = est.score(X[mine], y[mine])  # collective: all ranks' rows
    collective_assert(comm, abs(score - alone.score(X, y)) < 1e-12, f"score {score}")
    lbfgs = DistLogisticRegression(C=1.0, tol=1e-8, max_iter=500, comm=comm).fit(X[mine], y[mine])
    ref = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12).fit(X, y)
    gap = np.max(np.abs(lbfgs.coef_ - ref.coef_))
    collective_assert(comm, gap < 1e-5, f"lbfgs {gap} from scikit-learn")
