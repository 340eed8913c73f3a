"""Which model the labels ask for: binary 0/1, -1/+1 (mapped to 0/1), or K classes 0..K-1.

Every rank holds the full label vector (it is one number per row), so each decides from
its own copy, with no communication; :func:`agree` then checks that all ranks decided the
same class count (each opens its files itself, and they could differ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dist_logreg.errors import UsageError, raise_together


@dataclass(frozen=True)
class Labels:
    """What the labels mean.

    ``n_classes`` counts the class indices 0..n_classes-1 that ``y`` now holds;
    ``classes`` are the original label values of those indices (``[-1, 1]`` after a
    mapping); ``softmax`` says whether a K-class model is trained; ``note`` is said in the
    output (a mapping, for instance) or None.
    """

    n_classes: int
    classes: tuple
    softmax: bool
    note: str | None = None


def resolve(
    y: np.ndarray, requested: int, where: str, sharded: bool = False
) -> tuple[Labels, np.ndarray]:
    """Decide the label scheme of ``y``; return it and the labels as class indices.

    -1/+1 labels come back mapped to 0/1 (a new array; ``y`` may be a read-only map).

    ``requested`` is ``--classes``: 0 infers (0/1 or -1/+1: binary; 0..K-1 with every class
    present: K classes), K >= 2 trains a K-class softmax model (classes may be absent).
    Raises ``UsageError`` naming ``where`` and the first offending row. ``sharded``: ``y``
    is one rank's shard (``--sampling sharded``), so a missing class is the sampling's doing
    and ``--classes`` (which sharded sampling refuses) is not the advice.
    """
    bad = ~np.isfinite(y) | (y != np.round(y))
    if bad.any():
        i = int(np.argmax(bad))
        raise UsageError(f"{where}: expected whole-number class labels, got y[{i}] = {y[i]}")
    if y.size and y.min() == -1 and requested == 0:
        other = (y != -1) & (y != 1)
        if other.any():
            i = int(np.argmax(other))
            first = int(np.argmin(y))
            raise UsageError(
                f"{where}: expected labels -1 or +1 (y[{first}] is -1), got y[{i}] = {y[i]}"
            )
        mapped = (y == 1).astype(y.dtype)
        return Labels(2, (-1, 1), False, "labels -1/+1 mapped to 0/1"), mapped
    negative = y < 0
    if negative.any():
        i = int(np.argmax(negative))
        scheme = f"0..{requested - 1} (--classes {requested})" if requested else "0..K-1 or -1/+1"
        raise UsageError(f"{where}: expected labels {scheme}, got y[{i}] = {y[i]}")
    top = int(y.max()) if y.size else 0
    if not requested and top >= max(y.size, 1 << 20):  # more classes than rows: refused
        i = int(np.argmax(y))  # before counting them (one counter per class: 5e9 is 37 GiB)
        raise UsageError(
            f"{where}: expected labels 0..K-1 with a row of every class, got y[{i}] = {y[i]:g}, "
            f"which would need {top + 1} classes in {y.size} rows"
            + ("" if sharded else " (or give --classes K)")
        )
    if requested:
        if top >= requested:
            i = int(np.argmax(y >= requested))
            raise UsageError(
                f"{where}: expected labels 0..{requested - 1} (--classes {requested}), "
                f"got y[{i}] = {y[i]}"
            )
        return Labels(requested, tuple(range(requested)), True), y
    if top <= 1:
        one = y.size and (y == y[0]).all()
        note = None
        if one and not sharded:
            note = (
                f"warning: every training label is {int(y[0])}: the model can only learn to "
                f"predict {int(y[0])}, and an accuracy of 100% says nothing (check the "
                "labels or --label-column)"
            )
        return Labels(2, (0, 1), False, note), y
    counts = np.bincount(y.astype(np.intp), minlength=top + 1)
    if not counts.all():
        missing = int(np.argmin(counts))
        seen = ", ".join(str(k) for k in np.flatnonzero(counts))
        advice = "" if sharded else f" (or give --classes {top + 1})"
        raise UsageError(
            f"{where}: expected labels 0..{top} with a row of every class{advice}, got no "
            f"row of class {missing} (labels seen: {seen})" + (SHARDED_HINT if sharded else "")
        )
    return Labels(top + 1, tuple(range(top + 1)), True), y


def apply(y: np.ndarray, labels: Labels, where: str) -> np.ndarray:
    """Held-out labels checked against the training scheme, as class indices (-1/+1 mapped)."""
    allowed = np.asarray(labels.classes, dtype=np.float64)
    ok = np.isin(y, allowed)
    if not ok.all():
        i = int(np.argmin(ok))
        k = len(labels.classes)
        shown = "-1, +1" if k == 2 and labels.classes[0] == -1 else f"0..{k - 1}"
        raise UsageError(
            f"{where}: expected labels of the training classes ({shown}), got y[{i}] = {y[i]}"
        )
    if labels.classes == (-1, 1):
        return (y == 1).astype(y.dtype)
    return y


SHARDED_HINT = (
    "; with --sampling sharded each rank sees only its shard's labels: sorted or "
    "multi-class data needs --sampling global"
)


def agree(comm, labels: Labels | None, error: UsageError | None, sharded: bool = False) -> None:
    """Collective: fail every rank together on an error, or if ranks decided differently."""
    raise_together(comm, error)
    seen = comm.allgather((labels.n_classes, labels.softmax))
    if len(set(seen)) > 1:
        raise UsageError(
            "ranks disagree on the number of classes (each read the labels itself): "
            + ", ".join(f"rank {r}: {k}" for r, (k, _) in enumerate(seen))
            + (SHARDED_HINT if sharded else "")
        )
