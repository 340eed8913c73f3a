"""Model math against independent oracles: finite differences and scikit-learn."""

import warnings

import numpy as np
import pytest

from dist_logreg.train import binary as model


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


def unfused_sums(X, y, params):
    """The math as it was before fusion: whole-batch logits, residuals, then r @ X."""
    d = X.shape[1]
    z = X @ params[:d] + params[d]
    r = 1 / (1 + np.exp(-z)) - y
    return np.concatenate([r @ X, [r.sum(), np.sum(np.logaddexp(0, z) - y * z), len(y)]])


@pytest.mark.parametrize("block_rows", [1, 2, 7, 64, None])
@pytest.mark.parametrize("kind", ["all", "slice", "sorted", "unsorted", "empty"])
def test_fused_sums_equal_the_unfused_math(block_rows, kind):
    """Same sums up to summation order, whatever the block size and row selection."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 11))
    y = (rng.random(300) < 0.4).astype(np.float64)
    params = rng.standard_normal(12) * 0.5
    rows = {
        "all": None,
        "slice": slice(37, 251),
        "sorted": np.sort(rng.choice(300, 123, replace=False)),
        "unsorted": rng.choice(300, 123, replace=False),
        "empty": np.array([], dtype=np.int64),
    }[kind]
    m = model.count_rows(rows, 300)
    work = model.Workspace(11, m, np.float64, block_rows)
    out = model.grad_sums(X, y, params, np.full(14, np.nan), rows, work)
    selected = slice(None) if rows is None else rows
    expected = unfused_sums(X[selected], y[selected], params)
    scale = np.abs(expected).max() if m else 1.0
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12 * scale)
    assert out[-1] == m


@pytest.mark.parametrize("file_dtype, run_dtype", [("float32", "float64"), ("float64", "float32")])
@pytest.mark.parametrize("rows", [slice(5, 60), np.arange(3, 90, 4)])
def test_fused_sums_cast_rows_of_another_dtype(tmp_path, file_dtype, run_dtype, rows):
    """A memory map of another dtype is cast block by block into the run's dtype."""
    rng = np.random.default_rng(3)
    np.save(tmp_path / "X.npy", rng.standard_normal((100, 6)).astype(file_dtype))
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    y = (rng.random(100) < 0.5).astype(run_dtype)
    params = (rng.standard_normal(7) * 0.3).astype(run_dtype)
    out = model.grad_sums(X, y, params, np.empty(9, run_dtype), rows, None)
    assert out.dtype == np.dtype(run_dtype)
    expected = unfused_sums(np.asarray(X[rows], run_dtype), y[rows], params)
    tol = 1e-4 if run_dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol * np.abs(expected).max())


def test_float32_stays_float32():
    """No silent upcast: every scratch array and the result stay float32, and the result
    is the float32 computation (it differs from the float64 one by float32 rounding)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 33)).astype(np.float32)
    y = (rng.random(500) < 0.5).astype(np.float32)
    params = (rng.standard_normal(34) * 0.2).astype(np.float32)
    work = model.Workspace(33, 200, np.float32, block_rows=16)
    out = np.empty(model.buffer_size(33), np.float32)
    model.grad_sums(X, y, params, out, np.arange(0, 400, 2), work)
    assert out.dtype == np.float32
    assert {a.dtype for a in work.arrays().values()} == {np.dtype(np.float32)}
    exact = unfused_sums(X[0:400:2].astype(np.float64), y[0:400:2], params.astype(np.float64))
    err = np.abs(out - exact).max() / np.abs(exact).max()
    assert 1e-9 < err < 1e-5  # float32 rounding, not float64 (~1e-16) nor garbage


def test_block_size_follows_the_cache():
    work = model.Workspace(512, 4096, np.float64)
    assert work.block_rows * 512 * 8 <= max(model.cache_block_bytes(), 2 * 512 * 8)
    assert model.Workspace(10**6, 8, np.float64).block_rows == 2  # wide rows: at least 2
    assert model.Workspace(4, 3, np.float64).block.shape == (3, 4)  # never more than needed
