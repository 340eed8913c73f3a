"""Multi-rank tests of the trainer, run under ``mpirun -n N python -m pytest --with-mpi``.

Fixtures and the collective assert are in ``tests/mpi/conftest.py``.
"""

import numpy as np
import pytest

from dist_logreg.comm.base import MPIAllreduce
from dist_logreg.comm.wrappers import Instrumented
from dist_logreg.errors import ReplicasDisagree, UsageError, raise_together
from dist_logreg.train import binary as model
from dist_logreg.train import data, shards
from dist_logreg.train.config import TrainConfig
from dist_logreg.train.loop import train
from tests.helpers import collective_assert
from tests.oracle import QuietReporter, global_rows, serial_sgd, sharded_rows

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("batch_size", [60, 61, 97])  # 61 and 97: not divisible by 2 or 3
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_world_size_invariance_and_replica_agreement(comm, batch_size, dtype):
    ds = data.synthetic(700, 9, seed=11, dtype=dtype)
    cfg = TrainConfig(
        batch_size=batch_size,
        steps=20,
        lr=0.4,
        l2=1e-3,
        momentum=0.5,
        seed=11,
        dtype=dtype,
        check_every=5,
    )
    allreduce = Instrumented(MPIAllreduce(comm), 4)
    result = train(comm, allreduce, cfg, ds, QuietReporter())
    # Replicas agree bitwise (invariant 3).
    everyone = comm.allgather(result.params.tobytes())
    collective_assert(comm, len(set(everyone)) == 1, "replicas differ")
    # Same trajectory as the serial run of the same flags (invariant 2).
    expected = serial_sgd(
        ds.X, ds.y, batch_size=batch_size, steps=20, lr=0.4, l2=1e-3, momentum=0.5, seed=11
    )
    tol = {"float64": 1e-10, "float32": 2e-4}[dtype]
    collective_assert(
        comm,
        np.allclose(result.params, expected, rtol=tol, atol=tol),
        f"max diff {np.max(np.abs(result.params - expected))}",
    )
    # One allreduce per step, each of d + 3 elements.
    rec = allreduce.records()
    collective_assert(
        comm, allreduce.calls == 20 and np.all(rec["bytes"] == (9 + 3) * np.dtype(dtype).itemsize)
    )


@pytest.mark.parametrize("shuffle", ["blocks", "none"])
def test_contiguous_shuffles_are_world_size_invariant(comm, shuffle):
    """--shuffle blocks and none: each rank reads a view, the global batch is the same at
    any world size, so the trajectory is the serial one (invariant 2 holds)."""
    ds = data.synthetic(650, 7, seed=12, dtype="float64")
    cfg = TrainConfig(batch_size=61, steps=25, lr=0.4, l2=1e-3, seed=12, shuffle=shuffle)
    result = train(comm, MPIAllreduce(comm), cfg, ds, QuietReporter())
    expected = serial_sgd(
        ds.X,
        ds.y,
        batch_size=61,
        steps=25,
        lr=0.4,
        l2=1e-3,
        momentum=0.0,
        seed=12,
        batches=global_rows(650, 61, 12, shuffle),
    )
    everyone = comm.allgather(result.params.tobytes())
    collective_assert(comm, len(set(everyone)) == 1, "replicas differ")
    collective_assert(
        comm,
        np.allclose(result.params, expected, rtol=1e-10, atol=1e-10),
        f"max diff {np.max(np.abs(result.params - expected))}",
    )


@pytest.mark.parametrize("shuffle", ["rows", "blocks", "none"])
def test_sharded_sampling_follows_the_sharded_oracle(comm, shuffle):
    """--sampling sharded: each rank generates and reads only its shard; the trajectory
    depends on p and equals the serial run of the batches the p shards draw."""
    size, rank = comm.Get_size(), comm.Get_rank()
    cfg = TrainConfig(
        samples=503,
        features=6,
        batch_size=47,
        steps=30,
        lr=0.4,
        momentum=0.3,
        seed=9,
        shuffle=shuffle,
        sampling="sharded",
    )
    ds = shards.for_rank(cfg, size, rank)
    lo, hi = data.rank_slice(503, size, rank)
    collective_assert(comm, ds.n_samples == hi - lo, f"shard of {ds.n_samples} rows")
    result = train(comm, MPIAllreduce(comm), cfg, ds, QuietReporter())
    whole = data.synthetic(503, 6, seed=9, dtype="float64")
    expected = serial_sgd(
        whole.X,
        whole.y,
        batch_size=47,
        steps=30,
        lr=0.4,
        l2=cfg.l2,
        momentum=0.3,
        seed=9,
        batches=sharded_rows(503, 47, 9, shuffle, size),
    )
    collective_assert(
        comm,
        np.allclose(result.params, expected, rtol=1e-10, atol=1e-10),
        f"max diff {np.max(np.abs(result.params - expected))}",
    )
    full = model.objective(whole.X, whole.y, result.coef, result.intercept, cfg.l2)
    collective_assert(comm, abs(result.final_loss - full) < 1e-12, "evaluated over all shards")


