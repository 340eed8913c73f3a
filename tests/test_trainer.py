"""The training loop at world size 1 against the serial oracle and scikit-learn."""

import numpy as np
import pytest
from mpi4py import MPI

from dist_logreg.comm.base import MPIAllreduce
from dist_logreg.comm.wrappers import Instrumented
from dist_logreg.errors import Diverged
from dist_logreg.train import binary as model
from dist_logreg.train import data
from dist_logreg.train.config import TrainConfig
from dist_logreg.train.loop import train
from tests.oracle import QuietReporter, serial_sgd


def run(cfg, ds):
    comm = MPI.COMM_SELF
    allreduce = Instrumented(MPIAllreduce(comm), 8)
    return train(comm, allreduce, cfg, ds, QuietReporter()), allreduce


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_trainer_follows_the_serial_oracle(momentum):
    ds = data.synthetic(500, 6, seed=2, dtype="float64")
    cfg = TrainConfig(batch_size=64, steps=25, lr=0.3, l2=1e-3, momentum=momentum, seed=2)
    result, allreduce = run(cfg, ds)
    expected = serial_sgd(
        ds.X, ds.y, batch_size=64, steps=25, lr=0.3, l2=1e-3, momentum=momentum, seed=2
    )
    np.testing.assert_allclose(result.params, expected, rtol=1e-12, atol=1e-14)
    assert allreduce.calls == 25  # exactly one allreduce per step
    assert result.phase_ns.shape == (25, 4) and np.all(result.phase_ns >= 0)


def test_full_batch_training_reaches_scikit_learn_optimum():
    sklearn = pytest.importorskip("sklearn.linear_model")
    ds = data.synthetic(400, 4, seed=9, dtype="float64")
    l2 = 0.05
    cfg = TrainConfig(batch_size=400, steps=300, lr=1.0, l2=l2, momentum=0.9, seed=9, check_every=0)
    result, _ = run(cfg, ds)
    clf = sklearn.LogisticRegression(C=1 / (l2 * 400), tol=1e-12, max_iter=10_000)
    clf.fit(ds.X, ds.y)
    np.testing.assert_allclose(result.coef, clf.coef_[0], atol=1e-6)
    assert result.intercept == pytest.approx(clf.intercept_[0], abs=1e-6)
    expected = model.objective(ds.X, ds.y, clf.coef_[0], clf.intercept_[0], l2)
    assert result.final_loss == pytest.approx(expected, rel=1e-9)


def test_float32_run_tracks_float64():
    cfg = TrainConfig(batch_size=50, steps=30, lr=0.2, seed=1)
    r64, _ = run(cfg, data.synthetic(300, 5, seed=1, dtype="float64"))
    r32, _ = run(
        TrainConfig(**{**cfg.__dict__, "dtype": "float32"}),
        data.synthetic(300, 5, seed=1, dtype="float32"),
    )
    assert r32.params.dtype == np.float32
    np.testing.assert_allclose(r32.params, r64.params, rtol=1e-4, atol=1e-5)


def test_memmap_of_other_dtype_gives_same_model(tmp_path):
    ds = data.synthetic(300, 5, seed=4, dtype="float64")
    np.save(tmp_path / "X.npy", ds.X.astype(np.float32))
    np.save(tmp_path / "y.npy", ds.y.astype(np.int8))
    cfg = TrainConfig(batch_size=30, steps=12, seed=4)
    from_file, _ = run(cfg, data.load(str(tmp_path), "float64"))
    in_memory, _ = run(
        cfg, data.Dataset(ds.X.astype(np.float32).astype(np.float64), ds.y, "same rows")
    )
    np.testing.assert_array_equal(from_file.params, in_memory.params)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_divergence_is_reported_with_a_hint():
    ds = data.synthetic(200, 5, seed=0, dtype="float64")
    ds.X[:] *= 1e150  # logits overflow the loss sum to inf in the first steps
    with pytest.raises(
        Diverged, match=r"step \d+: the global batch (loss|gradient) is not finite.*--lr"
    ):
        run(TrainConfig(batch_size=20, steps=5, lr=1e10), ds)


def test_progress_reported_about_ten_times():
    reporter = QuietReporter()
    ds = data.synthetic(200, 3, seed=0, dtype="float64")
    train(
        MPI.COMM_SELF,
        MPIAllreduce(MPI.COMM_SELF),
        TrainConfig(batch_size=20, steps=50),
        ds,
        reporter,
    )
    steps = [line[1] for line in reporter.lines if line[0] == "progress"]
    assert steps == list(range(5, 51, 5))


@pytest.mark.parametrize("shuffle", ["rows", "blocks", "none"])
def test_sharded_run_at_one_rank_equals_the_global_run(shuffle):
    """--sampling sharded at p = 1: the one shard is all rows, its stream the global one."""
    base = dict(batch_size=40, steps=30, lr=0.3, momentum=0.5, seed=5, shuffle=shuffle)
    plain, _ = run(TrainConfig(**base), data.synthetic(333, 4, seed=5, dtype="float64"))
    ds = data.synthetic(333, 4, seed=5, dtype="float64", rows=(0, 333))
    sharded, _ = run(TrainConfig(**base, sampling="sharded"), ds)
    np.testing.assert_array_equal(sharded.params, plain.params)  # bitwise
    assert sharded.final_loss == plain.final_loss


@pytest.mark.parametrize("shuffle", ["blocks", "none"])
def test_contiguous_shuffles_follow_the_serial_oracle(shuffle):
    from tests.oracle import global_rows

    ds = data.synthetic(410, 5, seed=3, dtype="float64")
    cfg = TrainConfig(batch_size=50, steps=20, lr=0.3, l2=1e-3, seed=3, shuffle=shuffle)
    result, _ = run(cfg, ds)
    expected = serial_sgd(
        ds.X,
        ds.y,
        batch_size=50,
        steps=20,
        lr=0.3,
        l2=1e-3,
        momentum=0.0,
        seed=3,
        batches=global_rows(410, 50, 3, shuffle),
    )
    np.testing.assert_allclose(result.params, expected, rtol=1e-12, atol=1e-14)
    assert result.epochs == 20 / 8
