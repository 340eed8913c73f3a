"""``DistLogisticRegression``: a scikit-learn estimator on the same math and the same allreduce.

Needs scikit-learn (``pip install 'dist-logreg[sparse]'``). Each rank passes the rows it
holds; every evaluation of the objective packs the gradient sums, the loss sum and the row
count into one buffer (``K (d + 1) + 2`` elements, as in ``dist-logreg train``) and
reduces it with one in-place ``Allreduce``. All ranks then hold the same numbers, so the
optimizer (L-BFGS by default, as scikit-learn's) takes the same steps everywhere; a CRC of
the parameters is compared across ranks at the end. With ``comm=None`` it runs on
``COMM_SELF``: a plain single-process estimator.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError:  # pragma: no cover - depends on the installation
    raise ImportError(
        "DistLogisticRegression needs scikit-learn >= 1.6: pip install 'dist-logreg[sparse]'"
    ) from None

from dist_logreg.errors import raise_together
from dist_logreg.train import models

SOLVERS = ("lbfgs", "gd")


class DistLogisticRegression(ClassifierMixin, BaseEstimator):
    """L2-penalized logistic regression (binary or multinomial), data-parallel over MPI.

    Objective: mean log-loss over all ranks' rows + ``(l2 / 2) ||W||^2``, intercepts not
    penalized; ``l2 = 1 / (C n)`` with ``n`` the total row count, so a given ``C`` means
    what it means in scikit-learn's ``LogisticRegression`` (same optimum). Two classes
    train a binary model (``coef_`` of shape (1, d)), more a softmax one ((K, d)).

    Parameters
    ----------
    C : float or None, default=None
        Inverse regularization strength, as in ``LogisticRegression`` (None: 1.0, unless
        ``l2`` is given).
    l2 : float or None, default=None
        The penalty of ``dist-logreg train --l2``. Give ``C`` or ``l2``, not both: both is
        a ``ValueError`` (neither silently wins).
    fit_intercept : bool, default=True
    tol : float, default=1e-4
        Stop when the largest gradient component is at most ``tol`` (L-BFGS: ``gtol``).
    max_iter : int, default=100
        Optimizer iterations at most (one allreduce each for ``gd``; L-BFGS may evaluate
        the objective, with one allreduce each, a few more times).
    solver : {"lbfgs", "gd"}, default="lbfgs"
        ``gd``: full-batch gradient descent with ``learning_rate`` and ``momentum``, the
        trainer's update rule.
    learning_rate, momentum : float, default=0.5, 0.0
        For ``solver="gd"`` only.
    comm : mpi4py communicator or None, default=None
        None: a single process. A communicator: every rank calls ``fit`` with its own rows
        (collective), and ``score`` adds up over all ranks (collective); ``predict``,
        ``predict_proba`` and ``decision_function`` stay local to the rows passed.
    """

    def __init__(
        self,
        C=None,
        *,
        l2=None,
        fit_intercept=True,
        tol=1e-4,
        max_iter=100,
        solver="lbfgs",
        learning_rate=0.5,
        momentum=0.0,
        comm=None,
    ):
        self.C = C
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.solver = solver
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.comm = comm

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _comm(self):
        if self.comm is not None:
            return self.comm
        from mpi4py import MPI

        return MPI.COMM_SELF

    def _check_params(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"solver: expected one of {SOLVERS}, got {self.solver!r}")
        if self.l2 is not None and self.C is not None:
            raise ValueError(
                f"give C or l2, not both: got C={self.C!r} and l2={self.l2!r} (l2 = 1 / (C n))"
            )
        if self.C is not None and not (isinstance(self.C, numbers.Real) and self.C > 0):
            raise ValueError(f"C: expected a number > 0, got {self.C!r}")
        if self.l2 is not None and not self.l2 >= 0:
            raise ValueError(f"l2: expected a number >= 0, got {self.l2!r}")
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter: expected an integer >= 1, got {self.max_iter!r}")

    def fit(self, X, y):
        """Collective with a communicator: fit on every rank's rows. Returns ``self``."""
        comm = self._comm()
        error = None
        try:  # any rank's bad rows (NaN, none, ...) stop every rank, or the others would hang
            self._check_params()
            X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64)
            check_classification_targets(y)
        except (ValueError, TypeError) as exc:
            error = exc
        raise_together(comm, error, others=ValueError)
        self.classes_ = _all_classes(comm, y, X.shape[1])
        if self.classes_.size < 2:
            raise ValueError(
                "DistLogisticRegression needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {self.classes_[0]!r}"
            )
        k = self.classes_.size
        mdl = models.make(X.shape[1], k, k > 2, self.classes_)
        y_idx = np.searchsorted(self.classes_, y).astype(np.float64)
        n = comm.allreduce(X.shape[0])
        l2 = self.l2 if self.l2 is not None else 1.0 / ((self.C or 1.0) * n)
        objective = _Objective(comm, mdl, X, y_idx, l2, self.fit_intercept)
        x0 = np.zeros(mdl.n_params)
        if self.solver == "lbfgs":
            params, n_iter, converged = _lbfgs(objective, x0, self.max_iter, self.tol)
        else:
            params, n_iter, converged = _gd(
                objective, x0, self.max_iter, self.tol, self.learning_rate, self.momentum
            )
        if comm.Get_size() > 1:
            from dist_logreg.train.loop import check_replicas

            check_replicas(comm, params, n_iter)
        if not converged:
            warnings.warn(
                f"{self.solver} did not converge in max_iter={self.max_iter} iterations "
                f"(largest gradient component > tol={self.tol}); increase max_iter",
                ConvergenceWarning,
                stacklevel=2,
            )
        coef, intercept = mdl.unpack(params)
        self.coef_ = np.atleast_2d(coef).copy()
        self.intercept_ = np.atleast_1d(intercept).copy()
        self.n_iter_ = np.array([n_iter])
        self.l2_ = l2
        self.n_allreduce_ = objective.calls  # gradient allreduces of this fit
        return self

    def _model(self):
        check_is_fitted(self)
        coef = self.coef_[0] if self.classes_.size == 2 else self.coef_
        return models.from_arrays(coef, self.intercept_, self.classes_)

    def decision_function(self, X):
        """Logits: shape (n,) for two classes (positive: ``classes_[1]``), else (n, K)."""
        mdl, params = self._model()
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        return mdl.scores(X, params)

    def predict_proba(self, X):
        """Class probabilities, shape (n, K), columns in the order of ``classes_``."""
        mdl, params = self._model()
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        return mdl.proba(X, params)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        mdl, _ = self._model()
        return self.classes_[mdl.predict_index(self.decision_function(X))]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy; with a communicator, over all ranks' rows (collective)."""
        hit = (self.predict(X) == np.asarray(y)).astype(np.float64)
        w = np.ones_like(hit) if sample_weight is None else np.asarray(sample_weight, float)
        sums = np.array([np.dot(w, hit), w.sum()])
        if self.comm is not None:
            sums = self.comm.allreduce(sums)
        return float(sums[0] / sums[1])


