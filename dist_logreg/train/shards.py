"""Each rank's shard of the data (``--sampling sharded``), like PyTorch's DistributedSampler.

Rank ``r`` of ``p`` owns rows ``[r n/p, (r+1) n/p)`` of one data set, or reads its own file
(``{rank}`` in ``--data``). A synthetic shard is generated for the shard's rows only, a
memory-mapped shard touches only its own pages, and a file read into memory is cut and
the rest freed, so a rank's memory holds about ``1/p`` of the data.
"""

from __future__ import annotations

import numpy as np

from dist_logreg.errors import UsageError
from dist_logreg.train.config import DEFAULT_FEATURES
from dist_logreg.train.data import Dataset, load, synthetic
from dist_logreg.train.sampling import check_shards, rank_slice


def shard(ds: Dataset, lo: int, hi: int) -> Dataset:
    """Rows ``[lo, hi)`` of a loaded data set as this rank's shard.

    A memory map stays a memory map (only the shard's pages are ever touched); rows read
    into memory are copied, so the rest of the file can be freed.
    """
    X = ds.X[lo:hi] if isinstance(ds.X, np.memmap) else ds.X[lo:hi].copy()
    part = Dataset(X, ds.y[lo:hi].copy(), f"{ds.source} rows {lo}..{hi - 1}")
    part.total_samples, part.row_offset = ds.n_samples, lo
    return part


def for_rank(cfg, size: int, rank: int) -> Dataset:
    """The rows this rank trains on: everything, or with ``cfg.sampling == 'sharded'`` its
    shard (``{rank}`` in ``--data`` names a file per rank). Not collective: wrap the call
    in ``raise_together``, then call :func:`agree_shards`."""
    if cfg.data and "{rank}" in cfg.data:  # validate() made sure sampling is sharded
        ds = load(cfg.data.replace("{rank}", str(rank)), cfg.dtype, cfg.label_column)
        ds.total_samples = ds.n_samples  # summed over ranks by agree_shards
        return ds
    if cfg.sampling != "sharded":
        if cfg.data:
            return load(cfg.data, cfg.dtype, cfg.label_column)
        return synthetic(cfg.samples, cfg.features or DEFAULT_FEATURES, cfg.seed, cfg.dtype)
    if cfg.data:
        whole = load(cfg.data, cfg.dtype, cfg.label_column)
        return shard(whole, *rank_slice(whole.n_samples, size, rank))
    rows = rank_slice(cfg.samples, size, rank)
    return synthetic(cfg.samples, cfg.features or DEFAULT_FEATURES, cfg.seed, cfg.dtype, rows=rows)


def agree_shards(comm, ds: Dataset, batch_size: int) -> None:
    """Collective, for sharded data: the total row count and each shard's first row, one
    feature count, every shard big enough for its share of the batch.

    Every rank judges the same gathered shapes, so a ``UsageError`` is raised on all ranks.
    """
    if not ds.sharded:
        return
    shapes = comm.allgather((ds.n_samples, ds.n_features))
    rows, features = [n for n, _ in shapes], [d for _, d in shapes]
    if len(set(features)) > 1:
        raise UsageError(
            "--sampling sharded: expected every rank's data to have the same number of "
            f"features, got {features} on ranks 0..{len(shapes) - 1}"
        )
    why = check_shards(batch_size, rows)
    if why:
        raise UsageError(why)
    ds.total_samples = sum(rows)
    ds.row_offset = sum(rows[: comm.Get_rank()])  # shards are consecutive runs of rows
