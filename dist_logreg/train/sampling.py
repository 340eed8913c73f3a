"""Which rows each step reads: the batch order of every shuffle and sampling mode.

Pure index arithmetic (numpy only; the one collective, :func:`make_plan`, takes the
communicator as an argument). A step's rows on a rank are a ``slice`` of the rows it can
read (a zero-copy view) or a sorted index array (gathered block by block by the model).

``--shuffle`` (what an epoch visits, docs/design.md invariant 2 holds for all three under
``--sampling global``: the global batch of a step does not depend on the world size):

rows
    Each epoch is a fresh permutation of all rows from ``(seed, epoch)``; step ``s`` takes
    the next ``batch`` rows of it. Every batch is a uniform sample without replacement
    (textbook SGD). A rank's share is scattered: its rows are gathered.
blocks
    The rows are cut into consecutive runs of ``batch`` rows, shifted by a random offset
    each epoch, and each epoch visits these runs in a new random order from
    ``(seed, epoch)``. A rank's share is a contiguous view: nothing is gathered. Rows that
    are neighbours in the file always share a batch (apart from the shift), so the data
    must not be ordered (sorted by label, by time): shuffle such a file once first. The
    synthetic set's rows are independent draws, so for it this is as good as ``rows``.
none
    Step ``s`` reads rows ``[iB, (i+1)B)`` with ``i = s mod steps_per_epoch``, in file order,
    every epoch the same. For benchmarks and for data already shuffled.

``--sampling sharded`` (like PyTorch's ``DistributedSampler``): rank ``r`` owns the rows
``[r n/p, (r+1) n/p)`` (or its own file) and draws its share of every global batch from
them only, with its own stream ``(seed, r)``; rank 0's stream is the global one, so at
``p = 1`` a sharded run is the global run. The trajectory depends on ``p``.
"""

from __future__ import annotations

import numpy as np

SHUFFLES = ("rows", "blocks", "none")
SAMPLINGS = ("global", "sharded")
#: Keys that separate the random streams of the modes (so ``rows`` and ``blocks`` with one
#: seed draw independent orders).
_ROWS_KEY, _BLOCKS_KEY = 0x5A3B, 0xB10C


def rank_slice(batch_size: int, size: int, rank: int) -> tuple[int, int]:
    """This rank's contiguous ``[lo, hi)`` share of a batch; shares differ by at most one row."""
    return rank * batch_size // size, (rank + 1) * batch_size // size


class GlobalBatches:
    """The ``rows`` order: a permutation of ``n_samples`` rows per epoch from ``(seed, epoch)``.

    Step ``s`` takes the ``(s mod steps_per_epoch)``-th run of ``batch_size`` rows of it (the
    rows after the last whole batch of an epoch are dropped). Every rank derives the same
    sequence, so training with 1, 2, 3 or 7 ranks follows the same trajectory (docs/design.md
    invariant 2). ``stream`` (extra seed words) gives a shard its own independent order.
    """

    def __init__(
        self,
        n_samples: int,
        batch_size: int,
        seed: int,
        stream: tuple[int, ...] = (),
        steps_per_epoch: int | None = None,
    ):
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.seed = seed
        self.stream = tuple(stream)
        self.steps_per_epoch = steps_per_epoch or n_samples // batch_size
        self._epoch = -1
        self._perm = np.empty(0, dtype=np.int64)

    def batch(self, step: int) -> np.ndarray:
        """Row indices of step ``step``: shape ``(batch_size,)``."""
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            key = [self.seed, _ROWS_KEY, epoch, *self.stream]
            self._perm = np.random.default_rng(key).permutation(self.n_samples)
            self._epoch = epoch
        return self._perm[i * self.batch_size : (i + 1) * self.batch_size]