class DtypeSpy:
    """An allreduce that records the dtype of every buffer before and after the reduce."""

    def __init__(self, inner):
        self.inner, self.seen = inner, set()

    def allreduce(self, buf, step):
        self.seen.add(("in", buf.dtype.name))
        self.inner.allreduce(buf, step)
        self.seen.add(("out", buf.dtype.name, type(buf[0]).__name__))


@pytest.mark.parametrize("shuffle", ["rows", "blocks"])
def test_float32_stays_float32_end_to_end(comm, shuffle):
    """--dtype float32: the reduced buffer, its values and the parameters never upcast."""
    ds = data.synthetic(400, 9, seed=2, dtype="float32")
    cfg = TrainConfig(batch_size=40, steps=8, dtype="float32", shuffle=shuffle)
    spy = DtypeSpy(MPIAllreduce(comm))
    result = train(comm, spy, cfg, ds, QuietReporter())
    collective_assert(
        comm,
        spy.seen == {("in", "float32"), ("out", "float32", "float32")}
        and result.params.dtype == np.float32,
        str(spy.seen),
    )


class CountSpy:
    """An allreduce that records the count slot (``buf[-1]``) before and after the reduce."""

    def __init__(self, inner):
        self.inner, self.before, self.after = inner, [], []

    def allreduce(self, buf, step):
        self.before.append(float(buf[-1]))
        self.inner.allreduce(buf, step)
        self.after.append(float(buf[-1]))


def test_each_rank_gets_its_share_of_the_batch(comm):
    """The count slot of the reduced buffer is the global batch, whatever the split: each
    rank packs its own share (sizes differ by at most one) and the reduce sums them."""
    size, rank = comm.Get_size(), comm.Get_rank()
    batch = 10 * size + 1  # never divisible by size > 1
    lo, hi = data.rank_slice(batch, size, rank)
    ds = data.synthetic(400, 5, seed=3, dtype="float64")
    spy = CountSpy(MPIAllreduce(comm))
    train(comm, spy, TrainConfig(batch_size=batch, steps=4, seed=3), ds, QuietReporter())
    shares = comm.allgather(spy.before)
    collective_assert(
        comm,
        spy.before == [hi - lo] * 4  # this rank's own rows, every step
        and spy.after == [batch] * 4  # after the reduce: the global batch, on every rank
        and max(s[0] for s in shares) - min(s[0] for s in shares) <= 1,
        f"before {spy.before}, after {spy.after}",
    )


def test_raise_together_names_the_failing_rank(comm):
    size, rank = comm.Get_size(), comm.Get_rank()
    bad = size - 1
    mine = UsageError("cannot open data.npz") if rank == bad else None
    with pytest.raises(UsageError) as info:
        raise_together(comm, mine)
    prefix = f"rank {bad}: " if size > 1 else ""
    collective_assert(comm, str(info.value) == f"{prefix}cannot open data.npz", str(info.value))
    raise_together(comm, None)  # nobody failed: returns on every rank


def test_bad_value_in_another_ranks_block_fails_every_rank(comm, tmp_path_factory):
    """The value scan is split across ranks; a NaN seen by the last rank stops all of them."""
    size, rank = comm.Get_size(), comm.Get_rank()
    folder = comm.bcast(str(tmp_path_factory.mktemp("nan")) if rank == 0 else None)
    n = 50
    if rank == 0:
        X = np.ones((n, 3))
        X[n - 1, 2] = np.nan  # the last row: scanned by the last rank
        np.save(f"{folder}/X.npy", X)
        np.save(f"{folder}/y.npy", np.zeros(n))
    comm.Barrier()
    ds = data.load(folder, "float64")
    with pytest.raises(UsageError) as info:
        data.check_values(comm, ds)
    prefix = f"rank {size - 1}: " if size > 1 else ""
    collective_assert(
        comm,
        str(info.value).startswith(prefix) and "X[49, 2] = nan" in str(info.value),
        str(info.value),
    )


def test_final_loss_equals_serial_objective(comm):
    ds = data.synthetic(301, 4, seed=5, dtype="float64")  # 301: uneven evaluation blocks
    cfg = TrainConfig(batch_size=30, steps=10, lr=0.5, l2=0.01, seed=5)
    result = train(comm, MPIAllreduce(comm), cfg, ds, QuietReporter())
    expected = model.objective(ds.X, ds.y, result.coef, result.intercept, 0.01)
    acc = np.mean(((ds.X @ result.coef + result.intercept) > 0) == (ds.y == 1))
    collective_assert(
        comm, abs(result.final_loss - expected) < 1e-12 and abs(result.final_accuracy - acc) < 1e-12
    )


@pytest.mark.mpi(min_size=2)
def test_replica_mismatch_stops_every_rank_and_names_the_ranks(world_comm):
    comm = world_comm
    from dist_logreg.train.loop import check_replicas

    size, rank = comm.Get_size(), comm.Get_rank()
    params = np.ones(4)
    check_replicas(comm, params, 7)  # equal everywhere: passes
    if rank == size - 1:
        params[2] = np.nextafter(1.0, 2.0)  # one ulp: silent divergence
    with pytest.raises(ReplicasDisagree) as info:
        check_replicas(comm, params, 7)
    expected = f"rank groups [{list(range(size - 1))}, [{size - 1}]]"
    collective_assert(
        comm,
        "after step 7: replicas diverged" in str(info.value) and expected in str(info.value),
        str(info.value),
    )
