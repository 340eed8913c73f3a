"""The model objects the training loop, the evaluation, predict and the estimator use.

A model owns a flat parameter vector and the packed gradient buffer of one step. The
contract (both classes below implement it, for dense ndarray or scipy sparse CSR ``X``)::

    kind          "binary" or "softmax"
    n_features    d
    n_classes     2 for binary, K for softmax
    classes       the original label value of each class index (written to model.npz)
    n_params      length of the flat parameter vector: d + 1, or K (d + 1)
    n_weights     params[:n_weights] are the L2-penalized weights, the rest intercepts
    buffer_size   n_params + 2: [gradient sums (n_params), loss sum, row count]
    workspace(max_rows, dtype)                 scratch for grad_sums, allocated once a run
    grad_sums(X, y, params, out, rows, work)   the packed sums over the selected rows of
                                               ``X`` (rows: None, a slice or an index
                                               array), each row read once (buf[-2] loss,
                                               buf[-1] count); the loop divides by the
                                               GLOBAL count after the one allreduce
    forward(X, y, params, out) -> state        fills out[n_weights:] (bucketed steps)
    weight_block(X, state, lo, hi, out)        out[:] = weight-gradient elements [lo, hi)
    scores(X, params) -> (m,) or (m, K)        decision function (logits)
    proba(X, params) -> (m, n_classes)         class probabilities
    loss_terms(scores, y) -> (m,)              per-row log-loss, y as class indices
    predict_index(scores) -> (m,)              predicted class index
    unpack(params) -> (coef, intercept)        model.npz arrays: (d,), () or (K, d), (K,)

Binary parameters are ``[w (d), b]``; softmax parameters ``[W (K, d) row-major, b (K)]``:
in both, weights first and intercepts last, so the loop's L2 term and update read the same.
"""

from __future__ import annotations

import numpy as np

from dist_logreg.train import binary as binary_math
from dist_logreg.train import softmax as softmax_math

#: The two slots after the parameter gradients: loss sum, row count.
TAIL = 2


def _dense(X) -> bool:
    return isinstance(X, np.ndarray)


def row_labels(y: np.ndarray, rows, out: np.ndarray) -> np.ndarray:
    """The selected rows' labels, in ``out`` (the run's dtype)."""
    return binary_math.row_labels(y, slice(None) if rows is None else rows, out)


def whole_batch(X, rows, xbuf, dtype):
    """The selected rows as one array: a view, gathered into ``xbuf``, or CSR rows."""
    if not _dense(X):  # scipy sparse: select, in the run's dtype
        return (X if rows is None else X[rows]).astype(dtype, copy=False)
    n = X.shape[0]
    rows = slice(0, n) if rows is None else rows
    return binary_math.row_block(X, rows, 0, binary_math.count_rows(rows, n), xbuf)


def _selected(X, y, rows, dtype):
    """Rows and labels of a selection, for the math that takes whole arrays (softmax, CSR)."""
    if rows is None:
        Xs, ys = X, y
    else:
        Xs, ys = X[rows], y[rows]
    if _dense(Xs):
        return np.asarray(Xs, dtype=dtype), np.asarray(ys, dtype=dtype)
    return Xs.astype(dtype, copy=False), np.asarray(ys, dtype=dtype)


