"""Multinomial (softmax) logistic regression math: pure numpy, no MPI.

Objective (scikit-learn's multinomial ``LogisticRegression`` with ``C = 1 / (l2 * n)``)::

    J(W, b) = (1/n) * sum_i [ logsumexp(z_i) - z_i[y_i] ] + (l2 / 2) * ||W||_F^2
    z_i     = W x_i + b,   W of shape (K, d),   b of shape (K,),   y_i in {0, ..., K-1}

The K intercepts are not penalized. Their gradient sums to zero over the classes, so
training from ``b = 0`` keeps ``sum_k b_k = 0`` (the softmax is unchanged by adding a
constant to every ``b_k``; this picks the same representative as scikit-learn).

Functions here return *sums* over the rows they are given; the trainer divides by the
global row count after the allreduce. ``X`` may be a dense ndarray or a scipy sparse CSR
matrix (only ``@`` is used on it). The packed buffer of one step (``K (d + 1) + 2``
elements, one allreduce)::

    buf[0 : K*d]          sum_i (p_i - onehot(y_i)) x_i^T, row-major (K, d)   (w.r.t. W)
    buf[K*d : K*d + K]    sum_i (p_i - onehot(y_i))                          (w.r.t. b)
    buf[-2]               sum_i loss_i                                       (loss sum)
    buf[-1]               number of rows                                     (the count)

Numerically stable: every exponential is of ``z - max_k z`` (log-sum-exp), so no logit
overflows and no probability is taken the log of.
"""

from __future__ import annotations

import numpy as np

#: Slots after the K (d + 1) parameter gradients: loss sum, row count.
TAIL = 2


def buffer_size(n_features: int, n_classes: int) -> int:
    """Elements in the packed gradient buffer: ``K (d + 1) + 2``."""
    return n_classes * (n_features + 1) + TAIL


def log_sum_exp(Z: np.ndarray) -> np.ndarray:
    """Row-wise ``log(sum_k exp(Z[:, k]))`` without overflow: shape (m, K) -> (m,)."""
    top = Z.max(axis=1)
    shifted = np.exp(Z - top[:, None])
    return np.log(shifted.sum(axis=1)) + top


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise class probabilities ``exp(z_k) / sum_j exp(z_j)``, shape (m, K); never overflows."""
    P = Z - Z.max(axis=1, keepdims=True)
    np.exp(P, out=P)
    P /= P.sum(axis=1, keepdims=True)
    return P


def logits(X, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Z = X W^T + b``, shape (m, K), for dense or sparse ``X`` of shape (m, d)."""
    Z = np.asarray(X @ W.T)
    Z += b
    return Z


def loss_terms(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy ``logsumexp(z_i) - z_i[y_i]``, shape (m,).

    Parameters
    ----------
    Z : ndarray, shape (m, K)
        Logits.
    y : ndarray, shape (m,)
        Class indices 0..K-1 (any numeric dtype holding whole numbers).
    """
    yi = np.asarray(y).astype(np.intp, copy=False)
    return log_sum_exp(Z) - Z[np.arange(Z.shape[0]), yi]


def forward(X, y: np.ndarray, W: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Forward pass: fill ``out[K*d:]`` (intercept gradient, loss sum, count); return ``R``.

    ``R = P - onehot(y)``, shape (m, K); the weight gradient is then ``R^T X`` (K, d),
    computable block by block, which is how bucketed training produces it.
    """
    K, d = W.shape
    Z = logits(X, W, b)
    yi = np.asarray(y).astype(np.intp, copy=False)
    rows = np.arange(Z.shape[0])
    top = Z.max(axis=1, keepdims=True)
    R = Z - top
    np.exp(R, out=R)
    total = R.sum(axis=1, keepdims=True)
    # loss_i = log(sum_k exp(z_ik - top_i)) + top_i - z_i[y_i]
    out[K * d + K] = (np.log(total[:, 0]) + top[:, 0] - Z[rows, yi]).sum()
    R /= total
    R[rows, yi] -= 1.0
    out[K * d : K * d + K] = R.sum(axis=0)
    out[-1] = Z.shape[0]
    return R


def grad_sums(X, y: np.ndarray, W: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (shape ``(K (d + 1) + 2,)``) with the packed sums; layout in the module doc.

    Parameters
    ----------
    X : ndarray or scipy sparse CSR, shape (m, d)
    y : ndarray, shape (m,)
        Class indices 0..K-1.
    W : ndarray, shape (K, d)
    b : ndarray, shape (K,)
    out : ndarray, shape (K (d + 1) + 2,)
        Written in place and returned. ``m = 0`` gives all zeros.
    """
    K, d = W.shape
    R = forward(X, y, W, b, out)
    G = out[: K * d].reshape(K, d)
    if isinstance(X, np.ndarray):
        np.matmul(R.T, X, out=G)
    else:  # scipy sparse: ndarray @ CSR returns a dense (K, d)
        G[...] = R.T @ X
    return out


def objective(X, y: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float) -> float:
    """The full objective ``J(W, b)`` on one process's arrays (serial oracle and tests)."""
    return float(loss_terms(logits(X, W, b), y).mean() + 0.5 * l2 * np.sum(W * W))


def full_gradient(
    X, y: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of ``J`` w.r.t. ``(W, b)`` on one process's arrays: shapes (K, d) and (K,)."""
    K, d = W.shape
    buf = np.empty(buffer_size(d, K), dtype=np.result_type(X.dtype, W))
    grad_sums(X, y, W, b, buf)
    n = X.shape[0]
    return buf[: K * d].reshape(K, d) / n + l2 * W, buf[K * d : K * d + K] / n
