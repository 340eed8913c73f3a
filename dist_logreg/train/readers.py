"""The table of data readers: each form of ``--data`` (by its name, or ``--format``) and what
reads it, like the algorithm table (:mod:`dist_logreg.collective.algorithms`).

Every reader returns a :class:`~dist_logreg.train.dataset.Dataset`, never unpickles
(``allow_pickle=False``), opens regular files only (a FIFO would block a rank), reads only
what it must where it can (memory maps, byte ranges), and names the file, the row or line
and the value in every ``UsageError``. A new format is one reader function and one row of
:data:`READERS` (docs/extending.md).
"""

from __future__ import annotations

import csv
import os
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dist_logreg.errors import UsageError
from dist_logreg.files import regular_file
from dist_logreg.train import sparse
from dist_logreg.train.dataset import Dataset
from dist_logreg.units import plain_int


@dataclass(frozen=True)
class Reader:
    """One form of ``--data``: how it is named and what reads it (the table :data:`READERS`).

    ``read(comm, spec, dtype, label_column, n_features) -> Dataset``; ``collective``: every
    rank takes part (each parses a share, then they exchange), so it is called on all ranks.
    """

    name: str
    matches: Callable[[str, str], bool]  # (spec, --format) -> this reader's form
    read: Callable[..., Dataset]
    collective: bool = False


def _svmlight(comm, spec, dtype, label_column, n_features) -> Dataset:
    return Dataset(*sparse.load_svmlight(comm, spec, dtype, n_features), spec)


def _pair(comm, spec, dtype, label_column, n_features) -> Dataset:
    x_path, y_path = (Path(p) for p in spec.split(",", 1))
    if x_path.suffix.lower() == ".npz":  # a scipy sparse matrix and its labels
        return Dataset(*sparse.load_npz(x_path, y_path, dtype, None), spec)
    return _load_npy_pair(x_path, y_path, dtype)


def _folder(comm, spec, dtype, *_) -> Dataset:
    return _load_npy_pair(Path(spec) / "X.npy", Path(spec) / "y.npy", dtype)


def _npz(comm, spec, dtype, *_) -> Dataset:
    return _load_npz(Path(spec), dtype)


def _csv(comm, spec, dtype, label_column, _) -> Dataset:
    return _load_csv(Path(spec), dtype, label_column)


def _lone_npy(comm, spec, dtype, label_column, n_features) -> Dataset:
    raise UsageError(
        f"--data {spec}: a single .npy file holds no labels; expected 'X.npy,y.npy' "
        "or a folder holding X.npy and y.npy"
    )


def _suffix(*suffixes: str) -> Callable[[str, str], bool]:
    return lambda spec, fmt: fmt == "auto" and Path(spec).suffix.lower() in suffixes


#: Every form of ``--data``, the first that matches reads it (the ``--format`` flag picks
#: LIBSVM whatever the name). A new format is one reader function and one row here.
READERS = (
    Reader("svmlight", sparse.is_svmlight, _svmlight, collective=True),
    Reader("X,y pair", lambda spec, fmt: "," in spec, _pair),
    Reader("folder of X.npy, y.npy", lambda spec, fmt: Path(spec).is_dir(), _folder),
    Reader(".npz", _suffix(".npz"), _npz),
    Reader(".csv", _suffix(".csv"), _csv),
    Reader(".npy alone", _suffix(".npy"), _lone_npy),
)


def reader_for(spec: str, fmt: str = "auto", collective: bool = True) -> Reader:
    """The reader of ``--data spec`` (with ``--format fmt``), or a ``UsageError``; without
    ``collective``, only readers that one rank runs alone."""
    for reader in READERS:
        if reader.matches(spec, fmt) and (collective or not reader.collective):
            return reader
    raise UsageError(
        f"--data {spec}: expected a .npz or .csv file, a folder with X.npy and y.npy, "
        "or 'X.npy,y.npy'"
    )


def is_collective(spec: str, fmt: str = "auto") -> bool:
    """Whether all ranks read ``--data spec`` together (LIBSVM): never raises."""
    return any(r.collective and r.matches(spec, fmt) for r in READERS)


def load(spec: str, dtype: str, label_column: str | None = None) -> Dataset:
    """Open ``--data spec`` on this rank alone (any form but LIBSVM, which all ranks read
    together: :func:`dist_logreg.train.prepare.load_any`). A ``UsageError`` names the file
    for anything unreadable or mis-shaped; values are checked by :func:`check_values`."""
    return reader_for(spec, collective=False).read(None, spec, dtype, label_column, None)


