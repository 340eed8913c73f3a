"""Sparse data: LIBSVM / svmlight text files and scipy sparse ``.npz``, as scipy CSR.

Needs the optional extra ``sparse`` (scipy, scikit-learn): ``pip install -e '.[sparse]'``.

LIBSVM files are read with scikit-learn's ``load_svmlight_file`` on a byte range: each rank
parses only its share of the file's lines (cut at line starts), then all ranks exchange
their parts with buffer-based ``Allgatherv`` so each holds every row, in file order (the
default sampling draws any row on any rank). The reader is handed a stream that ends at the
range's end rather than its own ``offset``/``length``: with those, a range ending in blank
or comment lines also parses the next range's first data line (its limit is checked after
data lines only), so that row would be read twice. Indices are 1-based, as LIBSVM writes
them. A file the parser rejects is scanned again, on the error path only, to name the line
and what is wrong with it.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from dist_logreg.errors import UsageError, raise_together
from dist_logreg.files import regular_file

SUFFIXES = (".svm", ".libsvm", ".svmlight")
INSTALL = "pip install 'dist-logreg[sparse]'"
#: Parse with an unbounded width, then fix the dimension once all ranks know the highest index.
_UNBOUNDED = 2**62
#: Bytes read at a time when counting lines (error path only).
_BLOCK = 1 << 20


def require(what: str):
    """``scipy.sparse`` and scikit-learn's svmlight reader, or a ``UsageError`` naming the extra."""
    try:
        import scipy.sparse as sp
        from sklearn.datasets import load_svmlight_file
    except ImportError:
        raise UsageError(
            f"{what} needs the optional extra 'sparse' (scipy, scikit-learn): {INSTALL}"
        ) from None
    return sp, load_svmlight_file


def is_svmlight(path: str, fmt: str = "auto") -> bool:
    """Whether ``--data PATH`` (with ``--format``) names a LIBSVM / svmlight file."""
    return fmt == "svmlight" or (fmt == "auto" and Path(path).suffix.lower() in SUFFIXES)


def is_sparse(X) -> bool:
    return not isinstance(X, np.ndarray)


def first_nonfinite(block):
    """``(row, col, value)`` of the first NaN/inf of a CSR block, or None."""
    bad = ~np.isfinite(block.data)
    if not bad.any():
        return None
    k = int(np.argmax(bad))
    row = int(np.searchsorted(block.indptr, k, side="right")) - 1
    return row, int(block.indices[k]), block.data[k]


def _boundary(fh, size: int, rank: int, parts: int) -> int:
    """The first line start at or after byte ``rank * size / parts``."""
    target = rank * size // parts
    if target == 0:
        return 0
    fh.seek(target - 1)
    fh.readline()  # to the end of the line holding byte target - 1
    return fh.tell()


def _byte_range(path: Path, rank: int, parts: int) -> tuple[int, int]:
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            return _boundary(fh, size, rank, parts), _boundary(fh, size, rank + 1, parts)
    except FileNotFoundError:
        raise UsageError(f"data file {path}: not found") from None
    except OSError as exc:
        raise UsageError(f"data file {path}: cannot read: {exc.strerror or exc}") from None


def _lines(path: Path, start: int, stop: int):
    """``(line number, bytes)`` of the lines starting in ``[start, stop)``, numbered from 1."""
    with path.open("rb") as fh:
        number = 1
        while fh.tell() < start:  # count the lines before ours
            chunk = fh.read(min(_BLOCK, start - fh.tell()))
            number += chunk.count(b"\n")
        while fh.tell() < stop:
            line = fh.readline()
            if not line:
                return
            yield number, line
            number += 1


