"""Sparse data: LIBSVM files read in byte-range parts, scipy .npz, bad files, the extra."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from dist_logreg.errors import UsageError
from dist_logreg.train import data, sparse

GOOD = [
    "1 1:0.5 3:2",
    "0 2:1.5",
    "1 qid:7 1:-1 4:3e-2  # a comment",
    "",
    "# a comment line",
    "0",
    "1 2:2 3:4",
]


def write(tmp_path: Path, lines, name="d.svm", end="\n") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + end)
    return path


def parts(path: Path, p: int):
    """Every rank's part, as each rank would read it: (data, indices, indptr, y) per rank."""
    return [sparse._parse(path, *sparse._byte_range(path, r, p), "float64") for r in range(p)]


def stack(chunks, width):
    Xs = [sp.csr_array((d, i, ip), shape=(y.size, width)) for d, i, ip, y in chunks]
    return sp.vstack(Xs).toarray(), np.concatenate([c[3] for c in chunks])


@pytest.mark.parametrize("end", ["\n", ""])  # with and without a final newline
@pytest.mark.parametrize("p", [1, 2, 3, 5, 8, 13])  # 13: more parts than lines
def test_parts_together_are_the_whole_file(tmp_path, p, end):
    path = write(tmp_path, GOOD, end=end)
    whole_X, whole_y = load_svmlight_file(str(path), zero_based=False, n_features=4)
    X, y = stack(parts(path, p), 4)
    np.testing.assert_array_equal(X, whole_X.toarray())
    np.testing.assert_array_equal(y, whole_y)


def test_parts_of_a_larger_file_split_the_work(tmp_path):
    rng = np.random.default_rng(0)
    M = sp.random_array((500, 40), density=0.2, rng=rng, format="csr")
    y = rng.integers(0, 3, 500)
    path = tmp_path / "big.svm"
    dump_svmlight_file(M, y, str(path), zero_based=False)
    chunks = parts(path, 3)
    rows = [c[3].size for c in chunks]
    assert sum(rows) == 500 and min(rows) > 100  # each rank parsed about a third
    X, labels = stack(chunks, 40)
    np.testing.assert_allclose(X, M.toarray(), rtol=1e-15)
    np.testing.assert_array_equal(labels, y)


def test_load_on_one_rank_and_the_features_option(tmp_path):
    path = write(tmp_path, GOOD)
    X, y = sparse.load_svmlight(MPI.COMM_SELF, str(path), "float32", None)
    assert X.shape == (5, 4) and X.dtype == np.float32 and y.tolist() == [1, 0, 1, 0, 1]
    assert X[2, 3] == pytest.approx(3e-2) and X[1, 1] == 1.5
    wide, _ = sparse.load_svmlight(MPI.COMM_SELF, str(path), "float64", 10)
    assert wide.shape == (5, 10)
    with pytest.raises(UsageError, match=r"d.svm: line 3: expected feature indices <= 3 "):
        sparse.load_svmlight(MPI.COMM_SELF, str(path), "float64", 3)


BAD = [
    ("1 3:0.5 1:2", "expected increasing feature indices, got 1 after 3"),
    ("1 2:0.5 2:2", "expected increasing feature indices, got 2 after 2"),
    ("1 0:0.5", "expected feature indices >= 1 (LIBSVM counts from 1), got '0:0.5'"),
    ("1 -2:0.5", "expected feature indices >= 1 (LIBSVM counts from 1), got '-2:0.5'"),
    ("1 2:abc", "expected a number after '2:', got '2:abc'"),
    ("2:1 3:4", "missing label (the line starts with the feature 2:1)"),
    ("yes 2:1", "expected a numeric label, got 'yes'"),
    ("1 2 0.5", "expected INDEX:VALUE, got '2'"),
    ("1 1.5:2", "expected an integer feature index, got '1.5:2'"),
    ("1 2:nan", "line 6: expected finite values, got 2:nan"),
]


