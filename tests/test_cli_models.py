"""End-to-end: softmax on LIBSVM files, held-out evaluation and ``dist-logreg predict``, under
mpirun at 1, 2 and 3 ranks."""

import json
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_svmlight_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from tests.helpers import BIN, WORLD_SIZES, mpi_env, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e]

D, K = 30, 4
COMMON = ["--batch-size", "61", "--steps", "30", "--lr", "0.5", "--momentum", "0.5"]


def libsvm(path, n, seed, classes=K, labels=None):
    """Sparse rows (10% non-zero) with labels drawn through a softmax model; a LIBSVM file."""
    rng = np.random.default_rng(seed)
    X = sp.random_array((n, D), density=0.1, rng=rng, format="csr") * 3.0
    Z = X @ np.random.default_rng(0).standard_normal((D, classes))
    y = np.argmax(Z + rng.gumbel(size=Z.shape), axis=1)
    y = y if labels is None else np.asarray(labels)[y]
    dump_svmlight_file(X, y, str(path), zero_based=False)
    return path


@pytest.fixture(scope="module")
def softmax_runs(tmp_path_factory):
    """A K-class LIBSVM file trained at every world size, 20% held out: {n: (result, out)}."""
    tmp = tmp_path_factory.mktemp("softmax")
    data = libsvm(tmp / "train.svm", 500, seed=1)
    runs = {}
    for n in WORLD_SIZES:
        out = tmp / f"run{n}"
        args = ["--data", str(data), *COMMON, "--val-fraction", "0.2", "--eval-every", "10"]
        runs[n] = (run_mpi(n, train_cmd(*args, "--out", str(out)), timeout=90), out)
    return runs


@pytest.mark.parametrize("n", WORLD_SIZES)
def test_softmax_run_writes_its_model_and_payload(softmax_runs, n):
    result, out = softmax_runs[n]
    assert result.returncode == 0, result.stderr
    m = np.load(out / "model.npz", allow_pickle=False)
    assert m["coef"].shape == (K, D) and m["intercept"].shape == (K,)
    assert m["classes"].tolist() == list(range(K))
    s = json.loads((out / "summary.json").read_text())
    elements = K * (D + 1) + 2  # one allreduce per step of K (d + 1) + 2 numbers
    assert s["allreduce"]["bytes_per_call"] == elements * 8 and s["allreduce"]["calls"] == 30
    assert s["model"]["kind"] == "softmax" and s["model"]["buffer_elements"] == elements
    assert s["data"]["samples"] == 400  # 100 of the 500 rows held out
    v = s["validation"]
    assert [e["step"] for e in v["history"]] == [10, 20, 30] and v["auc"] is None
    assert 0.25 < v["accuracy"] <= 1 and v["loss"] == v["history"][-1]["loss"]
    evals = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert evals == v["history"]
    assert f"model: softmax, {K} classes x {D} features" in result.stdout
    assert result.stdout.count("held-out loss") == 4  # 3 progress lines and the summary


