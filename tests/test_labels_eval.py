"""Label schemes (binary, -1/+1, K classes), held-out evaluation and the split."""

import numpy as np
import pytest
from mpi4py import MPI

from dist_logreg.errors import UsageError
from dist_logreg.train import labels, models
from dist_logreg.train.data import Dataset
from dist_logreg.train.evaluate import evaluate, roc_auc, split_holdout


def test_binary_and_minus_one_plus_one():
    info, y = labels.resolve(np.array([0.0, 1, 1, 0]), 0, "d")
    assert (info.n_classes, info.softmax, info.note) == (2, False, None)
    y_in = np.array([-1.0, 1, 1, -1])
    y_in.setflags(write=False)  # a read-only memory map must work too
    info, y = labels.resolve(y_in, 0, "d")
    assert info.classes == (-1, 1) and "mapped to 0/1" in info.note
    assert y.tolist() == [0, 1, 1, 0] and y_in.tolist() == [-1, 1, 1, -1]
    assert labels.apply(np.array([1.0, -1]), info, "v").tolist() == [1, 0]


def test_k_classes_inferred_or_given():
    info, _ = labels.resolve(np.array([0.0, 2, 1, 2, 3]), 0, "d")
    assert (info.n_classes, info.softmax, info.classes) == (4, True, (0, 1, 2, 3))
    info, _ = labels.resolve(np.array([0.0, 1, 1]), 5, "d")  # --classes 5: absent classes ok
    assert (info.n_classes, info.softmax) == (5, True)
    info, _ = labels.resolve(np.array([0.0, 1, 1]), 2, "d")  # --classes 2: two-class softmax
    assert (info.n_classes, info.softmax) == (2, True)


@pytest.mark.parametrize(
    "y, requested, message",
    [
        ([0, 1, 0.5], 0, r"expected whole-number class labels, got y\[2\] = 0.5"),
        ([0, 1, np.nan], 0, r"expected whole-number class labels, got y\[2\] = nan"),
        ([-1, 1, 0], 0, r"expected labels -1 or \+1 \(y\[0\] is -1\), got y\[2\] = 0.0"),
        ([0, -2, 1], 0, r"expected labels 0..K-1 or -1/\+1, got y\[1\] = -2.0"),
        ([0, 1, 3], 0, r"got no row of class 2 \(labels seen: 0, 1, 3\)"),
        ([0, 1, 3], 3, r"expected labels 0..2 \(--classes 3\), got y\[2\] = 3.0"),
        ([0, -1, 1], 3, r"expected labels 0..2 \(--classes 3\), got y\[1\] = -1.0"),
    ],
)
def test_bad_labels_name_the_row(y, requested, message):
    with pytest.raises(UsageError, match=message):
        labels.resolve(np.array(y, dtype=float), requested, "d")


def test_held_out_labels_must_be_training_classes():
    info, _ = labels.resolve(np.array([0.0, 1, 2]), 0, "d")
    with pytest.raises(UsageError, match=r"training classes \(0..2\), got y\[1\] = 5.0"):
        labels.apply(np.array([0.0, 5]), info, "--val-data v")


def test_roc_auc_matches_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    scores = np.round(rng.standard_normal(500) + y, 1)  # rounded: many ties
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), rel=1e-12)
    assert roc_auc(np.ones(3, bool), np.arange(3.0)) is None  # one class: undefined


@pytest.mark.parametrize("kind", ["binary", "softmax"])
def test_evaluate_on_one_rank_equals_direct_computation(small_problem, kind):
    from sklearn.metrics import log_loss, roc_auc_score

    X, y = small_problem
    if kind == "softmax":
        y = (X[:, 0] > 0.5) + (X[:, 1] > 0).astype(float)
    mdl = models.make(5, 3 if kind == "softmax" else 2, kind == "softmax")
    params = np.random.default_rng(1).standard_normal(mdl.n_params) * 0.5
    got = evaluate(MPI.COMM_SELF, mdl, Dataset(X, y, "t"), params, 0.1, auc=True)
    proba = mdl.proba(X, params)
    w = params[: mdl.n_weights]
    assert got["loss"] == pytest.approx(log_loss(y, proba) + 0.05 * w @ w, rel=1e-12)
    assert got["accuracy"] == pytest.approx(np.mean(proba.argmax(1) == y), abs=1e-15)
    if kind == "binary":
        assert got["auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]), rel=1e-12)
    else:
        assert got["auc"] is None


def test_split_is_deterministic_disjoint_and_complete(small_problem):
    X, y = small_problem
    ds = Dataset(X, y, "t", checked=True)
    train, val = split_holdout(ds, 0.25, seed=3)
    again, _ = split_holdout(ds, 0.25, seed=3)
    other, _ = split_holdout(ds, 0.25, seed=4)
    assert (train.n_samples, val.n_samples) == (180, 60)
    assert np.array_equal(train.X, again.X) and not np.array_equal(train.X, other.X)
    rows = {tuple(r) for r in X}
    assert {tuple(r) for r in train.X} | {tuple(r) for r in val.X} == rows
    assert not {tuple(r) for r in train.X} & {tuple(r) for r in val.X}
    with pytest.raises(UsageError, match=r"--val-fraction 0.001: expected a fraction"):
        split_holdout(ds, 0.001, seed=3)
