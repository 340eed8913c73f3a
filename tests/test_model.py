"""Model math against independent oracles: finite differences and scikit-learn."""

import warnings

import numpy as np
import pytest

from dist_logreg.train import model


def test_sigmoid_is_stable_and_correct():
    z = np.array([-1e4, -745.0, -30.0, -1.0, 0.0, 1.0, 30.0, 745.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow warning fails the test
        s = model.sigmoid(z)
    ref = np.array([1 / (1 + np.exp(-v)) if v > -700 else 0.0 for v in z])
    np.testing.assert_allclose(s, ref, rtol=0, atol=1e-15)
    assert s[0] == 0.0 and s[-1] == 1.0
    assert model.sigmoid(np.array([0.5], dtype=np.float32)).dtype == np.float32


def test_loss_terms_stable_for_large_logits():
    z = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    y = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = model.loss_terms(z, y)
    # Exact values: -log(sigmoid(z)) for y=1, -log(1-sigmoid(z)) for y=0.
    np.testing.assert_allclose(loss, [1e4, 50.0, np.log(2), 50.0, 1e4], rtol=1e-12)
    assert np.all(np.isfinite(loss))


def test_gradient_matches_finite_differences(small_problem):
    X, y = small_problem
    rng = np.random.default_rng(0)
    w, b, l2 = rng.standard_normal(5) * 0.3, 0.2, 0.05
    gw, gb = model.full_gradient(X, y, w, b, l2)
    eps = 1e-6
    for j in range(5):
        e = np.zeros(5)
        e[j] = eps
        fd = (model.objective(X, y, w + e, b, l2) - model.objective(X, y, w - e, b, l2)) / (2 * eps)
        assert gw[j] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    up, down = model.objective(X, y, w, b + eps, l2), model.objective(X, y, w, b - eps, l2)
    fd_b = (up - down) / (2 * eps)
    assert gb == pytest.approx(fd_b, rel=1e-6, abs=1e-9)


def test_grad_sums_layout_and_empty_slice(small_problem):
    X, y = small_problem
    w, b = np.full(5, 0.1), -0.1
    buf = np.empty(model.buffer_size(5))
    model.grad_sums(X, y, np.append(w, b), buf)
    z = X @ w + b
    r = 1 / (1 + np.exp(-z)) - y
    np.testing.assert_allclose(buf[:5], X.T @ r, rtol=1e-12)
    assert buf[5] == pytest.approx(r.sum(), rel=1e-12)
    assert buf[6] == pytest.approx(np.sum(np.log1p(np.exp(z)) - y * z), rel=1e-12)
    assert buf[7] == 240
    model.grad_sums(X[:0], y[:0], np.append(w, b), buf)  # a rank with no rows: zeros
    assert np.all(buf == 0)


def test_sums_over_split_equal_sum_over_whole(small_problem):
    """Invariant 1: sums over uneven slices, added, then divided by the total count."""
    X, y = small_problem
    params = np.append(np.linspace(-1, 1, 5), 0.3)
    whole = model.grad_sums(X, y, params, np.empty(8))
    parts = sum(
        model.grad_sums(X[lo:hi], y[lo:hi], params, np.empty(8))
        for lo, hi in [(0, 81), (81, 161), (161, 240)]
    )
    np.testing.assert_allclose(parts, whole, rtol=1e-12)


def test_objective_matches_scikit_learn(small_problem):
    """Invariant 4: our optimum is scikit-learn's with C = 1 / (l2 * n), intercept free."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y = small_problem
    l2 = 0.01
    clf = sklearn.LogisticRegression(C=1 / (l2 * len(y)), tol=1e-12, max_iter=10_000)
    clf.fit(X, y)
    w, b = clf.coef_[0], float(clf.intercept_[0])
    gw, gb = model.full_gradient(X, y, w, b, l2)
    # scikit-learn's optimum is a stationary point of OUR objective ...
    assert np.max(np.abs(gw)) < 1e-6 and abs(gb) < 1e-6
    # ... and moving away from it only increases our objective.
    base = model.objective(X, y, w, b, l2)
    rng = np.random.default_rng(1)
    for _ in range(5):
        assert model.objective(X, y, w + 1e-3 * rng.standard_normal(5), b, l2) > base
    # The mean log-loss part equals scikit-learn's log_loss.
    metrics = pytest.importorskip("sklearn.metrics")
    expected = metrics.log_loss(y, clf.predict_proba(X)[:, 1]) + 0.5 * l2 * w @ w
    assert base == pytest.approx(expected, rel=1e-9)