def _read_error(path: Path, exc: Exception, kind: str) -> UsageError:
    """One message per way a file can fail to open or parse."""
    if isinstance(exc, FileNotFoundError):
        return UsageError(f"data file {path}: not found")
    if isinstance(exc, PermissionError):
        return UsageError(f"data file {path}: permission denied")
    if isinstance(exc, IsADirectoryError):
        return UsageError(f"data file {path}: is a directory, expected a {kind}")
    return UsageError(f"data file {path}: not a readable {kind} ({exc})")


def npz_arrays(path: Path, what: str, names, optional=(), most_bytes=None) -> dict:
    """The arrays ``names`` (and those of ``optional`` it holds) of the ``.npz`` at ``path``,
    for a small file the package wrote (a checkpoint, a model): a regular file (a FIFO
    blocked ``train --resume`` and ``predict``: twelfth attack, L-H10, L-H12), and each
    member's ``.npy`` header checked against the bytes the member holds and ``most_bytes``
    (default: half this machine's memory) before numpy allocates it (a header claiming
    2^40 floats in a 200 B member was an 8 TiB ``MemoryError`` traceback: L-H11, L-H12).
    ``UsageError("{what} {path}: ...")`` naming the member otherwise."""
    path = regular_file(path, what)
    if most_bytes is None:
        most_bytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            members = {n[: -len(".npy")]: n for n in z.namelist() if n.endswith(".npy")}
            missing = [n for n in names if n not in members]
            if missing:
                raise UsageError(
                    f"{what} {path}: expected arrays {', '.join(names)}, got "
                    f"{', '.join(sorted(members)) or 'none'}"
                )
            for name in [*names, *(n for n in optional if n in members)]:
                info = z.getinfo(members[name])
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(f)
                    header = f.tell()
                nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if dtype.hasobject or header + nbytes != info.file_size or nbytes > most_bytes:
                    raise UsageError(
                        f"{what} {path}: {name}: expected an array of plain numbers that its "
                        f"{info.file_size:,} B member holds, at most {most_bytes:,} B; its "
                        f"header says shape {shape} of {dtype} ({nbytes:,} B)"
                    )
                with z.open(info) as f:
                    out[name] = np.lib.format.read_array(f, allow_pickle=False)
    except UsageError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise UsageError(f"{what} {path}: not a readable .npz ({exc})") from None
    return out


def check_shapes(X: np.ndarray, y: np.ndarray | None, where: str) -> None:
    """X of 2 dimensions and (when given) y of 1, as many rows, real numbers in both, at
    least one row and one feature (predict's unlabeled rows too: a 1-D, string or complex
    X was a traceback or a silent cast, nineteenth attack X-H3, X-H4)."""
    if X.ndim != 2:
        raise UsageError(
            f"{where}: expected X with 2 dimensions (rows, features), got shape {X.shape}"
        )
    if y is not None and y.ndim != 1:
        raise UsageError(f"{where}: expected y with 1 dimension (rows,), got shape {y.shape}")
    if y is not None and X.shape[0] != y.shape[0]:
        raise UsageError(
            f"{where}: X and y differ in length: X has {X.shape[0]} rows, y has {y.shape[0]}"
        )
    for name, a in (("X", X), ("y", y)):
        if a is None:
            continue
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
    check_shapes(X, y, f"data files {x_path}, {y_path}")
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
    check_shapes(X, y, f"data file {path}")
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
    numeric = [is_number_text(cell) for cell in first]
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
        with warnings.catch_warnings():  # no rows: numpy's raw UserWarning (U-M2)
            warnings.simplefilter("ignore", UserWarning)
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
    if not table.size:
        raise UsageError(f"data file {path}: expected at least one row under its header, got none")
    if table.shape[1] != len(names):
        raise UsageError(f"data file {path}: expected {len(names)} columns, got {table.shape[1]}")
    if table.shape[1] < 2:
        raise UsageError(
            f"data file {path}: expected a label column and at least one "
            f"feature column, got {table.shape[1]} column(s)"
        )
    y = table[:, label]
    X = np.delete(table, label, axis=1)
    check_shapes(X, y, f"data file {path}")
    return Dataset(np.ascontiguousarray(X, dtype=dtype), y.astype(dtype), str(path))


def is_number_text(text: str) -> bool:
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
    index = plain_int(label_column)  # ASCII digits (--label-column ٣ was column 3: R-M2)
    if index is not None and -len(names) <= index < len(names):
        return index % len(names)
    raise UsageError(
        f"--label-column {label_column}: expected a header name or index of "
        f"{path}, which has columns {names}"
    )
