"""Softmax math and the model objects against independent oracles: finite differences,
scikit-learn, the binary math, and dense against sparse rows."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from dist_logreg.train import binary as binary_math
from dist_logreg.train import models
from dist_logreg.train import softmax as sm
from dist_logreg.train.loop import bucket_ranges


@pytest.fixture
def problem():
    """150 rows x 6 features, 4 classes drawn through a softmax model."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((150, 6))
    W = rng.standard_normal((4, 6))
    Z = X @ W.T
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (rng.random(150)[:, None] > P.cumsum(1)).sum(1).astype(float)
    return X, np.minimum(y, 3)


def test_log_sum_exp_and_softmax_are_stable():
    Z = np.array([[1e4, 0.0, -1e4], [-800.0, -800.0, -801.0], [0.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow or log(0) warning fails the test
        lse = sm.log_sum_exp(Z)
        P = sm.softmax(Z)
        loss = sm.loss_terms(Z, np.array([2, 0, 1]))
    np.testing.assert_allclose(lse, [1e4, -800 + np.log(2 + np.exp(-1)), np.log(3)], rtol=1e-15)
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-15)
    assert P[0, 0] == 1.0 and P[0, 2] == 0.0
    # Exact: -log p_y; the first row's class 2 is 2e4 below the top logit.
    np.testing.assert_allclose(loss, [2e4, np.log(2 + np.exp(-1)), np.log(3)], rtol=1e-12)


def test_gradient_matches_finite_differences(problem):
    X, y = problem
    rng = np.random.default_rng(0)
    W, b, l2 = rng.standard_normal((4, 6)) * 0.3, rng.standard_normal(4) * 0.2, 0.05
    gW, gb = sm.full_gradient(X, y, W, b, l2)
    eps = 1e-6
    for k, j in [(0, 0), (1, 3), (3, 5), (2, 1)]:
        E = np.zeros_like(W)
        E[k, j] = eps
        fd = (sm.objective(X, y, W + E, b, l2) - sm.objective(X, y, W - E, b, l2)) / (2 * eps)
        assert gW[k, j] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    for k in range(4):
        e = np.zeros(4)
        e[k] = eps
        fd = (sm.objective(X, y, W, b + e, l2) - sm.objective(X, y, W, b - e, l2)) / (2 * eps)
        assert gb[k] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    assert abs(gb.sum()) < 1e-12  # intercept gradients sum to zero over the classes


def test_grad_sums_layout_sparse_rows_and_empty_slice(problem):
    X, y = problem
    W, b = np.full((4, 6), 0.1), np.array([0.1, -0.2, 0.0, 0.3])
    buf = np.empty(sm.buffer_size(6, 4))
    assert buf.size == 4 * 7 + 2
    sm.grad_sums(X, y, W, b, buf)
    Z = X @ W.T + b
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    R = P - np.eye(4)[y.astype(int)]
    np.testing.assert_allclose(buf[:24].reshape(4, 6), R.T @ X, rtol=1e-12)
    np.testing.assert_allclose(buf[24:28], R.sum(0), atol=1e-12)
    assert buf[-2] == pytest.approx(-np.log(P[np.arange(150), y.astype(int)]).sum(), rel=1e-12)
    assert buf[-1] == 150
    Xs = sp.csr_array(np.where(np.abs(X) > 0.7, X, 0.0))  # same rows, stored sparse
    np.testing.assert_allclose(
        sm.grad_sums(Xs, y, W, b, np.empty(30)),
        sm.grad_sums(Xs.toarray(), y, W, b, np.empty(30)),
        rtol=1e-12,
        atol=1e-12,
    )
    sm.grad_sums(X[:0], y[:0], W, b, buf)  # a rank with no rows contributes zeros
    assert np.all(buf == 0)


def test_float32_stays_float32(problem):
    X, y = (a.astype(np.float32) for a in problem)
    buf = np.empty(30, dtype=np.float32)
    sm.grad_sums(X, y, np.zeros((4, 6), np.float32), np.zeros(4, np.float32), buf)
    assert buf.dtype == np.float32 and np.all(np.isfinite(buf))


def test_objective_matches_scikit_learn():
    """Our softmax optimum is scikit-learn's multinomial one with C = 1 / (l2 n)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    X, y = load_iris(return_X_y=True)
    l2 = 0.01
    clf = LogisticRegression(C=1 / (l2 * len(y)), solver="newton-cholesky", tol=1e-12)
    clf.fit(X, y)
    gW, gb = sm.full_gradient(X, y, clf.coef_, clf.intercept_, l2)
    assert np.max(np.abs(gW)) < 1e-8 and np.max(np.abs(gb)) < 1e-8
    base = sm.objective(X, y, clf.coef_, clf.intercept_, l2)
    expected = log_loss(y, clf.predict_proba(X)) + 0.5 * l2 * np.sum(clf.coef_**2)
    assert base == pytest.approx(expected, rel=1e-12)


def test_binary_model_sparse_equals_dense(small_problem):
    X, y = small_problem
    Xs = sp.csr_array(np.where(np.abs(X) > 0.5, X, 0.0))
    mdl = models.Binary(5)
    params = np.linspace(-1, 1, 6)
    dense = mdl.grad_sums(Xs.toarray(), y, params, np.empty(mdl.buffer_size))
    np.testing.assert_allclose(mdl.grad_sums(Xs, y, params, np.empty(8)), dense, rtol=1e-12)
    # The dense path is the binary math itself.
    ref = binary_math.grad_sums(Xs.toarray(), y, params, np.empty(8))
    np.testing.assert_array_equal(dense, ref)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("make", [lambda: models.Binary(6), lambda: models.Softmax(6, 4)])
def test_bucketed_blocks_assemble_the_whole_gradient(problem, sparse, make):
    """forward + weight_block over the buckets == grad_sums (what bucketed steps rely on)."""
    X, y = problem
    mdl = make()
    y = y if mdl.kind == "softmax" else (y > 1).astype(float)
    X = sp.csr_array(X) if sparse else X
    params = np.random.default_rng(3).standard_normal(mdl.n_params) * 0.3
    whole = mdl.grad_sums(X, y, params, np.empty(mdl.buffer_size))
    buf = np.full(mdl.buffer_size, np.nan)
    state = mdl.forward(X, y, params, buf)
    ranges = bucket_ranges(buf.size, mdl.n_weights, 5)
    assert ranges[-1][1] == buf.size and ranges[0][0] == 0
    for lo, hi in ranges:
        top = min(hi, mdl.n_weights)
        if lo < top:
            mdl.weight_block(X, state, lo, top, buf[lo:top])
    np.testing.assert_allclose(buf, whole, rtol=1e-12, atol=1e-12)


def test_model_arrays_round_trip():
    soft = models.Softmax(3, 4, classes=[0, 1, 2, 3])
    params = np.arange(soft.n_params, dtype=float)
    coef, intercept = soft.unpack(params)
    assert coef.shape == (4, 3) and intercept.shape == (4,)
    again, p2 = models.from_arrays(coef, intercept, soft.classes)
    assert again.kind == "softmax" and np.array_equal(p2, params)
    binary, p3 = models.from_arrays(np.array([1.0, 2.0]), np.asarray(3.0))
    assert binary.kind == "binary" and np.array_equal(p3, [1.0, 2.0, 3.0])
    assert binary.buffer_size == 2 + 3 and soft.buffer_size == 4 * 4 + 2
