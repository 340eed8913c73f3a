"""The scikit-learn estimator: scikit-learn's own checks, its optimum, Pipeline, GridSearchCV."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from dist_logreg import DistLogisticRegression
from tests.helpers import ROOT

#: Checks that may skip for a reason of the environment (an optional package), never fail.
ALLOWED_SKIPS = {"check_array_api_input", "check_classifier_data_not_an_array"}


def test_importing_the_package_loads_neither_numpy_nor_mpi():
    code = (
        "import sys, dist_logreg; "
        "print('numpy' in sys.modules, 'mpi4py' in sys.modules, 'sklearn' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False", "False"]


def test_scikit_learn_check_estimator_passes_every_check():
    results = check_estimator(DistLogisticRegression(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed, failed
    skipped = {r["check_name"] for r in results if r["status"] != "passed"}
    assert skipped <= ALLOWED_SKIPS, skipped - ALLOWED_SKIPS
    assert len(results) > 40  # the checks really ran


@pytest.mark.parametrize("loader, C", [(load_iris, 0.3), (load_breast_cancer, 0.05)])
def test_reaches_scikit_learns_optimum(loader, C):
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    ref = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12).fit(X, y)
    ours = DistLogisticRegression(C=C, tol=1e-10, max_iter=1000).fit(X, y)
    assert ours.coef_.shape == ref.coef_.shape and ours.intercept_.shape == ref.intercept_.shape
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-7)
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-5)
    assert np.array_equal(ours.predict(X), ref.predict(X))
    assert ours.l2_ == pytest.approx(1 / (C * len(y)))
    assert ours.n_iter_.shape == (1,) and ours.n_allreduce_ >= ours.n_iter_[0]


def test_l2_is_the_trainers_penalty_and_gd_reaches_the_optimum():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    ref = LogisticRegression(C=1 / (0.01 * len(y)), solver="newton-cholesky", tol=1e-12)
    ref.fit(X, y)
    a = DistLogisticRegression(l2=0.01, tol=1e-10, max_iter=1000).fit(X, y)
    b = DistLogisticRegression(C=1 / (0.01 * len(y)), tol=1e-10, max_iter=1000).fit(X, y)
    c = DistLogisticRegression(
        l2=0.01, solver="gd", learning_rate=1.0, momentum=0.9, tol=1e-10, max_iter=2000
    ).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-12)  # C and l2 say the same
    # L-BFGS stops on the relative change of the objective (as scikit-learn's), which
    # leaves the parameters about 1e-6 off; gd stops on the gradient itself.
    np.testing.assert_allclose(a.coef_, ref.coef_, atol=2e-6)
    np.testing.assert_allclose(c.coef_, ref.coef_, atol=1e-8)
    np.testing.assert_allclose(c.intercept_, ref.intercept_, atol=1e-8)
    assert c.n_iter_[0] < 2000  # gd stopped on the gradient tolerance


def test_string_labels_sparse_rows_and_no_intercept():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    names = np.array(["benign", "malignant"])[1 - y]
    dense = DistLogisticRegression(C=0.1, tol=1e-10, fit_intercept=False).fit(X, names)
    assert list(dense.classes_) == ["benign", "malignant"] and dense.intercept_ == [0.0]
    sparse = DistLogisticRegression(C=0.1, tol=1e-10, fit_intercept=False)
    sparse.fit(sp.csr_array(X), names)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-8)
    assert set(dense.predict(X)) <= set(names)


def test_in_a_pipeline_and_grid_search():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), DistLogisticRegression(max_iter=300))
    grid = GridSearchCV(pipe, {"distlogisticregression__C": [0.01, 1.0, 100.0]}, cv=3)
    grid.fit(X, y)
    assert grid.best_params_["distlogisticregression__C"] in (1.0, 100.0)  # 0.01 underfits
    assert grid.best_score_ > 0.9 and grid.score(X, y) > 0.9
    ref = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
        {"logisticregression__C": [0.01, 1.0, 100.0]},
        cv=3,
    ).fit(X, y)
    np.testing.assert_allclose(
        grid.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"], atol=0.02
    )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"C": 0}, "C: expected a number > 0"),
        ({"l2": -1.0}, "l2: expected a number >= 0"),
        ({"solver": "saga"}, "solver: expected one of"),
        ({"max_iter": 0}, "max_iter: expected an integer >= 1"),
    ],
)
def test_bad_parameters_say_what_was_expected(params, message):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=message):
        DistLogisticRegression(**params).fit(X, y)