def test_softmax_world_size_invariance_end_to_end(softmax_runs):
    ref = np.load(softmax_runs[1][1] / "model.npz")
    val = json.loads((softmax_runs[1][1] / "summary.json").read_text())["validation"]
    for n in WORLD_SIZES[1:]:
        m = np.load(softmax_runs[n][1] / "model.npz")
        np.testing.assert_allclose(m["coef"], ref["coef"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(m["intercept"], ref["intercept"], rtol=1e-10, atol=1e-12)
        other = json.loads((softmax_runs[n][1] / "summary.json").read_text())["validation"]
        assert other["loss"] == pytest.approx(val["loss"], rel=1e-10)
        assert other["accuracy"] == val["accuracy"]


def predict(model_dir, *args, n=1):
    """``dist-logreg predict`` as a plain process (n = 1) or under mpirun."""
    cmd = [str(BIN / "dist-logreg"), "predict", "--model", str(model_dir), *args]
    if n == 1:
        r = subprocess.run(cmd, capture_output=True, text=True, env=mpi_env(), timeout=60)
        return r
    return run_mpi(n, cmd, timeout=60)


def read_csv(path):
    header = path.read_text().splitlines()[0].split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return header, table


def sklearn_with(model_npz):
    """scikit-learn's LogisticRegression holding the same coefficients."""
    m = np.load(model_npz)
    clf = LogisticRegression()
    clf.coef_ = np.atleast_2d(m["coef"])
    clf.intercept_ = np.atleast_1d(m["intercept"])
    clf.classes_ = m["classes"]
    return clf


@pytest.mark.slow  # 10 s on a loaded 2-core machine
def test_predict_softmax_on_a_held_out_file_equals_scikit_learn(softmax_runs, tmp_path):
    model_dir = softmax_runs[2][1]
    test = libsvm(tmp_path / "test.svm", 150, seed=9)
    X, y = load_svmlight_file(str(test), zero_based=False, n_features=D)
    r = predict(model_dir, "--data", str(test), "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr
    header, table = read_csv(tmp_path / "p.csv")
    assert header == ["label", "p_0", "p_1", "p_2", "p_3"] and table.shape == (150, 5)
    clf = sklearn_with(model_dir / "model.npz")
    np.testing.assert_array_equal(table[:, 0], clf.predict(X))
    np.testing.assert_allclose(table[:, 1:], clf.predict_proba(X), rtol=1e-9, atol=1e-12)
    loss, acc = log_loss(y, clf.predict_proba(X)), accuracy_score(y, clf.predict(X))
    assert f"log-loss {loss:.6f}  accuracy {100 * acc:.2f}%" in r.stdout
    # Under mpirun each rank predicts its share; rank 0 writes the same file in row order.
    r3 = predict(model_dir, "--data", str(test), "--out", str(tmp_path / "p3.csv"), n=3)
    assert r3.returncode == 0, r3.stderr
    assert (tmp_path / "p3.csv").read_bytes() == (tmp_path / "p.csv").read_bytes()


def test_binary_minus_one_plus_one_with_validation_file_and_predict(tmp_path):
    train = libsvm(tmp_path / "train.libsvm", 400, seed=2, classes=2, labels=[-1, 1])
    val = libsvm(tmp_path / "val.libsvm", 120, seed=3, classes=2, labels=[-1, 1])
    out = tmp_path / "run"
    args = ["--data", str(train), "--val-data", str(val), *COMMON, "--eval-every", "15"]
    result = run_mpi(2, train_cmd(*args, "--out", str(out)), timeout=90)
    assert result.returncode == 0, result.stderr
    assert "labels -1/+1 mapped to 0/1" in result.stdout
    assert "held-out loss" in result.stdout and " auc " in result.stdout
    m = np.load(out / "model.npz")
    assert (
        m["coef"].shape == (D,) and m["intercept"].shape == () and m["classes"].tolist() == [-1, 1]
    )
    s = json.loads((out / "summary.json").read_text())
    X, y = load_svmlight_file(str(val), zero_based=False, n_features=D)
    clf = sklearn_with(out / "model.npz")
    p = clf.predict_proba(X)
    assert s["validation"]["auc"] == pytest.approx(roc_auc_score(y, p[:, 1]), rel=1e-12)
    assert s["validation"]["loss"] == pytest.approx(log_loss(y, p), rel=1e-10)
    # Predict on the same held-out file: the CSV goes to stdout, the line to stderr.
    r = predict(out, "--data", str(val))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "label,p_-1,p_1" and len(lines) == 121
    assert [int(line.split(",")[0]) for line in lines[1:]] == clf.predict(X).tolist()
    assert "accuracy" in r.stderr and "log-loss" in r.stderr


def test_predict_defaults_to_the_runs_own_data_and_takes_unlabeled_csv(tmp_path):
    out = tmp_path / "run"
    args = ["--samples", "300", "--features", "5", "--classes", "3", "--batch-size", "50"]
    r = run_mpi(1, train_cmd(*args, "--steps", "10", "--out", str(out)), timeout=60)
    assert r.returncode == 0, r.stderr
    p = predict(out, "--out", str(tmp_path / "all.csv"))  # the synthetic set, rebuilt
    assert p.returncode == 0, p.stderr
    header, table = read_csv(tmp_path / "all.csv")
    assert header == ["label", "p_0", "p_1", "p_2"] and table.shape == (300, 4)
    accuracy = json.loads((out / "summary.json").read_text())["final_accuracy"]
    assert f"accuracy {100 * accuracy:.2f}%" in p.stdout
    rows = np.random.default_rng(0).standard_normal((7, 5))
    np.savetxt(tmp_path / "x.csv", rows, delimiter=",", header="a,b,c,d,e", comments="")
    q = predict(out, "--data", str(tmp_path / "x.csv"), "--out", str(tmp_path / "x_pred.csv"))
    assert q.returncode == 0, q.stderr
    _, table = read_csv(tmp_path / "x_pred.csv")
    np.testing.assert_allclose(
        table[:, 1:], sklearn_with(out / "model.npz").predict_proba(rows), rtol=1e-9
    )
    assert "log-loss" not in q.stdout  # no labels, nothing to score


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "MISSING"], "--model"),
        ([], "expected 5 features (the model's), got 4"),
    ],
)
def test_predict_bad_input_is_one_line(tmp_path, args, message):
    out = tmp_path / "run"
    r = run_mpi(
        1,
        train_cmd(
            "--samples",
            "100",
            "--features",
            "5",
            "--batch-size",
            "20",
            "--steps",
            "2",
            "--out",
            str(out),
        ),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    np.savez(tmp_path / "four.npz", X=np.zeros((3, 4)))
    model = str(tmp_path / "nope") if "MISSING" in args else str(out)
    extra = [] if "MISSING" in args else ["--data", str(tmp_path / "four.npz")]
    p = predict(model, *extra)
    assert p.returncode == 2
    errors = [line for line in p.stderr.splitlines() if line.startswith("dist-logreg: error")]
    assert len(errors) == 1 and message in errors[0], p.stderr
