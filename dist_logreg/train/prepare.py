"""The data and the model of a run (collective): training rows, held-out rows, labels, model.

Every step that can fail on some ranks only (reading a file) ends in ``raise_together``, so
all ranks fail with one message. ``train``, ``predict`` and the tests share these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dist_logreg.errors import UsageError, raise_together
from dist_logreg.train import data as data_mod
from dist_logreg.train import labels as labels_mod
from dist_logreg.train import models, shards
from dist_logreg.train.config import DEFAULT_FEATURES, TrainConfig
from dist_logreg.train.evaluate import split_holdout


@dataclass
class Prepared:
    """What a training run works on."""

    ds: data_mod.Dataset
    val: data_mod.Dataset | None
    model: object  # models.Binary or models.Softmax
    labels: labels_mod.Labels


def load_any(
    comm, spec: str, dtype: str, fmt: str = "auto", label_column=None, n_features=None
) -> data_mod.Dataset:
    """Collective: any ``--data`` form, by the table of readers (``data.READERS``); LIBSVM
    files are parsed in parts by all ranks."""
    ds, error = None, None
    try:
        ds = data_mod.reader_for(spec, fmt).read(comm, spec, dtype, label_column, n_features)
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    return ds


def synthetic_classes(samples: int, features: int, classes: int, seed: int, dtype: str):
    """A K-class synthetic set: standard normal features, labels drawn through a softmax
    model with a fixed true weight matrix (logit standard deviation about 2 per class).

    Built in seeded blocks like :func:`dist_logreg.train.data.synthetic`, so every rank
    makes the same rows and they do not depend on the world size.
    """
    truth = np.random.default_rng([seed, 0x7EE, classes])
    true_coef = truth.standard_normal((classes, features)) * (2.0 / np.sqrt(features))
    X = np.empty((samples, features), dtype=dtype)
    y = np.empty(samples, dtype=dtype)
    for block, start in enumerate(range(0, samples, data_mod.SYNTH_BLOCK)):
        stop = min(start + data_mod.SYNTH_BLOCK, samples)
        rng = np.random.default_rng([seed, 0xDA7A, block, classes])
        xb = rng.standard_normal((stop - start, features))
        z = xb @ true_coef.T
        p = np.exp(z - z.max(axis=1, keepdims=True))
        cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
        X[start:stop] = xb
        y[start:stop] = np.minimum(
            (rng.random(stop - start)[:, None] > cum).sum(axis=1), classes - 1
        )
    source = f"synthetic(samples={samples}, features={features}, classes={classes}, seed={seed})"
    return data_mod.Dataset(X, y, source, true_coef, None, checked=True)


def training_rows(comm, cfg: TrainConfig) -> data_mod.Dataset:
    """Collective: the rows ``--data`` names, or the synthetic set of the settings; with
    ``--sampling sharded`` only this rank's shard (:mod:`dist_logreg.train.shards`)."""
    # LIBSVM: all ranks parse one file together, which is not cut into shards
    svmlight = bool(cfg.data) and data_mod.is_collective(
        cfg.data.replace("{rank}", "0"), cfg.format
    )
    if cfg.sampling == "sharded" and (svmlight or cfg.classes):
        error = UsageError(
            "--sampling sharded: expected dense binary data (a synthetic set or .npy/.npz/CSV "
            "files), got "
            + ("a LIBSVM file" if svmlight else f"--classes {cfg.classes}")
            + "; use --sampling global"
        )
        raise_together(comm, error)
    if svmlight or (cfg.data and cfg.sampling != "sharded"):
        return load_any(comm, cfg.data, cfg.dtype, cfg.format, cfg.label_column, cfg.features)
    features = cfg.features or DEFAULT_FEATURES
    if cfg.classes:
        return synthetic_classes(cfg.samples, features, cfg.classes, cfg.seed, cfg.dtype)
    ds, error = None, None
    try:  # the synthetic set, or this rank's shard of it or of a file
        ds = shards.for_rank(cfg, comm.Get_size(), comm.Get_rank())
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    return ds


def prepare(comm, cfg: TrainConfig, say=None) -> Prepared:
    """Collective: the training rows, their labels and model, and the held-out rows."""
    ds = training_rows(comm, cfg)
    info, error = None, None
    try:
        sharded = cfg.sampling == "sharded"
        info, ds.y = labels_mod.resolve(ds.y, cfg.classes, f"data {ds.source}", sharded)
    except UsageError as exc:
        error = exc
    labels_mod.agree(comm, info, error, cfg.sampling == "sharded")
    val = None
    if cfg.val_data:
        val = held_out(comm, cfg, ds.n_features, info)
    elif cfg.val_fraction:
        ds, val = split_holdout(ds, cfg.val_fraction, cfg.seed)
    model = models.make(ds.n_features, info.n_classes, info.softmax, info.classes)
    if say is not None:
        say(describe(model, info))
        if val is not None:
            when = f"every {cfg.eval_every} steps and " if cfg.eval_every else ""
            say(f"held-out {val.n_samples} rows: {val.source}, evaluated {when}at the end")
    return Prepared(ds, val, model, info)


def held_out(comm, cfg: TrainConfig, n_features: int, info) -> data_mod.Dataset:
    """Collective: the ``--val-data`` rows, checked against the training features and labels."""
    try:
        val = load_any(comm, cfg.val_data, cfg.dtype, cfg.format, cfg.label_column, n_features)
    except UsageError as exc:  # the readers name --data: a bad --val-data was named so (P-M5)
        text = str(exc)
        text = text[len("--data ") :] if text.startswith("--data ") else f"{cfg.val_data}: {text}"
        raise UsageError(f"--val-data {text}") from None
    error = None
    try:
        if val.n_features != n_features:
            raise UsageError(
                f"--val-data {cfg.val_data}: expected {n_features} features (as the "
                f"training data), got {val.n_features}"
            )
        val.y = labels_mod.apply(val.y, info, f"--val-data {cfg.val_data}")
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    data_mod.check_values(comm, val, info.n_classes)
    return val


def describe(model, info) -> str:
    """One line: the model and its gradient buffer (the allreduce payload)."""
    d = model.n_features
    shape = (
        f"{d} features" if model.kind == "binary" else f"{model.n_classes} classes x {d} features"
    )
    note = f"; {info.note}" if info.note else ""
    return (
        f"model: {model.kind}, {shape}: {model.n_params:,} parameters, "
        f"{model.buffer_size:,} elements per gradient allreduce{note}"
    )


def summary_keys(model, info, result) -> dict:
    """The ``model`` and ``validation`` entries of ``summary.json``."""
    keys = {
        "model": {
            "kind": model.kind,
            "classes": [c.item() if hasattr(c, "item") else c for c in model.classes],
            "features": model.n_features,
            "parameters": model.n_params,
            "buffer_elements": model.buffer_size,
            "labels_note": info.note,
        }
    }
    if result.evals:
        last = result.evals[-1]
        keys["validation"] = {
            "loss": last["loss"],
            "accuracy": last["accuracy"],
            "auc": last["auc"],
            "loss_note": "mean log-loss on the held-out rows (no penalty term)",
            "history": result.evals,
            "eval_time_s": result.eval_ns * 1e-9,
        }
    return keys
