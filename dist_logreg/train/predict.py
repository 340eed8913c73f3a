"""``dist-logreg predict``: a trained model's classes and probabilities for every row.

Collective over ``comm``: rank r predicts rows ``[r n/p, (r+1) n/p)`` (of a LIBSVM file it
parses only its own lines); rank 0 writes the CSV in row order, receiving each rank's part
in turn with buffer-based ``Recv``. With labels in the data, the mean log-loss and the
accuracy are added up with one small allreduce and printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

from dist_logreg.errors import RunError, UsageError, raise_together
from dist_logreg.files import check_output, not_an_input, output_parts, read_json, regular_file
from dist_logreg.record.outputs import RESULT_FILES
from dist_logreg.train import models, sparse
from dist_logreg.train.data import first_nonfinite, rows_maybe_labeled
from dist_logreg.train.options import read_saved
from dist_logreg.units import format_loss


def load_model(model_dir: Path, config: bool = True):
    """``(model, params, training config)`` from a run's output directory; the config
    (``config.json`` beside ``model.npz``, read as ``train --config`` reads a file:
    options.read_saved) is None where there is none, or where ``config`` is False (the rows
    come from ``--data``: the run's settings are not read)."""
    from dist_logreg.train.readers import npz_arrays

    path = model_dir / "model.npz" if model_dir.is_dir() else model_dir
    if not os.path.lexists(path):
        raise UsageError(f"--model {path}: not found (expected a run's --out directory)")
    # a regular file (a FIFO hung), each member's header held to what it holds (L-H12)
    z = npz_arrays(path, "--model", ("coef", "intercept"), ("classes",))
    coef, intercept, classes = z["coef"], z["intercept"], z.get("classes")
    problem = check_arrays(coef, intercept, classes)
    if problem:
        raise UsageError(f"--model {path}: {problem}")
    mdl, params = models.from_arrays(coef.astype(np.float64), intercept.astype(np.float64), classes)
    cfg = None
    saved = config_path(model_dir)
    if config and os.path.lexists(saved):  # a FIFO or folder there: refused by its reader
        cfg = read_saved(saved)  # each key's type and bounds: a damaged file is one line
    return mdl, params, cfg


def config_path(model: Path) -> Path:
    """The ``config.json`` of the run whose ``--model`` is ``model`` (its folder, or its
    ``model.npz``)."""
    return (model if model.is_dir() else model.parent) / "config.json"


def _finite(name: str, a: np.ndarray) -> str | None:
    """What is wrong with the numbers of one array of ``model.npz``, or None."""
    if a.dtype.kind not in "biuf":
        kind = "complex" if a.dtype.kind == "c" else "not numbers"
        return f"{name}: expected real numbers, got {a.dtype} ({kind})"
    bad = ~np.isfinite(a)
    if bad.any():
        i = np.unravel_index(int(np.argmax(bad)), a.shape) if a.ndim else ()
        where = f"{name}[{', '.join(map(str, i))}]" if a.ndim else name
        return f"{name}: expected finite numbers, got {where} = {a[i]}"
    return None


def check_arrays(coef: np.ndarray, intercept: np.ndarray, classes) -> str | None:
    """What is wrong with ``model.npz``'s arrays, or None: dtypes, finiteness, and shapes
    that agree (binary: ``coef (d,)``, one intercept, 2 classes; softmax: ``coef (K, d)``,
    ``intercept (K,)``, K classes), classes distinct and increasing."""
    for name, a in (("coef", coef), ("intercept", intercept)):
        if why := _finite(name, a):
            return why
    if coef.ndim not in (1, 2) or coef.size == 0:
        return f"coef: expected 1 or 2 dimensions ((features,) or (classes, features)), got shape {coef.shape}"  # noqa: E501
    if coef.ndim == 1:
        k = 2
        if intercept.size != 1:
            return f"intercept: expected one number for a binary model, got shape {intercept.shape}"  # noqa: E501
    else:
        k = coef.shape[0]
        if k < 2:
            return f"coef: expected at least 2 rows (one per class), got shape {coef.shape}"
        if intercept.shape != (k,):
            return f"intercept: expected shape ({k},) (one per class), got {intercept.shape}"
    if classes is None:
        return None
    if classes.ndim != 1 or classes.size != k:
        what = (
            f"for a binary model (coef of shape {coef.shape})"
            if coef.ndim == 1
            else (f"(coef has {k} rows)")
        )
        return f"classes: expected {k} classes {what}, got {classes.size}"
    if why := _finite("classes", classes):
        return why
    if (np.diff(classes) <= 0).any():
        return (
            f"classes: expected distinct classes in increasing order, got {classes.tolist()[:10]}"  # noqa: E501
        )
    return None


def my_rows(comm, spec: str | None, fmt: str, label_column, d: int, cfg):
    """Collective: ``(X, y or None, first_row, n_rows)`` of this rank's share of the data."""
    size, rank = comm.Get_size(), comm.Get_rank()
    if spec and sparse.is_svmlight(spec, fmt):
        X, y, first, n = sparse.read_part(comm, spec, "float64", d)
        return X, y, first, n
    X = y = None
    error = None
    try:
        if spec:
            X, y = rows_maybe_labeled(spec, d, label_column)
        elif cfg is not None:
            from dist_logreg.train.prepare import training_rows  # the run's own data

            # every row once: a sharded run's shards are slices of one set, and each rank
            # took its slice of its own shard again (1000 rows predicted as 500 at 2 ranks)
            whole = dataclasses.replace(cfg, dtype="float64", sampling="global")
            ds = training_rows(comm, whole)
            X, y = ds.X, ds.y
        else:
            raise UsageError("--data: expected a data file (the model has no config.json)")
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    n = X.shape[0]
    lo, hi = rank * n // size, (rank + 1) * n // size
    part = X[lo:hi] if sparse.is_sparse(X) else np.asarray(X[lo:hi], dtype=np.float64)
    return part, None if y is None else np.asarray(y[lo:hi]), lo, n


def _found(data: str | None) -> None:
    """The run's data files (its config.json's ``data``) exist from this folder: a relative
    path is read from where predict runs (seventeenth attack, S-M1)."""
    missing = [x for x in (data or "").split(",") if x and not Path(x).exists()]
    if missing:
        raise UsageError(
            f"the run's data {missing[0]} (its config.json's data): not found from this folder "
            "(a relative path is read from the folder predict runs in); expected --data PATH, "
            "or predict run from the folder train ran in"
        )


def same_rows(model: Path, cfg, n: int) -> None:
    """The run's data read again holds the training rows its ``summary.json`` records (a
    file of the same name elsewhere was predicted silently: seventeenth attack, S-M1)."""
    try:
        got = read_json(model / "summary.json", "summary.json")["data"]["samples"]
    except (UsageError, OSError, KeyError, TypeError):
        return  # no summary (a run that died): nothing to hold the rows to
    train = n - (round(cfg.val_fraction * n) if cfg.val_fraction else 0)
    if isinstance(got, int) and not isinstance(got, bool) and got >= 1 and train != got:
        raise UsageError(
            f"the run's data {cfg.data} (its config.json's data): expected the {got} training "
            f"rows its summary.json records, got {train}{' of ' + str(n) if train != n else ''}"
            " (another file of that name?); expected --data with the rows to predict"
        )


def class_index(y: np.ndarray, classes: np.ndarray, first: int, where: str) -> np.ndarray:
    """Labels as indices into the model's classes; ``UsageError`` names the first stranger."""
    idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    ok = classes[idx] == y
    if not ok.all():
        i = int(np.argmin(ok))
        shown = ", ".join(str(c) for c in classes[:10]) + (", ..." if len(classes) > 10 else "")
        raise UsageError(
            f"{where}: expected labels among the model's classes ({shown}), "
            f"got y[{first + i}] = {y[i]}"
        )
    return idx


def _inputs(comm, args, local):
    """The model, its weights and the run's config, every input and output checked before
    any row is read (``UsageError``)."""
    from dist_logreg.train.startup import check_synthetic_memory

    loaded = load_model(Path(args.model), config=not args.data)
    cfg = loaded[2]
    if cfg is not None and cfg.data and "{rank}" in cfg.data:  # before it is opened (P-M8)
        raise UsageError(
            f"--data: expected the rows to predict: the run read a file per rank "
            f"(--data {cfg.data}), which its config cannot join again"
        )
    if cfg is not None and not args.data:
        _found(cfg.data)
    for part in (args.data or (cfg.data if cfg else None) or "").split(","):
        if part and not Path(part).is_dir():  # a FIFO hung, /dev/zero grew (U-H4)
            regular_file(part, "data file")
    if cfg is not None and not cfg.data:  # the run's synthetic set, built again
        try:
            check_synthetic_memory(
                dataclasses.replace(cfg, dtype="float64"),
                local,
                "smaller samples or features there (or classes, for a K-class set), "
                "or --data with the rows to predict",
            )
        except UsageError as exc:
            raise UsageError(f"config file {config_path(Path(args.model))}: {exc}") from None
    if args.out and comm.Get_rank() == 0:  # rank 0 writes it: fail now, not after
        data = args.data or (cfg.data if cfg is not None else None) or ""
        not_an_input(args.out, data.split(","), "the data file it predicts")
        model = Path(args.model)  # nor the model, its config (Q-M7), its summary, also
        folder = model if model.is_dir() else model.parent  # when --model is the file
        not_an_input(args.out, [folder / "model.npz", model], "the model it predicts with")
        run = [folder / n for n in ("config.json", *RESULT_FILES)]  # (S-M3, U-M6)
        not_an_input(args.out, run, "a file of the run it predicts with")
        check_output(args.out, "--out", getattr(args, "force", False))
    return loaded


def run(comm, args) -> int:
    """Collective: predict, write the CSV (rank 0, row order), print loss and accuracy."""
    from dist_logreg.train.startup import ranks_sharing_memory

    local = ranks_sharing_memory(comm)  # collective: before any rank may fail
    error, loaded = None, None
    try:
        loaded = _inputs(comm, args, local)
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    mdl, params, cfg = loaded
    spec = args.data or (cfg.data if cfg is not None else None)
    fmt = args.format if args.data else (cfg.format if cfg else "auto")
    column = args.label_column if args.data else (cfg.label_column if cfg else None)
    X, y, first, n = my_rows(comm, spec, fmt, column, mdl.n_features, cfg)
    error, idx = None, None
    try:
        if n == 0:  # an empty LIBSVM file predicted "0 rows" with exit 0 (U-M3)
            raise UsageError(f"data file {spec}: expected at least one row to predict, got none")
        if (bad := first_nonfinite(X)) is not None:  # nan written with exit 0 (U-H16)
            raise UsageError(
                f"data {spec}: expected finite features, got X[{first + bad[0]}, {bad[1]}] = "
                f"{bad[2]}"
            )
        if not args.data and cfg is not None and cfg.data and Path(args.model).is_dir():
            same_rows(Path(args.model), cfg, n)
        if X.shape[1] != mdl.n_features:
            where = f"data {spec}" if spec else "the run's synthetic data (its config.json)"
            raise UsageError(
                f"{where}: expected {mdl.n_features} features (the model's), got {X.shape[1]}"
                + (" besides its label column" if y is not None else "")  # R-L1
            )
        if y is not None:
            idx = class_index(y, np.asarray(mdl.classes), first, f"data {spec}")
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    with np.errstate(over="ignore", invalid="ignore"):  # a coef of 1e308 wrote nan (U-H15)
        scores, proba = mdl.scores(X, params), mdl.proba(X, params)
    error = None
    if not (np.isfinite(scores).all() and np.isfinite(proba).all()):
        error = UsageError(
            f"--model {args.model}: expected weights whose logits stay finite on these rows, "
            f"got {np.count_nonzero(~np.isfinite(scores))} logit(s) that overflow"
        )
    raise_together(comm, error)
    predicted = mdl.predict_index(scores).astype(np.int64)
    sums = np.zeros(3)
    if idx is not None:
        sums[:] = mdl.loss_terms(scores, idx).sum(), np.count_nonzero(predicted == idx), idx.size
    sums = comm.allreduce(sums)
    _write(comm, args.out, getattr(args, "force", False), mdl, predicted, proba)
    if comm.Get_rank() == 0:
        stream = sys.stdout if args.out else sys.stderr
        where = f" -> {args.out}" if args.out else ""
        line = f"predict: {n} rows, {mdl.kind} model ({mdl.n_classes} classes){where}"
        if sums[2]:
            loss, accuracy = format_loss(sums[0] / sums[2]), 100 * sums[1] / sums[2]
            line += f"; log-loss {loss}  accuracy {accuracy:.2f}%"
        print(line, file=stream, flush=True)
    return 0


def _write(comm, out: str | None, force: bool, mdl, predicted, proba) -> None:
    """Rank 0 writes the header and every rank's rows in rank (= row) order: to standard
    output, or to a temporary file beside ``out`` that takes its name once every row is in
    (files.output_parts: an interrupt or a failure leaves nothing under ``out``)."""
    rank = comm.Get_rank()
    counts = comm.allgather(predicted.size)  # LIBSVM parts follow lines, not n/p
    error = None
    if rank != 0:
        comm.Send(np.ascontiguousarray(predicted), dest=0, tag=1)
        comm.Send(np.ascontiguousarray(proba, dtype=np.float64), dest=0, tag=2)
    else:
        try:
            with contextlib.ExitStack() as stack:
                fh = sys.stdout
                if out:
                    try:
                        fh = stack.enter_context(output_parts(out, "--out", force))
                    except UsageError as exc:  # the parts are received all the same
                        fh, error = None, exc
                error = _rows(comm, fh, out, mdl, predicted, proba, counts) or error
                if error is not None:
                    raise error  # the temporary file is removed, nothing takes the name
        except RunError as exc:
            error = exc
    raise_together(comm, error)


def _rows(comm, fh, out: str | None, mdl, predicted, proba, counts) -> RunError | None:
    """Rank 0: receive every rank's rows in order and write them to ``fh`` (None: receive
    only); the first write error, or None. Every part is received even after a failure, so
    no rank is left waiting in its ``Send``."""
    classes = np.asarray(mdl.classes)
    K = proba.shape[1]
    error = None
    if fh is not None:
        try:
            fh.write(",".join(["label", *(f"p_{c}" for c in classes.tolist())]) + "\n")
        except BrokenPipeError:  # `predict ... | head`: the reader has what it wanted
            fh = _devnull_stdout()
        except OSError as exc:
            error = RunError(f"--out {out}: writing failed: {exc.strerror or exc}")
    for r in range(comm.Get_size()):
        if r == 0:
            part_pred, part_proba = predicted, proba
        else:
            m = counts[r]
            part_pred, part_proba = np.empty(m, np.int64), np.empty((m, K))
            comm.Recv(part_pred, source=r, tag=1)
            comm.Recv(part_proba, source=r, tag=2)
        if error is None and fh is not None:
            try:
                table = np.column_stack([classes[part_pred], part_proba])
                fmt = ["%d" if np.issubdtype(classes.dtype, np.integer) else "%g"]
                np.savetxt(fh, table, fmt=fmt + ["%.10g"] * K, delimiter=",")
            except BrokenPipeError:
                fh = _devnull_stdout()
            except OSError as exc:
                error = RunError(
                    f"--out {out or '(standard output)'}: writing failed: {exc.strerror or exc}"
                )
    if error is None and fh is not None:
        try:
            fh.flush()  # a full disk shows here, before the rename
        except BrokenPipeError:
            _devnull_stdout()
        except OSError as exc:
            error = RunError(
                f"--out {out or '(standard output)'}: writing failed: {exc.strerror or exc}"
            )
    return error


def _devnull_stdout():
    """Send the rest of standard output nowhere (no second broken-pipe error at exit)."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)
    return sys.stdout
