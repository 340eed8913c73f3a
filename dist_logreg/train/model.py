"""Binary logistic regression math: pure numpy, no MPI.

Objective (scikit-learn's ``LogisticRegression`` with ``C = 1 / (l2 * n)``)::

    J(w, b) = (1/n) * sum_i [ log(1 + exp(z_i)) - y_i * z_i ] + (l2 / 2) * ||w||^2
    z_i     = x_i . w + b,   y_i in {0, 1},   intercept b not penalized

Functions here return *sums* over the rows they are given; the trainer divides
by the global row count after the allreduce, so uneven slices still give the
exact global mean.

The gradient buffer layout (``d`` features) is the one packed into the single
allreduce of a step::

    buf[0:d]  sum_i (sigmoid(z_i) - y_i) * x_i     (gradient of the loss sum w.r.t. w)
    buf[d]    sum_i (sigmoid(z_i) - y_i)           (w.r.t. b)
    buf[d+1]  sum_i loss_i                         (loss sum, for reporting)
    buf[d+2]  number of rows                       (the count to divide by)
"""

from __future__ import annotations

import numpy as np

#: Extra slots after the ``d`` weight-gradient entries: grad_b, loss_sum, count.
EXTRA_SLOTS = 3
#: Offsets of the extra slots after the ``d`` weight-gradient entries.
GRAD_B, LOSS_SUM, COUNT = 0, 1, 2


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
    # sigmoid(z) = (1 + tanh(z / 2)) / 2: tanh saturates instead of overflowing, and it is
    # one ufunc pass instead of the exp / where / divide of the textbook branch form.
    s = np.multiply(z, 0.5, dtype=z.dtype)
    np.tanh(s, out=s)
    s *= 0.5
    s += 0.5
    return s


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
    return np.logaddexp(0.0, z).astype(z.dtype, copy=False) - y * z


def grad_sums(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` with the packed sums for rows ``X``, ``y`` (layout in the module doc).

    Parameters
    ----------
    X : ndarray, shape (m, d)
    y : ndarray, shape (m,)
    w : ndarray, shape (d,)
    b : float
    out : ndarray, shape (d + 3,)
        Written in place and returned. ``m = 0`` gives all zeros.
    """
    d = w.shape[0]
    r = residuals(X, y, w, b, out)
    np.matmul(r, X, out=out[:d])  # r @ X == X.T @ r, without a transposed copy
    return out


def residuals(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, out: np.ndarray) -> np.ndarray:
    """Forward pass: fill the three tail slots of ``out`` and return ``r = sigmoid(z) - y``.

    The weight gradient is then ``r @ X``, computable column block by column block
    (``r @ X[:, lo:hi]``), which is how bucketed training produces it.

    Parameters
    ----------
    X : ndarray, shape (m, d)
    y : ndarray, shape (m,)
    w : ndarray, shape (d,)
    b : float
    out : ndarray, shape (d + 3,)
        ``out[d:]`` is written: gradient sum for b, loss sum, row count.

    Returns
    -------
    r : ndarray, shape (m,)
    """
    d = w.shape[0]
    z = X @ w
    z += b
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
    buf = np.empty(buffer_size(w.shape[0]), dtype=np.result_type(X, w))
    grad_sums(X, y, w, b, buf)
    n = X.shape[0]
    d = w.shape[0]
    return buf[:d] / n + l2 * w, float(buf[d] / n)