class BatchPlan:
    """This rank's rows of every step, in one shuffle mode.

    Parameters
    ----------
    n_rows : int
        Rows this rank can read (all rows, or its shard).
    batch : int
        Rows of one batch drawn from those rows (the global batch, or the rank's share).
    lo, hi : int
        The part of each batch this rank reads (its slice, or all of it when sharded).
    seed, shuffle, stream : the order's seed, mode and extra seed words.
    steps_per_epoch : int, optional
        Default ``n_rows // batch``; sharded ranks agree on the smallest over ranks.
    """

    def __init__(
        self, n_rows, batch, lo, hi, seed, shuffle="rows", stream=(), steps_per_epoch=None
    ):
        if shuffle not in SHUFFLES:
            raise ValueError(f"shuffle: expected one of {SHUFFLES}, got {shuffle!r}")
        self.n_rows, self.batch, self.lo, self.hi = n_rows, batch, lo, hi
        self.seed, self.shuffle, self.stream = seed, shuffle, tuple(stream)
        self.steps_per_epoch = steps_per_epoch or n_rows // batch
        self._rows = GlobalBatches(n_rows, batch, seed, stream, self.steps_per_epoch)
        self._epoch = -1
        self._offset = 0
        self._order = np.empty(0, dtype=np.int64)

    @property
    def rows_per_step(self) -> int:
        return self.hi - self.lo

    def rows(self, step: int) -> slice | np.ndarray:
        """Step ``step``'s rows on this rank: a slice (contiguous) or sorted indices."""
        if self.shuffle == "rows":
            # sorted: a memory map is then read front to back
            return np.sort(self._rows.batch(step)[self.lo : self.hi])
        epoch, i = divmod(step, self.steps_per_epoch)
        if self.shuffle == "none":
            start = i * self.batch
        else:
            if epoch != self._epoch:
                self._new_block_order(epoch)
            start = self._offset + int(self._order[i]) * self.batch
        return slice(start + self.lo, start + self.hi)

    def _new_block_order(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, _BLOCKS_KEY, epoch, *self.stream])
        whole = self.n_rows // self.batch
        self._offset = int(rng.integers(0, self.n_rows - whole * self.batch + 1))
        self._order = rng.permutation(whole)[: self.steps_per_epoch]
        self._epoch = epoch


def shard_stream(rank: int) -> tuple[int, ...]:
    """Shard ``rank``'s extra seed words: none for rank 0 (so p = 1 is the global run)."""
    return () if rank == 0 else (rank,)


def make_plan(comm, cfg, ds) -> BatchPlan:
    """Collective when sharded (the ranks agree on the epoch length): this rank's plan.

    ``ds`` is what this rank holds: all rows, or (``ds.sharded``) its shard of
    ``ds.n_total`` rows. Raises ``ValueError`` for a bad ``cfg.shuffle`` or data that do not
    match ``cfg.sampling``; sizes are checked by :func:`check_shards` and the config's
    validation.
    """
    size, rank = comm.Get_size(), comm.Get_rank()
    if (cfg.sampling == "sharded") != ds.sharded:
        held = "a shard" if ds.sharded else "all rows"
        want = "all rows" if ds.sharded else "this rank's shard (shards.for_rank)"
        raise ValueError(f"--sampling {cfg.sampling}: expected {want}, got {held} of the data")
    if cfg.sampling != "sharded":
        lo, hi = rank_slice(cfg.batch_size, size, rank)
        return BatchPlan(ds.n_samples, cfg.batch_size, lo, hi, cfg.seed, cfg.shuffle)
    lo, hi = rank_slice(cfg.batch_size, size, rank)
    share = hi - lo
    epochs = comm.allgather(ds.n_samples // share if share else 0)
    return BatchPlan(
        ds.n_samples,
        share,
        0,
        share,
        cfg.seed,
        cfg.shuffle,
        shard_stream(rank),
        steps_per_epoch=min(epochs),
    )


def check_shards(batch_size: int, shard_rows: list[int]) -> str | None:
    """Why these shards cannot serve ``batch_size`` (``None``: they can).

    Every rank's shard must hold at least its share of a global batch.
    """
    size = len(shard_rows)
    for rank, n in enumerate(shard_rows):
        lo, hi = rank_slice(batch_size, size, rank)
        if n < hi - lo:
            return (
                f"--sampling sharded: expected rank {rank}'s shard to hold at least its "
                f"share of the batch ({hi - lo} rows of --batch-size {batch_size}), "
                f"got {n} rows"
            )
    return None
