"""Binary logistic regression math: pure numpy, no MPI.

Objective (scikit-learn's ``LogisticRegression`` with ``C = 1 / (l2 * n)``)::

    J(w, b) = (1/n) * sum_i [ log(1 + exp(z_i)) - y_i * z_i ] + (l2 / 2) * ||w||^2
    z_i     = x_i . w + b,   y_i in {0, 1},   intercept b not penalized

The parameters are one flat vector ``params = [w (d), b]`` of ``n_params(d) = d + 1``
numbers. Functions here return *sums* over the rows they are given; the trainer divides by
the global row count after the allreduce, so uneven slices still give the exact global mean.

The packed buffer (the single allreduce of a step) is, for any model::

    buf[:P]   gradient sums w.r.t. params  (here: sum_i r_i x_i, then sum_i r_i,
                                            r_i = sigmoid(z_i) - y_i)
    buf[P]    sum_i loss_i                 (loss sum, for reporting)
    buf[P+1]  number of rows               (the count to divide by)

:func:`grad_sums` reads each row once: it walks the rows in cache-sized blocks and, while
a block is in cache, computes its logits, residuals and its ``X_block.T @ r_block``
contribution. The rows are either all of ``X``, a contiguous ``slice`` (a zero-copy view)
or an index array (gathered block by block into a small scratch buffer, never into a
whole-batch copy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Extra slots after the ``d`` weight-gradient entries: grad_b, loss_sum, count.
EXTRA_SLOTS = 3
#: Offsets of the extra slots after the ``d`` weight-gradient entries.
GRAD_B, LOSS_SUM, COUNT = 0, 1, 2
#: Bytes of one block of rows when the cache size cannot be read (twice a common L2 size).
DEFAULT_BLOCK_BYTES = 2 * 1024 * 1024


def n_params(n_features: int) -> int:
    """Length of the flat parameter vector ``[w, b]``."""
    return n_features + 1


def buffer_size(n_features: int) -> int:
    """Number of elements in the packed gradient buffer for ``n_features``."""
    return n_features + EXTRA_SLOTS


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function; never overflows for any finite ``z``.

    Parameters
    ----------
    z : ndarray, shape (m,)

    Returns
    -------
    ndarray, shape (m,), values in [0, 1]
    """
    s = np.multiply(z, 0.5, dtype=z.dtype)
    return _half_tanh(s, s)


def _half_tanh(half_z: np.ndarray, out: np.ndarray) -> np.ndarray:
    # sigmoid(z) = (1 + tanh(z / 2)) / 2: tanh saturates instead of overflowing, and it is
    # one ufunc pass instead of the exp / where / divide of the textbook branch form.
    np.tanh(half_z, out=out)
    out *= 0.5
    out += 0.5
    return out


