"""Where the rows come from: the synthetic set, data files, and each rank's shard of them.

No MPI here except in :func:`check_values`, which splits the scan of a file across ranks
and so takes the communicator as an argument. Each rank's shard of the rows is cut in
:mod:`dist_logreg.train.shards`, the batch order of each step is in
:mod:`dist_logreg.train.sampling`.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dist_logreg.errors import UsageError, raise_together
from dist_logreg.files import regular_file
from dist_logreg.train import sparse
from dist_logreg.train.sampling import GlobalBatches as GlobalBatches  # re-exported
from dist_logreg.train.sampling import rank_slice

#: Synthetic rows are generated in blocks of this many, each from its own seeded stream,
#: so the data do not depend on how many ranks generate them.
SYNTH_BLOCK = 8192
#: Rows scanned at a time when checking a file's values (bounds memory for memory maps).
SCAN_BLOCK = 65536


@dataclass
class Dataset:
    """Training rows. ``X`` may be a read-only memory map; ``y`` holds 0/1 labels.

    Attributes
    ----------
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    source : str
        Where the rows came from, for messages and the summary.
    true_coef, true_intercept : ndarray (d,) and float, or None
        The generating model of the synthetic set (None for files).
    """

    X: np.ndarray
    y: np.ndarray
    source: str
    true_coef: np.ndarray | None = None
    true_intercept: float | None = None
    checked: bool = False  # values already known finite and labels 0/1
    # Sharded data (see train/shards.py): this process holds rows of a larger set.
    total_samples: int | None = None  # rows of all shards together; None: not sharded
    row_offset: int = 0  # global index of this shard's first row (for messages)

    @property
    def n_samples(self) -> int:
        """Rows this process holds (its shard, when sharded)."""
        return self.X.shape[0]

    @property
    def sparse(self) -> bool:
        """``X`` is a scipy sparse CSR matrix (train/sparse.py), not an ndarray or memory map."""
        return sparse.is_sparse(self.X)

    @property
    def n_total(self) -> int:
        """Rows of the whole data set, over all shards."""
        return self.n_samples if self.total_samples is None else self.total_samples

    @property
    def sharded(self) -> bool:
        return self.total_samples is not None

    @property
    def n_features(self) -> int:
        return self.X.shape[1]


def synthetic(
    samples: int, features: int, seed: int, dtype: str, rows: tuple[int, int] | None = None
) -> Dataset:
    """Deterministic synthetic classification data from ``seed``.

    Features are standard normal; labels are drawn through the logistic model from a
    fixed true weight vector (logit standard deviation about 2, so a well-trained model
    reaches roughly 80% accuracy and the accuracy means something). Every rank can build
    the rows itself: nothing is sent. ``rows=(lo, hi)`` builds only those rows (a shard),
    equal to the same rows of the whole set, in memory proportional to the shard.
    """
    truth = np.random.default_rng([seed, 0x7EE])
    true_coef = truth.standard_normal(features) * (2.0 / np.sqrt(features))
    true_intercept = 0.25
    lo, hi = rows if rows is not None else (0, samples)
    X = np.empty((hi - lo, features), dtype=dtype)
    y = np.empty(hi - lo, dtype=dtype)
    for block in range(lo // SYNTH_BLOCK, -(-hi // SYNTH_BLOCK)):
        start, stop = block * SYNTH_BLOCK, min((block + 1) * SYNTH_BLOCK, samples)
        rng = np.random.default_rng([seed, 0xDA7A, block])
        xb = rng.standard_normal((stop - start, features))
        p = 1.0 / (1.0 + np.exp(-(xb @ true_coef + true_intercept)))
        yb = rng.random(stop - start) < p
        a, b = max(start, lo), min(stop, hi)  # the part of this block inside the rows
        X[a - lo : b - lo] = xb[a - start : b - start]
        y[a - lo : b - lo] = yb[a - start : b - start]
    source = f"synthetic(samples={samples}, features={features}, seed={seed})"
    ds = Dataset(X, y, source, true_coef, true_intercept, checked=True)
    if rows is not None:
        ds.total_samples, ds.row_offset = samples, lo
        ds.source += f" rows {lo}..{hi - 1}"
    return ds


def load(spec: str, dtype: str, label_column: str | None = None) -> Dataset:
    """Open the data named by ``--data`` (formats in ``TrainConfig.data``'s help).

    Raises ``UsageError`` naming the file for anything unreadable or mis-shaped. Values
    (NaN, labels) are checked separately, in parallel, by :func:`check_values`.
    """
    if "," in spec:
        x_path, y_path = (Path(p) for p in spec.split(",", 1))
        if x_path.suffix.lower() == ".npz":  # a scipy sparse matrix and its labels
            return Dataset(*sparse.load_npz(x_path, y_path, dtype, None), spec)
        return _load_npy_pair(x_path, y_path, dtype)
    path = Path(spec)
    if path.is_dir():
        return _load_npy_pair(path / "X.npy", path / "y.npy", dtype)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path, dtype)
    if suffix == ".csv":
        return _load_csv(path, dtype, label_column)
    if suffix == ".npy":
        raise UsageError(
            f"--data {spec}: a single .npy file holds no labels; expected 'X.npy,y.npy' "
            "or a folder holding X.npy and y.npy"
        )
    raise UsageError(
        f"--data {spec}: expected a .npz or .csv file, a folder with X.npy and y.npy, "
        "or 'X.npy,y.npy'"
    )


def _read_error(path: Path, exc: Exception, kind: str) -> UsageError:
    """One message per way a file can fail to open or parse."""
    if isinstance(exc, FileNotFoundError):
        return UsageError(f"data file {path}: not found")
    if isinstance(exc, PermissionError):
        return UsageError(f"data file {path}: permission denied")
    if isinstance(exc, IsADirectoryError):
        return UsageError(f"data file {path}: is a directory, expected a {kind}")
    return UsageError(f"data file {path}: not a readable {kind} ({exc})")


def _check_shapes(X: np.ndarray, y: np.ndarray, where: str) -> None:
    if X.ndim != 2:
        raise UsageError(
            f"{where}: expected X with 2 dimensions (rows, features), got shape {X.shape}"
        )
    if y.ndim != 1:
        raise UsageError(f"{where}: expected y with 1 dimension (rows,), got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise UsageError(
            f"{where}: X and y differ in length: X has {X.shape[0]} rows, y has {y.shape[0]}"
        )
    for name, a in (("X", X), ("y", y)):
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            raise UsageError(f"{where}: expected numeric {name}, got dtype {a.dtype}")
        if np.issubdtype(a.dtype, np.complexfloating):  # a cast would drop the imaginary part
            raise UsageError(f"{where}: expected real numbers in {name}, got dtype {a.dtype}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise UsageError(
            f"{where}: expected at least one row and one feature, got X of shape {X.shape}"
        )


def _load_npy_pair(x_path: Path, y_path: Path, dtype: str) -> Dataset:
    arrays = []
    for path in (x_path, y_path):
        regular_file(path, "data file")
        try:
            # Memory-mapped: a rank touches only the rows it uses, no private full copy.
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise _read_error(path, exc, ".npy array") from None
    X, y = arrays
    _check_shapes(X, y, f"data files {x_path}, {y_path}")
    # y is small (one number per row): load it, in the training dtype.
    return Dataset(X, np.asarray(y, dtype=dtype), f"{x_path},{y_path}")


def _load_npz(path: Path, dtype: str) -> Dataset:
    regular_file(path, "data file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise _read_error(path, exc, ".npz archive") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # np.load also reads .npy and pickles
        raise UsageError(
            f"data file {path}: expected a .npz archive (a zip of X.npy and y.npy), got a "
            "single .npy array; use 'X.npy,y.npy' or np.savez(path, X=X, y=y)"
        )
    try:
        with archive:
            if {"format", "shape", "data"} <= set(archive.files):  # scipy.sparse.save_npz
                return Dataset(*sparse.load_npz(path, None, dtype, None), str(path))
            missing = {"X", "y"} - set(archive.files)
            if missing:
                raise UsageError(
                    f"data file {path}: expected arrays X and y, found {sorted(archive.files)}"
                )
            X, y = archive["X"], archive["y"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _read_error(path, exc, ".npz archive") from None
    except MemoryError:
        raise UsageError(
            f"data file {path}: expected a .npz that fits in memory (each rank loads it "
            "whole); store X.npy and y.npy instead, which are memory-mapped"
        ) from None
    for name, a in (("X", X), ("y", y)):
        if not isinstance(a, np.ndarray):  # numpy hands back a member that is not .npy raw
            raise UsageError(
                f"data file {path}: expected member {name} to be a .npy array, got "
                f"{len(a)} bytes of something else"
            )
    _check_shapes(X, y, f"data file {path}")
    return Dataset(np.ascontiguousarray(X, dtype=dtype), np.asarray(y, dtype=dtype), str(path))


def _load_csv(path: Path, dtype: str, label_column: str | None) -> Dataset:
    regular_file(path, "data file")
    try:  # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the first cell
        with path.open(newline="", encoding="utf-8-sig") as fh:
            first = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise _read_error(path, exc, "CSV file") from None
    if first is None:
        raise UsageError(f"data file {path}: empty CSV file")
    numeric = [_is_number(cell) for cell in first]
    if any(numeric) and not all(numeric):  # neither a header nor a row: a typo in row 1
        bad = numeric.index(False)
        raise UsageError(
            f"data file {path}: expected a header of column names or a row of numbers in "
            f"line 1, got a mix: column {bad} is {first[bad]!r}"
        )
    has_header = not all(numeric)
    names = [c.strip() for c in first] if has_header else [str(i) for i in range(len(first))]
    label = _label_index(path, names, label_column, has_header)
    try:
        table = np.loadtxt(
            path,
            delimiter=",",
            skiprows=int(has_header),
            dtype=np.float64,
            ndmin=2,
            encoding="utf-8-sig",
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"data file {path}: expected numbers in every CSV cell: {exc}") from None
    if table.shape[1] != len(names):
        raise UsageError(f"data file {path}: expected {len(names)} columns, got {table.shape[1]}")
    if table.shape[1] < 2:
        raise UsageError(
            f"data file {path}: expected a label column and at least one "
            f"feature column, got {table.shape[1]} column(s)"
        )
    y = table[:, label]
    X = np.delete(table, label, axis=1)
    _check_shapes(X, y, f"data file {path}")
    return Dataset(np.ascontiguousarray(X, dtype=dtype), y.astype(dtype), str(path))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_index(path: Path, names: list[str], label_column: str | None, has_header: bool) -> int:
    if label_column is None:
        for candidate in ("y", "label"):
            if has_header and candidate in names:
                return names.index(candidate)
        return len(names) - 1
    if label_column in names and has_header:
        return names.index(label_column)
    if label_column.lstrip("-").isdigit() and -len(names) <= int(label_column) < len(names):
        return int(label_column) % len(names)
    raise UsageError(
        f"--label-column {label_column}: expected a header name or index of "
        f"{path}, which has columns {names}"
    )


def check_values(comm, ds: Dataset, n_classes: int = 2) -> None:
    """Collective: every rank scans its share of the rows for NaN/inf and labels outside
    0..n_classes-1 (0 or 1 for a binary model).

    The scan is split across ranks (each reads ``n/p`` rows of a memory map), and the
    verdicts are exchanged, so a bad value anywhere fails every rank with the row, column
    and value.
    """
    error = None
    if not ds.checked:
        lo, hi = scan_range(ds, comm.Get_size(), comm.Get_rank())
        try:
            error = _scan(ds, lo, hi, n_classes)
        except OSError as exc:  # a memory map can fail on first touch (truncated file)
            error = UsageError(f"data {ds.source}: cannot read rows {lo}..{hi - 1}: {exc}")
    raise_together(comm, error)
    ds.checked = True


def scan_range(ds: Dataset, size: int, rank: int) -> tuple[int, int]:
    """The rows this rank scans in a collective pass over the data (checks, evaluation):
    its part of all rows, or its whole shard."""
    return (0, ds.n_samples) if ds.sharded else rank_slice(ds.n_samples, size, rank)


def _scan(ds: Dataset, lo: int, hi: int, k: int) -> UsageError | None:
    labels = "0 or 1" if k == 2 else f"0..{k - 1}"
    for start in range(lo, hi, SCAN_BLOCK):
        stop = min(start + SCAN_BLOCK, hi)
        bad = _first_nonfinite(ds.X[start:stop])
        if bad is not None:
            row, col, value = bad
            return UsageError(
                f"data {ds.source}: expected finite features, got "
                f"X[{ds.row_offset + start + row}, {col}] = {value}"
            )
        yb = ds.y[start:stop]
        ok = (yb >= 0) & (yb < k) & (yb == np.round(yb))
        if not ok.all():
            row = int(np.argmin(ok))
            return UsageError(
                f"data {ds.source}: expected labels {labels}, got "
                f"y[{ds.row_offset + start + row}] = {yb[row]}"
            )
    return None


def _first_nonfinite(block) -> tuple[int, int, float] | None:
    if sparse.is_sparse(block):
        return sparse.first_nonfinite(block)
    xb = np.asarray(block)
    finite = np.isfinite(xb)
    if finite.all():
        return None
    row, col = np.argwhere(~finite)[0]
    return int(row), int(col), xb[row, col]