def _problem(text: bytes) -> str | None:
    """What is wrong with one LIBSVM line, or None (comments, blank lines and qid allowed)."""
    text = text.split(b"#", 1)[0]
    parts = text.split()
    if not parts:
        return None
    label, feats = parts[0], parts[1:]
    if b":" in label:
        return f"missing label (the line starts with the feature {label.decode(errors='replace')})"
    if not _number(label):
        return f"expected a numeric label, got {label.decode(errors='replace')!r}"
    if feats and feats[0].startswith(b"qid"):
        feats = feats[1:]
    prev = 0
    for item in feats:
        index, sep, value = item.partition(b":")
        shown = item.decode(errors="replace")
        if not sep:
            return f"expected INDEX:VALUE, got {shown!r}"
        try:
            idx = int(index)
        except ValueError:
            return f"expected an integer feature index, got {shown!r}"
        if idx < 1:
            return f"expected feature indices >= 1 (LIBSVM counts from 1), got {shown!r}"
        if idx <= prev:
            return f"expected increasing feature indices, got {idx} after {prev}"
        if not _number(value):
            return f"expected a number after '{idx}:', got {shown!r}"
        if not math.isfinite(float(value)):
            return f"expected finite values, got {shown!r}"
        prev = idx
    return None


def _number(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _data_line(path: Path, start: int, stop: int, row: int) -> int:
    """The line number of data row ``row`` (0-based) of the byte range."""
    seen = -1
    for number, text in _lines(path, start, stop):
        if text.split(b"#", 1)[0].split():
            seen += 1
            if seen == row:
                return number
    raise AssertionError("row beyond the byte range")


class _Range(io.RawIOBase):
    """The bytes ``[start, stop)`` of a file, as a stream that ends there."""

    def __init__(self, path: Path, start: int, stop: int):
        self._fh = path.open("rb")
        self._fh.seek(start)
        self._left = stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self._left)
        got = self._fh.readinto(memoryview(b)[:n]) if n > 0 else 0
        self._left -= got
        return got

    def close(self) -> None:
        self._fh.close()
        super().close()


def _parse(path: Path, start: int, stop: int, dtype: str):
    """This range's rows with scikit-learn's reader: ``(data, indices, indptr, y)``."""
    _, load_svmlight_file = require(f"data file {path} (LIBSVM)")
    try:
        with io.BufferedReader(_Range(path, start, stop), 1 << 20) as stream:
            X, y = load_svmlight_file(stream, n_features=_UNBOUNDED, dtype=dtype, zero_based=False)
    except (ValueError, OverflowError) as exc:
        for number, text in _lines(path, start, stop):
            why = _problem(text)
            if why:
                raise UsageError(f"data file {path}: line {number}: {why}") from None
        raise UsageError(f"data file {path}: bytes {start}..{stop}: {exc}") from None
    bad = first_nonfinite(X)
    if bad is not None:
        row, col, value = bad
        line = _data_line(path, start, stop, row)
        raise UsageError(
            f"data file {path}: line {line}: expected finite values, got {col + 1}:{value}"
        )
    return X.data, X.indices, X.indptr, np.asarray(y, dtype=np.float64)


def read_part(comm, path: str, dtype: str, n_features: int | None):
    """Collective: this rank's rows of a LIBSVM file, and the file's dimension.

    Returns ``(X_part, y_part, first_row, n_rows)``: a CSR matrix of this rank's lines, its
    labels, the global index of its first row and the file's row count.
    """
    sp, _ = require(f"data file {path} (LIBSVM)")
    rank, size = comm.Get_rank(), comm.Get_size()
    p = Path(path)
    part, error = None, None
    try:
        start, stop = _byte_range(p, rank, size)
        part = _parse(p, start, stop, dtype)
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    data, indices, indptr, y = part
    top = max(comm.allgather(int(indices.max()) + 1 if indices.size else 0))
    width = top if n_features is None else n_features
    if width == 0:  # the same verdict on every rank
        raise UsageError(f"data file {path}: expected at least one INDEX:VALUE feature, got none")
    if top > width:
        error = None
        if indices.size and indices.max() >= width:
            row = int(np.searchsorted(indptr, int(np.argmax(indices >= width)), "right")) - 1
            line = _data_line(p, start, stop, row)
            error = UsageError(
                f"data file {p}: line {line}: expected feature indices <= {width} "
                f"(--features {width}), got {int(indices.max()) + 1}"
            )
        raise_together(comm, error)
    index_type = np.int32 if width < 2**31 else np.int64
    X = sp.csr_array(
        (data, indices.astype(index_type), indptr.astype(index_type)), shape=(y.size, width)
    )
    counts = comm.allgather(y.size)
    return X, y, sum(counts[:rank]), sum(counts)


