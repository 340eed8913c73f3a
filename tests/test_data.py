"""Data: the synthetic set, file formats, value checks, the global batch order."""

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from dist_logreg.errors import UsageError
from dist_logreg.train import data, readers
from dist_logreg.train.startup import fingerprint


def test_synthetic_is_deterministic_and_block_independent():
    a = data.synthetic(20000, 6, seed=3, dtype="float64")
    b = data.synthetic(20000, 6, seed=3, dtype="float64")
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    # A smaller set is a prefix of a larger one: rows depend only on (seed, row block).
    c = data.synthetic(9000, 6, seed=3, dtype="float64")
    np.testing.assert_array_equal(c.X, a.X[:9000])
    assert not np.array_equal(data.synthetic(100, 6, seed=4, dtype="float64").X, a.X[:100])
    f32 = data.synthetic(100, 6, seed=3, dtype="float32")
    assert f32.X.dtype == np.float32
    np.testing.assert_allclose(f32.X, a.X[:100], rtol=1e-6)


def test_synthetic_labels_follow_the_true_model():
    ds = data.synthetic(40000, 8, seed=0, dtype="float64")
    assert set(np.unique(ds.y)) == {0.0, 1.0}
    # The generating model predicts the labels far better than chance.
    z = ds.X @ ds.true_coef + ds.true_intercept
    acc = np.mean((z > 0) == (ds.y == 1))
    assert 0.7 < acc < 0.95


@pytest.fixture
def files(tmp_path, small_problem):
    X, y = small_problem
    np.savez(tmp_path / "d.npz", X=X, y=y)
    (tmp_path / "pair").mkdir()
    np.save(tmp_path / "pair" / "X.npy", X)
    np.save(tmp_path / "pair" / "y.npy", y)
    return tmp_path, X, y


def test_npz_npy_pair_and_dir_load_the_same(files):
    tmp, X, y = files
    for spec in (tmp / "d.npz", tmp / "pair", f"{tmp}/pair/X.npy,{tmp}/pair/y.npy"):
        ds = data.load(str(spec), "float64")
        np.testing.assert_array_equal(np.asarray(ds.X), X)
        np.testing.assert_array_equal(ds.y, y)
    ds = data.load(str(tmp / "pair"), "float64")
    assert isinstance(ds.X, np.memmap)  # .npy is memory-mapped, not copied


def test_csv_with_header_and_label_column(tmp_path, small_problem):
    X, y = small_problem
    path = tmp_path / "d.csv"
    cols = ["a", "b", "label", "c", "d", "e"]
    table = np.column_stack([X[:, :2], y, X[:, 2:]])
    np.savetxt(path, table, delimiter=",", header=",".join(cols), comments="")
    ds = data.load(str(path), "float64")  # finds the column named "label"
    np.testing.assert_allclose(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)
    ds = data.load(str(path), "float64", label_column="2")
    np.testing.assert_array_equal(ds.y, y)
    with pytest.raises(UsageError, match="--label-column zz: expected a header name or index"):
        data.load(str(path), "float64", label_column="zz")


def test_csv_without_header_uses_last_column(tmp_path, small_problem):
    X, y = small_problem
    path = tmp_path / "d.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",")
    ds = data.load(str(path), "float32")
    np.testing.assert_allclose(ds.X, X.astype(np.float32))
    assert ds.X.dtype == np.float32


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: t / "missing.npz", "missing.npz: not found"),
        (lambda t: (t / "x.txt").write_text("hi") and t / "x.txt", "expected a .npz or .csv"),
        (
            lambda t: (t / "bad.npz").write_bytes(b"not a zip") and t / "bad.npz",
            "bad.npz: not a readable .npz archive",
        ),
        (
            lambda t: np.savez(t / "k.npz", A=np.zeros((2, 2))) or t / "k.npz",
            "expected arrays X and y, found ['A']",
        ),
        (
            lambda t: np.savez(t / "len.npz", X=np.zeros((5, 2)), y=np.zeros(4)) or t / "len.npz",
            "X and y differ in length: X has 5 rows, y has 4",
        ),
        (
            lambda t: (
                np.savez(t / "obj.npz", X=np.array([{}], dtype=object), y=np.zeros(1))
                or t / "obj.npz"
            ),
            "obj.npz: not a readable .npz archive",
        ),
        (
            lambda t: np.savez(t / "dim.npz", X=np.zeros(5), y=np.zeros(5)) or t / "dim.npz",
            "expected X with 2 dimensions",
        ),
        (lambda t: ((t / "e.csv").write_text(""), t / "e.csv")[1], "empty CSV file"),
        (
            lambda t: ((t / "s.csv").write_text("a,b\n1,x\n"), t / "s.csv")[1],
            "expected numbers in every CSV cell",
        ),
        (lambda t: t, "folder"),
    ],
)
def test_bad_files_name_the_file_and_problem(tmp_path, make, message):
    spec = make(tmp_path)
    with pytest.raises(UsageError) as info:
        data.load(str(spec), "float64")
    text = str(info.value)
    assert message in text or (message == "folder" and "X.npy: not found" in text)


