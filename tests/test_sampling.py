"""Which rows each step reads: shuffle modes, sharded plans, shards of the data."""

import numpy as np
import pytest
from mpi4py import MPI

from dist_logreg.errors import UsageError
from dist_logreg.train import data, sampling, shards
from dist_logreg.train.config import TrainConfig
from dist_logreg.train.sampling import BatchPlan, GlobalBatches, rank_slice


def global_batch(n, batch, size, step, shuffle, seed=4):
    """The global batch of ``step`` assembled from every rank's plan at world size ``size``."""
    parts = []
    for rank in range(size):
        lo, hi = rank_slice(batch, size, rank)
        rows = BatchPlan(n, batch, lo, hi, seed, shuffle).rows(step)
        parts.append(np.arange(n)[rows])
    return parts


def test_rows_mode_is_the_global_permutation():
    """Each rank reads its slice of the global permutation's batch, sorted."""
    gb = GlobalBatches(103, 10, 4)
    for step in (0, 9, 10, 25):
        parts = global_batch(103, 10, 3, step, "rows")
        for rank, part in enumerate(parts):
            lo, hi = rank_slice(10, 3, rank)
            np.testing.assert_array_equal(part, np.sort(gb.batch(step)[lo:hi]))


@pytest.mark.parametrize("shuffle", ["blocks", "none"])
def test_contiguous_modes_give_views_and_cover_each_epoch_once(shuffle):
    n, batch = 107, 10  # 7 rows left over: blocks shifts by up to 7
    plan = BatchPlan(n, batch, 0, batch, seed=4, shuffle=shuffle)
    assert plan.steps_per_epoch == 10
    epochs = []
    for epoch in range(3):
        seen = []
        for i in range(10):
            rows = plan.rows(epoch * 10 + i)
            assert isinstance(rows, slice) and rows.stop - rows.start == batch  # a view
            seen.append(np.arange(n)[rows])
        flat = np.concatenate(seen)
        assert len(np.unique(flat)) == 100  # no row twice in an epoch
        epochs.append(flat)
    if shuffle == "none":
        np.testing.assert_array_equal(epochs[0], np.arange(100))
        np.testing.assert_array_equal(epochs[0], epochs[2])  # the same every epoch
    else:
        assert not np.array_equal(epochs[0], epochs[1])  # a new order every epoch
        starts = {int(e.reshape(10, 10)[:, 0].min()) for e in epochs}
        assert all(0 <= s <= 7 for s in starts)  # shifted by the leftover rows at most


@pytest.mark.parametrize("shuffle", sampling.SHUFFLES)
def test_global_batch_does_not_depend_on_the_world_size(shuffle):
    """Invariant 2 for every shuffle mode: ranks' shares are contiguous parts of one batch."""
    for step in (0, 3, 11, 40):
        one = global_batch(250, 23, 1, step, shuffle)[0]
        for size in (2, 3, 7):
            parts = global_batch(250, 23, size, step, shuffle)
            np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.sort(one))
            shares = [len(p) for p in parts]
            assert max(shares) - min(shares) <= 1


def test_modes_draw_independent_orders():
    rows = BatchPlan(1000, 100, 0, 100, 1, "rows").rows(0)
    blocks = BatchPlan(1000, 100, 0, 100, 1, "blocks").rows(0)
    assert not np.array_equal(rows, np.arange(1000)[blocks])


class FakeComm:
    """Enough of a communicator for make_plan at a given rank of a given size."""

    def __init__(self, size, rank, shard_rows):
        self.size, self.rank, self.shard_rows = size, rank, shard_rows

    def Get_size(self):
        return self.size

    def Get_rank(self):
        return self.rank

    def allgather(self, value):
        return [value if r == self.rank else self.shard_rows[r] for r in range(self.size)]


@pytest.mark.parametrize("shuffle", sampling.SHUFFLES)
def test_sharded_plan_at_one_rank_is_the_global_plan(shuffle):
    cfg = TrainConfig(batch_size=16, seed=3, shuffle=shuffle, sampling="sharded")
    ds = data.synthetic(200, 3, seed=3, dtype="float64", rows=(0, 200))
    sharded = sampling.make_plan(FakeComm(1, 0, [None]), cfg, ds)
    whole = data.synthetic(200, 3, seed=3, dtype="float64")
    plain = sampling.make_plan(
        FakeComm(1, 0, [None]), TrainConfig(batch_size=16, seed=3, shuffle=shuffle), whole
    )
    for step in range(0, 60, 7):
        np.testing.assert_array_equal(
            np.arange(200)[sharded.rows(step)], np.arange(200)[plain.rows(step)]
        )


