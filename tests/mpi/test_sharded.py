"""``--sync sharded``'s step (reduce-scatter, slice update, allgather) against the allreduce
mode's update computed in numpy from every rank's buffer (an oracle from size and rank)."""

import numpy as np
import pytest

from dist_logreg.train.sharded import HALVES, ShardedSync
from tests.mpi.conftest import collective_assert


def _buffer(step, rank, n_params, count_here, dtype):
    """A rank's packed buffer at ``step``: gradient sums, loss sum, its row count."""
    rng = np.random.default_rng(1000 * step + rank)
    buf = np.empty(n_params + 2, dtype=dtype)
    buf[:n_params] = rng.standard_normal(n_params)
    buf[-2] = rng.random() * 3
    buf[-1] = count_here
    return buf


@pytest.mark.mpi
@pytest.mark.parametrize("algorithm", list(HALVES))
@pytest.mark.parametrize("n_params", [1, 2, 5, 40])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sharded_steps_follow_the_allreduce_update(comm, algorithm, n_params, momentum):
    p, r = comm.Get_size(), comm.Get_rank()
    batch, lr, l2 = 7 * p + 1, 0.3, 0.01
    counts = [(k + 1) * batch // p - k * batch // p for k in range(p)]  # rows per rank
    n_pen = max(0, n_params - 1)  # the intercept is not penalized
    sync = ShardedSync(
        comm, algorithm, n_params + 2, np.float64, n_params, n_pen, lr, l2, momentum, batch, 8
    )
    buf = sync.buf
    params, velocity = np.zeros(n_params), np.zeros(n_params)  # the oracle's
    losses = []
    for step in range(4):
        buf[:] = _buffer(step, r, n_params, counts[r], np.float64)
        loss = sync.step(step)
        total = sum(_buffer(step, k, n_params, counts[k], np.float64) for k in range(p))
        grad = total[:n_params] / total[-1]
        grad[:n_pen] += l2 * params[:n_pen]
        velocity = momentum * velocity + grad
        params = params - lr * velocity
        losses.append(abs(loss - total[-2] / total[-1]))
    ok = np.allclose(sync.params, params, rtol=1e-12, atol=1e-12) and max(losses) < 1e-12
    same = comm.allgather(sync.params.tobytes())
    collective_assert(comm, ok and len(set(same)) == 1, f"{algorithm} n={n_params}")
    rec = sync.records()
    shape_ok = (
        rec["ns"].size == 8
        and rec["collective"].tolist() == [0, 1] * 4
        and rec["step"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
        and rec["collective_names"] == ("reduce-scatter", "allgather")
        and set(rec["bytes"].tolist()) == {buf.nbytes}
    )
    collective_assert(comm, shape_ok, str(rec))


@pytest.mark.mpi
def test_optimizer_state_falls_as_one_over_p(comm):
    p, n = comm.Get_size(), 1000
    sync = ShardedSync(comm, "mpi", n + 2, np.float64, n, n - 1, 0.1, 0.0, 0.9, 10)
    total = comm.allreduce(sync.optimizer_state_bytes)
    # the slices partition the n parameters: together exactly one full momentum vector
    collective_assert(comm, total == n * 8, f"total {total}")
    collective_assert(comm, sync.optimizer_state_bytes <= (n // p + 2) * 8, "slice too big")


@pytest.mark.mpi
def test_a_wrong_divisor_is_caught_on_every_rank(comm):
    sync = ShardedSync(comm, "ring", 5, np.float64, 3, 2, 0.1, 0.0, 0.0, count=10**6)
    sync.buf[:] = 1.0
    with pytest.raises(Exception, match="reduced row count"):
        sync.step(0)


@pytest.mark.parametrize("algorithm", list(HALVES))
@pytest.mark.parametrize("batch_size, momentum", [(60, 0.5), (61, 0.0)])  # 61: uneven shares
def test_sharded_training_follows_the_serial_oracle(comm, algorithm, batch_size, momentum):
    """--sync sharded: the same trajectory as the serial run (and so as --sync allreduce)
    up to summation order, replicas bitwise equal, two collectives per step recorded."""
    from dist_logreg.train import data
    from dist_logreg.train.config import TrainConfig
    from dist_logreg.train.loop import train
    from tests.oracle import QuietReporter, serial_sgd

    ds = data.synthetic(700, 9, seed=11, dtype="float64")
    cfg = TrainConfig(
        batch_size=batch_size,
        steps=20,
        lr=0.4,
        l2=1e-3,
        momentum=momentum,
        seed=11,
        check_every=5,
        sync="sharded",
        allreduce=algorithm,
    )
    sync = ShardedSync(
        comm, algorithm, 9 + 3, np.float64, 10, 9, cfg.lr, cfg.l2, cfg.momentum, cfg.batch_size, 20
    )
    result = train(comm, sync, cfg, ds, QuietReporter())
    expected = serial_sgd(
        ds.X, ds.y, batch_size=batch_size, steps=20, lr=0.4, l2=1e-3, momentum=momentum, seed=11
    )
    everyone = comm.allgather(result.params.tobytes())
    ok = np.allclose(result.params, expected, rtol=1e-10, atol=1e-10)
    collective_assert(comm, ok and len(set(everyone)) == 1, f"{result.params} vs {expected}")
    rec = sync.records()
    collective_assert(comm, rec["ns"].size == 40 and rec["collective"].sum() == 20)
    losses = comm.allgather(result.batch_loss.tobytes())  # the global batch loss everywhere
    collective_assert(comm, len(set(losses)) == 1 and np.isfinite(result.batch_loss).all())