def _all_classes(comm, y: np.ndarray, d: int) -> np.ndarray:
    """Collective: the sorted union of every rank's labels; the feature count must agree."""
    mine = np.unique(y)
    if comm.Get_size() == 1:
        return mine
    seen = comm.allgather((mine, d))
    widths = {w for _, w in seen}
    if len(widths) > 1:
        raise ValueError(
            "ranks passed X with different numbers of features: "
            + ", ".join(f"rank {r}: {w}" for r, (_, w) in enumerate(seen))
        )
    return np.unique(np.concatenate([c for c, _ in seen]))


class _Objective:
    """``J(params)`` and its gradient over all ranks' rows: one packed allreduce per call."""

    def __init__(self, comm, mdl, X, y, l2: float, fit_intercept: bool):
        self.comm, self.mdl, self.X, self.y = comm, mdl, X, y
        self.l2, self.fit_intercept = l2, fit_intercept
        self.buf = np.empty(mdl.buffer_size)
        self.calls = 0

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        from mpi4py import MPI

        buf, nw = self.buf, self.mdl.n_weights
        self.mdl.grad_sums(self.X, self.y, params, buf)
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        self.calls += 1
        count = buf[-1]
        w = params[:nw]
        grad = buf[: self.mdl.n_params] / count
        grad[:nw] += self.l2 * w
        if not self.fit_intercept:
            grad[nw:] = 0.0
        return float(buf[-2] / count + 0.5 * self.l2 * np.dot(w, w)), grad


def _lbfgs(objective, x0, max_iter: int, tol: float):
    from scipy.optimize import minimize

    res = minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        # scikit-learn's settings for its lbfgs solver
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    return res.x, int(res.nit), bool(res.success)


def _gd(objective, x0, max_iter: int, tol: float, lr: float, momentum: float):
    params, velocity = x0.copy(), np.zeros_like(x0)
    for it in range(max_iter):
        _, grad = objective(params)
        if np.max(np.abs(grad)) <= tol:
            return params, it, True
        velocity = momentum * velocity + grad
        params -= lr * velocity
    _, grad = objective(params)
    return params, max_iter, bool(np.max(np.abs(grad)) <= tol)