@pytest.mark.parametrize("shuffle", sampling.SHUFFLES)
def test_sharded_ranks_read_only_their_shard(shuffle):
    n, size, batch = 301, 3, 31
    cfg = TrainConfig(batch_size=batch, seed=8, shuffle=shuffle, sampling="sharded")
    shard_rows = [hi - lo for lo, hi in (rank_slice(n, size, r) for r in range(size))]
    share = [hi - lo for lo, hi in (rank_slice(batch, size, r) for r in range(size))]
    spe = min(s // m for s, m in zip(shard_rows, share, strict=True))
    firsts = []
    for rank in range(size):
        comm = FakeComm(size, rank, [s // m for s, m in zip(shard_rows, share, strict=True)])
        ds = data.synthetic(n, 2, seed=8, dtype="float64", rows=rank_slice(n, size, rank))
        plan = sampling.make_plan(comm, cfg, ds)
        assert plan.steps_per_epoch == spe and plan.rows_per_step == share[rank]
        epoch = np.concatenate([np.arange(ds.n_samples)[plan.rows(s)] for s in range(spe)])
        assert epoch.min() >= 0 and epoch.max() < ds.n_samples  # local rows of the shard
        assert len(np.unique(epoch)) == len(epoch)  # each shard row at most once an epoch
        firsts.append(epoch[: share[rank]])
    if shuffle != "none":  # each shard has its own random stream
        assert len({tuple(f[:5]) for f in firsts}) == size


def test_check_shards_names_the_short_rank():
    assert sampling.check_shards(10, [3, 3, 4]) is None  # shares are 3, 3, 4 rows
    why = sampling.check_shards(10, [3, 2, 4])
    assert "rank 1's shard" in why and "3 rows of --batch-size 10" in why and "got 2" in why


@pytest.mark.parametrize("lo, hi", [(0, 5), (8000, 8400), (8191, 8193), (3, 20000)])
def test_synthetic_shard_equals_the_rows_of_the_whole_set(lo, hi):
    whole = data.synthetic(20000, 3, seed=6, dtype="float32")
    part = data.synthetic(20000, 3, seed=6, dtype="float32", rows=(lo, hi))
    np.testing.assert_array_equal(part.X, whole.X[lo:hi])
    np.testing.assert_array_equal(part.y, whole.y[lo:hi])
    assert part.sharded and part.n_total == 20000 and part.row_offset == lo


def test_shard_of_a_memory_map_stays_a_map_and_in_memory_rows_are_copied(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((50, 4)))
    np.save(tmp_path / "y.npy", (rng.random(50) < 0.5).astype(float))
    mapped = shards.shard(data.load(str(tmp_path), "float64"), 10, 30)
    assert isinstance(mapped.X, np.memmap) and mapped.n_samples == 20 and mapped.n_total == 50
    np.savez(tmp_path / "d.npz", X=np.ones((50, 4)), y=np.zeros(50))
    whole = data.load(str(tmp_path / "d.npz"), "float64")
    part = shards.shard(whole, 10, 30)
    assert part.X.base is None and not np.shares_memory(part.X, whole.X)  # the rest can go


def test_per_rank_files_and_agreement(tmp_path):
    for rank, rows in enumerate((30, 41)):
        np.savez(tmp_path / f"part-{rank}.npz", X=np.ones((rows, 3)), y=np.zeros(rows))
    cfg = TrainConfig(data=str(tmp_path / "part-{rank}.npz"), sampling="sharded", batch_size=8)
    ds = shards.for_rank(cfg, 2, 1)
    assert ds.n_samples == 41 and ds.source.endswith("part-1.npz")
    shards.agree_shards(FakeComm(2, 1, [(30, 3), None]), ds, 8)
    assert ds.n_total == 71 and ds.row_offset == 30
    with pytest.raises(UsageError, match=r"same number of features, got \[4, 3\]"):
        shards.agree_shards(FakeComm(2, 1, [(30, 4), None]), ds, 8)
    with pytest.raises(UsageError, match="rank 0's shard"):
        shards.agree_shards(FakeComm(2, 1, [(3, 3), None]), ds, 8)


def test_sharded_data_is_checked_on_each_ranks_own_rows(tmp_path):
    X = np.ones((40, 2))
    X[33, 1] = np.nan
    np.savez(tmp_path / "d.npz", X=X, y=np.zeros(40))
    cfg = TrainConfig(data=str(tmp_path / "d.npz"), sampling="sharded", batch_size=4)
    ds = shards.for_rank(cfg, 2, 1)  # rows 20..39 of the file
    with pytest.raises(UsageError, match=r"X\[33, 1\] = nan"):  # the global row number
        data.check_values(MPI.COMM_SELF, ds)


def test_plan_refuses_data_that_do_not_match_the_sampling():
    whole = data.synthetic(50, 2, seed=1, dtype="float64")
    with pytest.raises(ValueError, match="sharded: expected this rank's shard"):
        sampling.make_plan(FakeComm(1, 0, [None]), TrainConfig(sampling="sharded"), whole)
    part = data.synthetic(50, 2, seed=1, dtype="float64", rows=(0, 50))
    with pytest.raises(ValueError, match="global: expected all rows, got a shard"):
        sampling.make_plan(FakeComm(1, 0, [None]), TrainConfig(), part)
