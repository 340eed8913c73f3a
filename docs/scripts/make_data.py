"""Example data files for the docs: LIBSVM files of sparse rows with K classes.

    python docs/scripts/make_data.py                  # train.svm, val.svm, test.svm here
    python docs/scripts/make_data.py --rows 20000 --features 300 --classes 4 --density 0.1

Rows have ``density`` non-zero standard-normal features; labels are drawn through a softmax
model with fixed random weights, so a model can learn them but not perfectly. The files are
written with 1-based indices, as LIBSVM does, and depend only on ``--seed``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def write_svm(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    with path.open("w") as f:
        for row, label in zip(X, y, strict=True):
            nz = np.flatnonzero(row)
            pairs = " ".join(f"{j + 1}:{row[j]:.6g}" for j in nz)
            f.write(f"{label} {pairs}\n")


def make(rows: int, features: int, classes: int, density: float, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features)) * (rng.random((rows, features)) < density)
    W = rng.standard_normal((classes, features)) * 3.0 / np.sqrt(density * features)
    z = X @ W.T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) > rng.random((rows, 1))).argmax(axis=1)
    return X, y


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=4000, help="training rows (default 4000)")
    ap.add_argument("--held-out", type=int, default=1000, help="rows of val.svm, test.svm")
    ap.add_argument("--features", type=int, default=100, help="columns (default 100)")
    ap.add_argument("--classes", type=int, default=4, help="label values 0..K-1 (default 4)")
    ap.add_argument("--density", type=float, default=0.1, help="share of non-zeros (0.1)")
    ap.add_argument("--seed", type=int, default=0, help="the one seed (default 0)")
    ap.add_argument("--dir", default=".", help="where the files go (default: here)")
    a = ap.parse_args(argv)
    n = a.rows + 2 * a.held_out
    X, y = make(n, a.features, a.classes, a.density, a.seed)
    out = Path(a.dir)
    parts = {"train.svm": slice(0, a.rows), "val.svm": slice(a.rows, a.rows + a.held_out)}
    parts["test.svm"] = slice(a.rows + a.held_out, n)
    for name, rows in parts.items():
        write_svm(out / name, X[rows], y[rows])
    print(f"wrote {', '.join(parts)}: {a.rows} / {a.held_out} / {a.held_out} rows x {a.features}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
