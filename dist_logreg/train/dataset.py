"""The rows a rank trains on: a :class:`Dataset` (features, labels, where they came from)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dist_logreg.train import sparse


@dataclass
class Dataset:
    """Training rows. ``X`` may be a read-only memory map; ``y`` holds 0/1 labels.

    Attributes
    ----------
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    source : str
        Where the rows came from, for messages and the summary.
    true_coef, true_intercept : ndarray (d,) and float, or None
        The generating model of the synthetic set (None for files).
    """

    X: np.ndarray
    y: np.ndarray
    source: str
    true_coef: np.ndarray | None = None
    true_intercept: float | None = None
    checked: bool = False  # values already known finite and labels 0/1
    # Sharded data (see train/shards.py): this process holds rows of a larger set.
    total_samples: int | None = None  # rows of all shards together; None: not sharded
    row_offset: int = 0  # global index of this shard's first row (for messages)

    @property
    def n_samples(self) -> int:
        """Rows this process holds (its shard, when sharded)."""
        return self.X.shape[0]

    @property
    def sparse(self) -> bool:
        """``X`` is a scipy sparse CSR matrix (train/sparse.py), not an ndarray or memory map."""
        return sparse.is_sparse(self.X)

    @property
    def n_total(self) -> int:
        """Rows of the whole data set, over all shards."""
        return self.n_samples if self.total_samples is None else self.total_samples

    @property
    def sharded(self) -> bool:
        return self.total_samples is not None

    @property
    def n_features(self) -> int:
        return self.X.shape[1]