def loss_terms(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample log-loss ``log(1 + exp(z)) - y z``, stable for large ``|z|`` (no log(0)).

    Parameters
    ----------
    z : ndarray, shape (m,)
        Logits.
    y : ndarray, shape (m,)
        Labels in {0, 1}.

    Returns
    -------
    ndarray, shape (m,)
    """
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): e^-|z| <= 1 never overflows, and these four
    # ufuncs cost ~6x less than np.logaddexp (~30 ns per element here; benchmarks/bench_wide.py)
    t = np.abs(z)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    t += np.maximum(z, 0.0)
    t -= y * z
    return t


def cache_block_bytes() -> int:
    """Twice this CPU's L2 cache (read from sysfs on Linux), else ``DEFAULT_BLOCK_BYTES``.

    Why twice, not half: each block costs about ten numpy calls and one more pass over
    ``w`` and the gradient accumulator (``d`` elements each), so small blocks lose where
    rows are long (a 512 KiB block holds 2 rows of 65,536 float32: the accumulator was
    read and written once per 2 rows). A block of twice the L2 still sits in the last-level
    cache for the second product (benchmarks/bench_wide.py: 2.2x one pass -> ~1.5x on the
    wide shape, 1.6x -> ~1.5x on the narrow one). Clamped to [256 KiB, 8 MiB].
    """
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if level == "2" and kind in ("Unified", "Data") and size.endswith("K"):
            return min(max(int(size[:-1]) * 1024 * 2, 256 * 1024), 8 * 1024 * 1024)
    return DEFAULT_BLOCK_BYTES


class Workspace:
    """Scratch arrays of :func:`grad_sums`, allocated once per run in the run's dtype.

    Parameters
    ----------
    n_features : int
    max_rows : int
        The most rows one call will be given.
    dtype : the run's float dtype (every scratch array has it: no silent upcast)
    block_rows : int, optional
        Rows per block (default: a block of about twice the L2 cache, at least 2 rows).
    """

    def __init__(self, n_features: int, max_rows: int, dtype, block_rows: int | None = None):
        dtype = np.dtype(dtype)
        if block_rows is None:
            block_rows = max(2, cache_block_bytes() // max(1, n_features * dtype.itemsize))
        self.block_rows = max(1, block_rows)
        self.block = np.empty((min(self.block_rows, max(max_rows, 1)), n_features), dtype)
        self.y = np.empty(max_rows, dtype)  # the rows' labels
        self.z = np.empty(max_rows, dtype)  # logits
        self.r = np.empty(max_rows, dtype)  # residuals, first 0.5 z
        self.part = np.empty(n_features, dtype)  # one block's X_block.T @ r_block

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}


def count_rows(rows, n: int) -> int:
    """How many rows ``rows`` (None, a slice or an index array) selects out of ``n``."""
    if rows is None:
        return n
    if isinstance(rows, slice):
        return len(range(*rows.indices(n)))
    return len(rows)


def row_block(X: np.ndarray, rows, lo: int, hi: int, scratch: np.ndarray) -> np.ndarray:
    """Rows ``lo..hi-1`` of the selection as an array in the run's dtype.

    A contiguous slice of ``X`` in the right dtype is returned as a view (no copy); an
    index array is gathered into ``scratch`` (one cache-sized block, not the whole batch).
    """
    if isinstance(rows, slice):
        block = X[rows.start + lo : rows.start + hi]
        if block.dtype == scratch.dtype:
            return block
        out = scratch[: hi - lo]
        np.copyto(out, block, casting="same_kind")
        return out
    out = scratch[: hi - lo]
    if X.dtype == scratch.dtype:
        np.take(X, rows[lo:hi], axis=0, out=out, mode="clip")  # indices known valid
    else:
        out[...] = X[rows[lo:hi]]
    return out


def row_labels(y: np.ndarray, rows, out: np.ndarray) -> np.ndarray:
    """The selected rows' labels, copied into ``out`` (shape (m,), the run's dtype)."""
    if isinstance(rows, slice) or y.dtype != out.dtype:
        np.copyto(out, y[rows], casting="same_kind")
    else:
        np.take(y, rows, out=out, mode="clip")
    return out


def grad_sums(
    X: np.ndarray,
    y: np.ndarray,
    params: np.ndarray,
    out: np.ndarray,
    rows=None,
    work: Workspace | None = None,
) -> np.ndarray:
    """Fill ``out`` with the packed sums over the selected rows, reading each row once.

    Parameters
    ----------
    X : ndarray, shape (n, d)
        All rows this process can read (may be a memory map, of any float dtype).
    y : ndarray, shape (n,)
    params : ndarray, shape (d + 1,)
        ``[w, b]``, in the run's dtype.
    out : ndarray, shape (d + 3,)
        Written in place and returned (layout in the module doc). No rows give all zeros.
    rows : None, slice or int ndarray (m,)
        Which rows of ``X``: all, a contiguous range (zero-copy), or indices (sorted
        indices read a memory map sequentially).
    work : Workspace, optional
        Preallocated scratch; allocated here when not given.
    """
    n, d = X.shape
    if isinstance(X, np.memmap):  # a plain view of the same pages: no subclass overhead
        X = X.view(np.ndarray)
    if rows is None:
        rows = slice(0, n)
    elif isinstance(rows, slice):
        rows = slice(*rows.indices(n)[:2])
    m = count_rows(rows, n)
    if work is None:
        work = Workspace(d, m, out.dtype)
    w, b = params[:d], params[d]
    yv = row_labels(y, rows, work.y[:m])
    z, r = work.z[:m], work.r[:m]
    acc = out[:d]
    acc[...] = 0
    for lo in range(0, m, work.block_rows):
        hi = min(lo + work.block_rows, m)
        xb = row_block(X, rows, lo, hi, work.block)
        zb, rb = z[lo:hi], r[lo:hi]
        np.matmul(xb, w, out=zb)
        zb += b
        np.multiply(zb, 0.5, out=rb)
        _half_tanh(rb, rb)  # sigmoid(z)
        rb -= yv[lo:hi]
        np.matmul(rb, xb, out=work.part)  # r @ X == X.T @ r, while the block is in cache
        acc += work.part
    out[d + GRAD_B] = r.sum()
    out[d + LOSS_SUM] = loss_terms(z, yv).sum()
    out[d + COUNT] = m
    return out


def residuals(X: np.ndarray, y: np.ndarray, params: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Forward pass: fill the three tail slots of ``out`` and return ``r = sigmoid(z) - y``.

    The weight gradient is then ``r @ X``, computable column block by column block
    (``r @ X[:, lo:hi]``), which is how bucketed training produces it.

    Parameters
    ----------
    X : ndarray, shape (m, d)
    y : ndarray, shape (m,)
    params : ndarray, shape (d + 1,)
    out : ndarray, shape (d + 3,)
        ``out[d:]`` is written: gradient sum for b, loss sum, row count.

    Returns
    -------
    r : ndarray, shape (m,)
    """
    d = X.shape[1]
    z = X @ params[:d]
    z += params[d]
    r = sigmoid(z)
    r -= y
    out[d + GRAD_B] = r.sum()
    out[d + LOSS_SUM] = loss_terms(z, y).sum()
    out[d + COUNT] = X.shape[0]
    return r


def objective(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, l2: float) -> float:
    """The full objective ``J(w, b)`` on one process's arrays (serial oracle and tests)."""
    z = X @ w + b
    return float(loss_terms(z, y).mean() + 0.5 * l2 * np.dot(w, w))


def full_gradient(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, l2: float
) -> tuple[np.ndarray, float]:
    """Gradient of ``J`` w.r.t. ``(w, b)`` on one process's arrays: shapes ``(d,)`` and scalar."""
    dtype = np.result_type(X, w)
    buf = np.empty(buffer_size(w.shape[0]), dtype=dtype)
    grad_sums(X, y, np.append(w, b).astype(dtype), buf)
    n = X.shape[0]
    d = w.shape[0]
    return buf[:d] / n + l2 * w, float(buf[d] / n)