class Binary:
    """Binary logistic regression (:mod:`dist_logreg.train.binary`), labels 0/1."""

    kind = "binary"

    def __init__(self, n_features: int, classes=(0, 1)):
        self.n_features = d = int(n_features)
        self.n_classes = 2
        self.classes = np.asarray(classes)
        self.n_params = d + 1
        self.n_weights = d
        self.buffer_size = self.n_params + TAIL

    def workspace(self, max_rows: int, dtype):
        return binary_math.Workspace(self.n_features, max_rows, dtype)

    def grad_sums(self, X, y, params, out, rows=None, work=None):
        if _dense(X):  # the read-once fused pass (train/binary.py)
            return binary_math.grad_sums(X, y, params, out, rows, work)
        Xs, ys = _selected(X, y, rows, out.dtype)
        r = binary_math.residuals(Xs, ys, params, out)
        out[: self.n_weights] = r @ Xs  # scipy sparse: a dense (d,) vector
        return out

    def forward(self, X, y, params, out):
        return binary_math.residuals(X, y, params, out)

    def weight_block(self, X, r, lo, hi, out) -> None:
        if _dense(X):
            np.matmul(r, X[:, lo:hi], out=out)
        else:
            out[:] = r @ X[:, lo:hi]

    def scores(self, X, params):
        z = np.asarray(X @ params[:-1])
        z += params[-1]
        return z

    def proba(self, X, params):
        p = binary_math.sigmoid(self.scores(X, params))
        return np.stack([1.0 - p, p], axis=1)

    @staticmethod
    def loss_terms(z, y):
        return binary_math.loss_terms(z, y)

    @staticmethod
    def predict_index(z):
        return (z > 0).astype(np.intp)

    def unpack(self, params):
        return params[:-1], np.asarray(params[-1])


class Softmax:
    """Multinomial logistic regression (:mod:`dist_logreg.train.softmax`), labels 0..K-1."""

    kind = "softmax"

    def __init__(self, n_features: int, n_classes: int, classes=None):
        self.n_features = d = int(n_features)
        self.n_classes = K = int(n_classes)
        self.classes = np.arange(K) if classes is None else np.asarray(classes)
        self.n_params = K * (d + 1)
        self.n_weights = K * d
        self.buffer_size = softmax_math.buffer_size(d, K)

    def _split(self, params):
        K, d = self.n_classes, self.n_features
        return params[: K * d].reshape(K, d), params[K * d :]

    def workspace(self, max_rows: int, dtype):
        return None  # the softmax math gathers the selected rows whole

    def grad_sums(self, X, y, params, out, rows=None, work=None):
        Xs, ys = _selected(X, y, rows, out.dtype)
        return softmax_math.grad_sums(Xs, ys, *self._split(params), out)

    def forward(self, X, y, params, out):
        return softmax_math.forward(X, y, *self._split(params), out)

    def weight_block(self, X, R, lo, hi, out) -> None:
        """Flat elements ``[lo, hi)`` of the row-major (K, d) weight gradient ``R^T X``."""
        d = self.n_features
        for k in range(lo // d, (hi - 1) // d + 1):
            a, b = max(lo, k * d), min(hi, (k + 1) * d)
            out[a - lo : b - lo] = R[:, k] @ X[:, a - k * d : b - k * d]

    def scores(self, X, params):
        return softmax_math.logits(X, *self._split(params))

    def proba(self, X, params):
        return softmax_math.softmax(self.scores(X, params))

    @staticmethod
    def loss_terms(Z, y):
        return softmax_math.loss_terms(Z, y)

    @staticmethod
    def predict_index(Z):
        return np.argmax(Z, axis=1)

    def unpack(self, params):
        W, b = self._split(params)
        return W, b


def make(n_features: int, n_classes: int, softmax: bool, classes=None):
    """The model for ``n_classes`` labels: binary unless ``softmax`` (then K = n_classes)."""
    if softmax:
        return Softmax(n_features, n_classes, classes)
    return Binary(n_features, (0, 1) if classes is None else classes)


def from_arrays(coef: np.ndarray, intercept: np.ndarray, classes=None):
    """A model and its flat parameters from ``model.npz``'s arrays (see ``unpack``)."""
    coef = np.asarray(coef)
    if coef.ndim == 1:
        mdl = Binary(coef.shape[0], (0, 1) if classes is None else classes)
        return mdl, np.append(coef, np.reshape(intercept, -1)[:1])
    mdl = Softmax(coef.shape[1], coef.shape[0], classes)
    return mdl, np.concatenate([coef.ravel(), np.reshape(intercept, -1)])