def load_svmlight(comm, path: str, dtype: str, n_features: int | None):
    """Collective: every rank parses its share, then all ranks hold all rows (file order).

    Returns ``(X, y)``: CSR of shape (rows, features) and the labels as parsed.
    """
    sp, _ = require(f"data file {path} (LIBSVM)")
    X, y, _, n = read_part(comm, path, dtype, n_features)
    if n == 0:
        raise UsageError(f"data file {path}: no data lines")
    rows = comm.allgather(X.shape[0])
    nnz = comm.allgather(X.nnz)
    data = np.empty(sum(nnz), dtype=X.data.dtype)
    indices = np.empty(sum(nnz), dtype=X.indices.dtype)
    row_nnz = np.empty(n, dtype=X.indptr.dtype)
    y_all = np.empty(n, dtype=np.float64)
    comm.Allgatherv(X.data, [data, nnz])
    comm.Allgatherv(X.indices, [indices, nnz])
    comm.Allgatherv(np.diff(X.indptr), [row_nnz, rows])
    comm.Allgatherv(y, [y_all, rows])
    indptr = np.zeros(n + 1, dtype=row_nnz.dtype)
    np.cumsum(row_nnz, out=indptr[1:])
    return sp.csr_array((data, indices, indptr), shape=(n, X.shape[1])), y_all.astype(dtype)


def checked_matrix(m, where: str):
    """A scipy sparse matrix ``m`` read from a file, checked before anything indexes it: real
    numbers (complex ones were cast silently: nineteenth attack, X-H16), indices within its
    shape and a sorted ``indptr`` (out of range, they were heap corruption, a segmentation
    fault, or probabilities read from memory outside the arrays: X-H15)."""
    if not (np.issubdtype(m.dtype, np.number) or m.dtype == np.bool_) or np.issubdtype(
        m.dtype, np.complexfloating
    ):
        raise UsageError(f"{where}: expected real numbers in X, got dtype {m.dtype}")
    try:
        if hasattr(m, "check_format"):  # csr, csc, bsr
            m.check_format(full_check=True)
        elif m.format == "coo":
            for axis, idx in enumerate(m.coords):
                if idx.size and (idx.min() < 0 or idx.max() >= m.shape[axis]):
                    raise ValueError(f"an index of axis {axis} outside 0 to {m.shape[axis] - 1}")
    except ValueError as exc:
        raise UsageError(f"{where}: expected a well-formed sparse matrix, got {exc}") from None
    return m


def load_npz(x_path: Path, y_path: Path | None, dtype: str, n_features: int | None):
    """A ``scipy.sparse.save_npz`` archive as ``(X, y)``; labels in its array y or ``y_path``."""
    sp, _ = require(f"data file {x_path} (scipy sparse .npz)")
    for path in (x_path, y_path):  # a FIFO would block every rank (found beside L-H10)
        if path is not None:
            regular_file(path, "data file")
    try:
        X = sp.csr_array(checked_matrix(sp.load_npz(x_path), f"data file {x_path}"), dtype=dtype)
        if y_path is not None:
            y = np.load(y_path, allow_pickle=False)
        else:
            with np.load(x_path, allow_pickle=False) as archive:
                if "y" not in archive.files:
                    raise UsageError(
                        f"data file {x_path}: a sparse matrix without labels; expected an "
                        f"array y in the archive, or '--data {x_path},y.npy'"
                    )
                y = archive["y"]
    except FileNotFoundError as exc:
        raise UsageError(f"data file {exc.filename or x_path}: not found") from None
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise UsageError(
            f"data file {x_path}: not a readable sparse .npz archive ({exc})"
        ) from None
    except MemoryError:  # a member's header may claim any shape
        raise UsageError(
            f"data file {x_path}: expected a sparse .npz that fits in memory (each rank "
            "loads it whole)"
        ) from None
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise UsageError(
            f"data file {x_path}: expected one label per row ({X.shape[0]} rows), "
            f"got y of shape {y.shape}"
        )
    X.sort_indices()
    if n_features is not None:
        if n_features < X.shape[1]:
            raise UsageError(
                f"data file {x_path}: expected at most {n_features} features "
                f"(--features), got {X.shape[1]}"
            )
        X.resize((X.shape[0], n_features))
    return X, y.astype(dtype)
