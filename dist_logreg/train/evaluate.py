"""Evaluation on a whole data set, collectively, and the held-out split.

:func:`evaluate` is collective: each rank scores ``n/p`` of the rows in blocks, and one
small allreduce adds the sums (control traffic, not the recorded gradient path). For a
binary model the exact ROC AUC needs every score and label: they are exchanged with two
buffer-based ``Allgatherv`` (16 bytes per row) and every rank computes the same value.
"""

from __future__ import annotations

from dataclasses import replace
from time import perf_counter_ns

import numpy as np

from dist_logreg.errors import UsageError
from dist_logreg.train.data import scan_range
from dist_logreg.train.faults import NoWatchdog

#: Rows per block when scoring a whole data set.
EVAL_BLOCK = 65536


def evaluate(comm, model, ds, params: np.ndarray, l2: float = 0.0, watchdog=None, auc=False):
    """Collective: loss, accuracy (and, when ``auc``, binary ROC AUC) of ``params`` on ``ds``.

    Returns a dict: ``loss`` = mean log-loss over all rows + ``(l2/2)||W||^2`` (pass
    ``l2 = 0`` for the plain held-out log-loss), ``accuracy``, and ``auc`` (None where
    undefined: one class only, or a softmax model).
    """
    size, rank = comm.Get_size(), comm.Get_rank()
    n = ds.n_total  # all rows, also when each rank holds a shard
    lo, hi = scan_range(ds, size, rank)  # its part of the rows, or its whole shard
    sums = np.zeros(2, dtype=np.float64)  # loss sum, correct predictions
    mine = np.empty(hi - lo, dtype=np.float64) if auc and model.kind == "binary" else None
    for start in range(lo, hi, EVAL_BLOCK):
        stop = min(start + EVAL_BLOCK, hi)
        X = ds.X[start:stop]
        X = X.astype(params.dtype, copy=False) if ds.sparse else np.asarray(X, params.dtype)
        y = ds.y[start:stop]
        z = model.scores(X, params)
        sums[0] += model.loss_terms(z, y).sum()
        sums[1] += np.count_nonzero(model.predict_index(z) == y)
        if mine is not None:
            mine[start - lo : stop - lo] = z
    dog = watchdog or NoWatchdog()
    dog.arm("evaluation allreduce", -1, perf_counter_ns())
    sums = comm.allreduce(sums)  # one small control message, not the hot path
    result = {"loss": None, "accuracy": float(sums[1] / n), "auc": None}
    if mine is not None:
        counts = comm.allgather(hi - lo)
        scores, labels = np.empty(n, dtype=np.float64), np.empty(n, dtype=np.float64)
        comm.Allgatherv(mine, [scores, counts])
        comm.Allgatherv(np.asarray(ds.y[lo:hi], dtype=np.float64), [labels, counts])
        result["auc"] = roc_auc(labels == 1, scores)
    dog.disarm()
    W = params[: model.n_weights]
    result["loss"] = float(sums[0] / n + 0.5 * l2 * np.dot(W, W))
    return result


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Exact area under the ROC curve (Mann-Whitney U, ties counted half); None for one class."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    values, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mid_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct score
    rank_sum = mid_rank[inverse][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def split_holdout(ds, fraction: float, seed: int):
    """``(train, held-out)`` datasets: a fraction of the rows drawn from ``seed`` alone.

    The draw depends on the seed and the row count only, so every rank and every world
    size makes the same split. Both parts keep the file order and are copies in memory.
    """
    n = ds.n_samples
    n_val = round(fraction * n)
    if not 1 <= n_val <= n - 1:
        raise UsageError(
            f"--val-fraction {fraction}: expected a fraction that leaves at least one row on "
            f"each side of the split of {n} rows, got {n_val} held-out rows"
        )
    order = np.random.default_rng([seed, 0x4E1D]).permutation(n)
    val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
    parts = []
    for rows, tag in ((train_rows, "train"), (val_rows, "held-out")):
        X = ds.X[rows] if ds.sparse else np.take(ds.X, rows, axis=0)
        parts.append(replace(ds, X=X, y=ds.y[rows], source=f"{ds.source}, {tag} part of {n} rows"))
    return parts[0], parts[1]