@pytest.mark.parametrize("line, message", BAD, ids=[m.split(",")[0][:30] for _, m in BAD])
def test_every_bad_line_is_named(tmp_path, line, message):
    lines = [*GOOD[:5], line, *GOOD[5:]]  # the bad line is line 6
    path = write(tmp_path, lines)
    with pytest.raises(UsageError) as info:
        sparse.load_svmlight(MPI.COMM_SELF, str(path), "float64", None)
    text = str(info.value)
    assert text.startswith(f"data file {path}: line 6: "), text
    assert message in text and "\n" not in text


def test_a_bad_line_in_a_later_part_keeps_its_file_line_number(tmp_path):
    lines = [f"{i % 2} 1:{i}" for i in range(40)]
    lines[33] = "1 4:1 2:1"
    path = write(tmp_path, lines)
    start, stop = sparse._byte_range(path, 2, 3)  # the last third: lines 27..40
    assert start > 0
    with pytest.raises(UsageError, match=r"line 34: expected increasing feature indices"):
        sparse._parse(path, start, stop, "float64")
    sparse._parse(path, *sparse._byte_range(path, 0, 3), "float64")  # first third: fine


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(UsageError, match=r"nope.svm: not found"):
        sparse.load_svmlight(MPI.COMM_SELF, str(tmp_path / "nope.svm"), "float64", None)
    empty = write(tmp_path, ["# nothing but a comment"])
    with pytest.raises(UsageError, match=r"d.svm: no data lines"):
        sparse.load_svmlight(MPI.COMM_SELF, str(empty), "float64", 3)
    labels_only = write(tmp_path, ["1", "0"], name="l.svm")
    with pytest.raises(UsageError, match=r"l.svm: expected at least one INDEX:VALUE feature"):
        sparse.load_svmlight(MPI.COMM_SELF, str(labels_only), "float64", None)


def test_scipy_npz_with_labels_inside_or_beside(tmp_path):
    M = sp.random_array((30, 7), density=0.3, rng=1, format="csr")
    y = np.arange(30) % 2
    sp.save_npz(tmp_path / "X.npz", M)
    np.save(tmp_path / "y.npy", y)
    pair = data.load(f"{tmp_path / 'X.npz'},{tmp_path / 'y.npy'}", "float64")
    assert pair.sparse and pair.X.shape == (30, 7) and np.array_equal(pair.y, y)
    np.testing.assert_array_equal(pair.X.toarray(), M.toarray())
    with pytest.raises(UsageError, match=r"a sparse matrix without labels; expected an array y"):
        data.load(str(tmp_path / "X.npz"), "float64")
    # An archive in save_npz's layout with the labels added as array y.
    with np.load(tmp_path / "X.npz") as z:
        np.savez(tmp_path / "Xy.npz", **{k: z[k] for k in z.files}, y=y)
    inside = data.load(str(tmp_path / "Xy.npz"), "float32")
    assert inside.sparse and inside.X.dtype == np.float32 and inside.n_samples == 30


def test_nan_in_a_sparse_matrix_is_found_with_its_row_and_column(tmp_path):
    M = sp.random_array((50, 7), density=0.3, rng=2, format="csr").tolil()
    M[37, 5] = np.nan
    sp.save_npz(tmp_path / "X.npz", M.tocsr())
    np.save(tmp_path / "y.npy", np.zeros(50))
    ds = data.load(f"{tmp_path / 'X.npz'},{tmp_path / 'y.npy'}", "float64")
    with pytest.raises(UsageError, match=r"expected finite features, got X\[37, 5\] = nan"):
        data.check_values(MPI.COMM_SELF, ds)


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # as if not installed
    with pytest.raises(UsageError) as info:
        sparse.require("data file a.svm (LIBSVM)")
    assert "needs the optional extra 'sparse'" in str(info.value)
    assert "pip install 'dist-logreg[sparse]'" in str(info.value)


def test_format_detection():
    assert sparse.is_svmlight("a.svm") and sparse.is_svmlight("b.LIBSVM")
    assert sparse.is_svmlight("c.svmlight") and not sparse.is_svmlight("d.txt")
    assert sparse.is_svmlight("d.txt", "svmlight") and not sparse.is_svmlight("a.csv")