@pytest.mark.parametrize(
    "exc, message",
    [
        (PermissionError(13, "Permission denied"), "d.npz: permission denied"),
        (IsADirectoryError(21, "Is a directory"), "d.npz: is a directory"),
        (OSError(5, "Input/output error"), "d.npz: not a readable .npz archive"),
    ],
)
def test_os_errors_become_usage_errors(exc, message):
    # Root (CI) can read any file, so permission errors are produced here directly.
    assert message in str(readers._read_error(Path("d.npz"), exc, ".npz archive"))


@pytest.mark.parametrize(
    "poison, message",
    [
        (("X", (17, 3), np.nan), r"expected finite features, got X\[17, 3\] = nan"),
        (("X", (230, 0), np.inf), r"X\[230, 0\] = inf"),
        (("y", 101, 2.0), r"expected labels 0 or 1, got y\[101\] = 2.0"),
        (("y", 0, -1.0), r"y\[0\] = -1.0"),
    ],
)
def test_check_values_finds_bad_values(tmp_path, small_problem, poison, message):
    X, y = (a.copy() for a in small_problem)
    name, where, value = poison
    (X if name == "X" else y)[where] = value
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    ds = data.load(str(tmp_path), "float64")
    with pytest.raises(UsageError, match=message):
        data.check_values(MPI.COMM_SELF, ds)


def test_check_values_accepts_clean_data(files):
    tmp, _, _ = files
    ds = data.load(str(tmp / "pair"), "float64")
    data.check_values(MPI.COMM_SELF, ds)
    assert ds.checked


def test_global_batches_cover_each_epoch_once():
    gb = data.GlobalBatches(n_samples=103, batch_size=10, seed=5)
    assert gb.steps_per_epoch == 10
    epoch0 = np.concatenate([gb.batch(s) for s in range(10)])
    assert len(np.unique(epoch0)) == 100  # no repeats within an epoch; 3 rows dropped
    epoch1 = np.concatenate([gb.batch(s) for s in range(10, 20)])
    assert not np.array_equal(epoch0, epoch1)  # reshuffled each epoch
    again = data.GlobalBatches(103, 10, 5)
    np.testing.assert_array_equal(again.batch(13), gb.batch(13))  # depends on (seed, epoch)


@pytest.mark.parametrize(
    "batch, size", [(b, s) for b in (1, 7, 10, 100, 101) for s in (1, 2, 3, 7) if b >= s]
)
def test_rank_slices_partition_the_batch(batch, size):
    slices = [data.rank_slice(batch, size, r) for r in range(size)]
    assert slices[0][0] == 0 and slices[-1][1] == batch
    assert all(a[1] == b[0] for a, b in zip(slices[:-1], slices[1:], strict=True))  # contiguous
    lengths = [hi - lo for lo, hi in slices]
    assert max(lengths) - min(lengths) <= 1


def test_fingerprint_names_the_rows_not_the_path(files, tmp_path):
    tmp, X, y = files
    a = fingerprint(data.load(str(tmp / "d.npz"), "float64"))
    b = fingerprint(data.load(str(tmp / "pair"), "float64"))  # memory-mapped, other path
    assert a == b and a.startswith(f"{len(y)}x{X.shape[1]} float64 sha256:")
    X2 = X.copy()
    X2[-1] += 1.0  # one changed row (the first and last rows are always in the sample)
    np.savez(tmp_path / "other.npz", X=X2, y=y)
    assert fingerprint(data.load(str(tmp_path / "other.npz"), "float64")) != a


@pytest.mark.parametrize("text, rows", [("\ufeff1,2,0\n3,4,1\n", 2), ("a,b,y\n1,2,0\n", 1)])
def test_csv_byte_order_mark_is_not_a_header(tmp_path, text, rows):
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    assert data.load(str(path), "float64").n_samples == rows


def test_csv_first_row_with_a_typo_is_not_a_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1,2x,0\n3,4,1\n")
    with pytest.raises(UsageError, match="got a mix: column 1 is '2x'"):
        data.load(str(path), "float64")


def test_complex_features_are_refused(tmp_path):
    np.savez(tmp_path / "c.npz", X=np.ones((3, 2), dtype=complex), y=np.zeros(3))
    with pytest.raises(UsageError, match="expected real numbers in X, got dtype complex128"):
        data.load(str(tmp_path / "c.npz"), "float64")
