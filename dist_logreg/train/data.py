"""Where the rows come from: the synthetic set, data files, and the check of their values.

Files are opened through the table of readers (:mod:`dist_logreg.train.readers`, whose
:func:`load` and :class:`Dataset` this module re-exports). No MPI here except in
:func:`check_values`, which splits the scan of a file across ranks and so takes the
communicator as an argument. Each rank's shard of the rows is cut in
:mod:`dist_logreg.train.shards`, the batch order of each step is in
:mod:`dist_logreg.train.sampling`.
"""

from __future__ import annotations

import csv
import warnings
import zipfile
from pathlib import Path

import numpy as np

from dist_logreg.errors import UsageError, raise_together
from dist_logreg.files import regular_file
from dist_logreg.train import sparse
from dist_logreg.train.dataset import Dataset
from dist_logreg.train.readers import (
    check_shapes,
    is_collective,
    is_number_text,
    load,
    npz_arrays,
    reader_for,
)
from dist_logreg.train.sampling import GlobalBatches, rank_slice

__all__ = [  # the readers' and the batch order's names, used through this module
    "Dataset",
    "GlobalBatches",
    "check_values",
    "is_collective",
    "load",
    "reader_for",
    "scan_range",
    "synthetic",
]

#: Synthetic rows are generated in blocks of this many, each from its own seeded stream,
#: so the data do not depend on how many ranks generate them.
SYNTH_BLOCK = 8192
#: Rows scanned at a time when checking a file's values (bounds memory for memory maps).
SCAN_BLOCK = 65536


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
        bad = first_nonfinite(ds.X[start:stop])
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


def first_nonfinite(block) -> tuple[int, int, float] | None:
    if sparse.is_sparse(block):
        return sparse.first_nonfinite(block)
    xb = np.asarray(block)
    finite = np.isfinite(xb)
    if finite.all():
        return None
    row, col = np.argwhere(~finite)[0]
    return int(row), int(col), xb[row, col]


# --- predict's rows: labels optional ------------------------------------------------------


def rows_maybe_labeled(spec: str, d: int, label_column):
    """A whole non-LIBSVM file as ``(X, y or None)``: labels are optional for predict. The
    unlabeled forms get the labeled ones' checks: regular files only (a FIFO in a folder
    hung: X-H5), a member's header against its bytes (X-H2), X's shape and dtype (X-H3,
    X-H4), a CSV's byte-order mark not taken for a header (X-H1)."""
    path = Path(spec)
    X = None
    if path.suffix.lower() == ".npy" and "," not in spec:
        X, where = _npy(path), f"data file {path}"
    elif path.is_dir() and not (path / "y.npy").exists():
        X, where = _npy(path / "X.npy"), f"data file {path / 'X.npy'}"
    elif path.suffix.lower() == ".npz" and "," not in spec:
        members = _npz_members(path)
        if "y" not in members and "X" in members:
            X = npz_arrays(path, "data file", ["X"])["X"]
            where = f"data file {path}"
        elif "y" not in members and "format" in members:
            sp, _ = sparse.require(f"data file {path} (scipy sparse .npz)")
            try:
                return sp.csr_array(
                    sparse.checked_matrix(sp.load_npz(path), f"data file {path}")
                ), None
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise UsageError(f"data file {path}: not a readable .npz ({exc})") from None
    elif path.suffix.lower() == ".csv" and label_column is None and len(_first_row(path)) == d:
        try:
            with warnings.catch_warnings():  # no rows: numpy's raw UserWarning
                warnings.simplefilter("ignore", UserWarning)
                X = np.loadtxt(
                    regular_file(path, "data file"),
                    delimiter=",",
                    skiprows=_csv_header(path),
                    ndmin=2,
                    encoding="utf-8-sig",
                )
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(f"data file {path}: expected numbers in every cell: {exc}") from None
        where = f"data file {path}"
    if X is not None:
        check_shapes(X, None, where)
        return X, None
    ds = load(spec, "float64", label_column)
    return ds.X, ds.y


def _npy(path: Path):
    path = regular_file(path, "data file")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"data file {path}: not a readable .npy array ({exc})") from None


def _npz_members(path: Path) -> set[str]:
    """The array names of the ``.npz`` at ``path`` (nothing read but its directory)."""
    path = regular_file(path, "data file")
    try:
        with zipfile.ZipFile(path) as z:
            return {n[: -len(".npy")] for n in z.namelist() if n.endswith(".npy")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"data file {path}: not a readable .npz archive ({exc})") from None


def _first_row(path: Path) -> list[str]:
    try:  # utf-8-sig: a byte-order mark is not part of the first cell (X-H1)
        with regular_file(path, "data file").open(newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"data file {path}: cannot read: {exc}") from None


def _csv_header(path: Path) -> int:
    """1 when the first row is a header (not all numbers), else 0."""
    return 0 if all(is_number_text(c) for c in _first_row(path)) else 1
