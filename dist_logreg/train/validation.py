"""Validation of a :class:`~dist_logreg.train.config.TrainConfig`: every setting in range,
and in agreement with the others, the world size and the data.

Every rank computes the same verdict from the same inputs, so a ``UsageError`` is raised on
all ranks together and no rank is left waiting in a collective.
"""

from __future__ import annotations

import math
from typing import Any

from dist_logreg.collective import algorithms as table
from dist_logreg.collective.algorithms import COMPRESSORS, MPI_ALGORITHMS
from dist_logreg.errors import UsageError
from dist_logreg.schema import has_control
from dist_logreg.train.config import DTYPES, FORMATS, TrainConfig, total_steps
from dist_logreg.train.sampling import SAMPLINGS, SHUFFLES
from dist_logreg.train.syncmode import SYNCS, refusal

#: The longest ``--tag``: a label, in a plot's legend and a file name.
MAX_TAG = 200


def validate(cfg: TrainConfig, world_size: int | None = None, n_samples: int | None = None) -> None:
    """Raise ``UsageError`` for any setting out of range (every check below, in order).

    A library caller validates once with everything it knows. The command line validates
    the settings alone when it reads them (:func:`~dist_logreg.train.options.resolve`), and
    what depends on the world size and the data once both are known (:func:`validate_for_run`,
    at start-up). Every rank computes the same verdict from the same inputs, so it raises on
    all ranks together and no rank is left waiting in a collective.
    """
    for check in (_numbers, _data_and_model, _steps_and_optimizer, _communication, _records):
        check(cfg)
    validate_for_run(cfg, world_size, n_samples)


def validate_for_run(cfg: TrainConfig, world_size: int | None, n_samples: int | None) -> None:
    """The checks that need the world size or the number of data rows (None: unknown yet)."""
    if cfg.inject_fault is not None:
        _fault_in_run(cfg, world_size, n_samples)
    if world_size is not None:
        need(
            cfg.batch_size >= world_size,
            "--batch-size",
            f"at least the world size ({world_size} ranks), so every rank gets a row",
            cfg.batch_size,
        )
    if n_samples is not None:
        if world_size is not None:
            need(
                n_samples >= world_size,
                "number of samples",
                f"at least the world size ({world_size} ranks)",
                n_samples,
            )
        need(
            cfg.batch_size <= n_samples,
            "--batch-size",
            f"at most the number of samples ({n_samples})",
            cfg.batch_size,
        )


def need(ok: bool, what: str, expected: str, got: Any) -> None:
    """``UsageError`` "WHAT: expected EXPECTED, got GOT" unless ``ok``."""
    if not ok:
        raise UsageError(f"{what}: expected {expected}, got {got!r}")


def _numbers(cfg: TrainConfig) -> None:
    # Non-finite numbers pass the range checks below (inf > 0) and then train an infinite
    # model, or sleep or wait forever: refuse them first, for every float setting.
    for name in ("lr", "l2", "momentum", "epochs", "comm_timeout"):
        value = getattr(cfg, name)
        if value is not None:
            need(math.isfinite(value), _flag(name), "a finite number", value)
    # An empty path would silently mean "the default" (synthetic data, the current folder).
    for name in ("data", "out", "checkpoint_dir", "label_column"):
        value = getattr(cfg, name)
        if value is not None:
            need(value.strip() != "", _flag(name), "a non-empty value", value)
    need(cfg.seed >= 0, "--seed", "an integer >= 0 (numpy seeds are non-negative)", cfg.seed)
    if cfg.tag is not None:  # a label: 1 MB of it took report past 110 s, 1.1 GB (X-H14);
        shown = cfg.tag if len(cfg.tag) <= 60 else cfg.tag[:57] + "..."  # ESC acted (X-M3)
        need(len(cfg.tag) <= MAX_TAG, "--tag", f"a label of at most {MAX_TAG} characters", shown)
        need(not has_control(cfg.tag), "--tag", "a label without control characters", shown)
    need(cfg.samples >= 1, "--samples", "an integer >= 1", cfg.samples)
    if cfg.features is not None:
        need(cfg.features >= 1, "--features", "an integer >= 1", cfg.features)


def _data_and_model(cfg: TrainConfig) -> None:
    need(cfg.format in FORMATS, "--format", " or ".join(FORMATS), cfg.format)
    need(cfg.classes == 0 or cfg.classes >= 2, "--classes", "0 or an integer >= 2", cfg.classes)
    need(0 <= cfg.val_fraction < 1, "--val-fraction", "a number in [0, 1)", cfg.val_fraction)
    need(
        not (cfg.val_data and cfg.val_fraction),
        "--val-fraction",
        "0 with --val-data (one held-out set)",
        cfg.val_fraction,
    )
    need(cfg.eval_every >= 0, "--eval-every", "an integer >= 0", cfg.eval_every)


def _steps_and_optimizer(cfg: TrainConfig) -> None:
    need(cfg.batch_size >= 1, "--batch-size", "an integer >= 1", cfg.batch_size)
    if cfg.steps is not None:
        need(cfg.steps >= 1, "--steps", "an integer >= 1", cfg.steps)
    if cfg.epochs is not None:
        need(cfg.epochs > 0, "--epochs", "a number > 0", cfg.epochs)
    need(cfg.lr > 0, "--lr", "a number > 0", cfg.lr)
    need(cfg.l2 >= 0, "--l2", "a number >= 0", cfg.l2)
    need(0 <= cfg.momentum < 1, "--momentum", "a number in [0, 1)", cfg.momentum)
    need(cfg.dtype in DTYPES, "--dtype", " or ".join(DTYPES), cfg.dtype)
    need(cfg.shuffle in SHUFFLES, "--shuffle", " or ".join(SHUFFLES), cfg.shuffle)
    need(cfg.sampling in SAMPLINGS, "--sampling", " or ".join(SAMPLINGS), cfg.sampling)
    if cfg.data and "{rank}" in cfg.data:
        need(
            cfg.sampling == "sharded",
            "--data with {rank}",
            "--sampling sharded (each rank reads its own file)",
            cfg.sampling,
        )


def _communication(cfg: TrainConfig) -> None:
    known = table.known(cfg.allreduce)  # hierarchical-2d:rabenseifner too
    need(known, "--allreduce", " or ".join(table.names() + table.INTER_SPELLINGS), cfg.allreduce)
    need(cfg.compress in COMPRESSORS, "--compress", " or ".join(COMPRESSORS), cfg.compress)
    need(cfg.sync in SYNCS, "--sync", " or ".join(SYNCS), cfg.sync)
    if cfg.sync == "sharded" and known and (why := refusal(cfg)):
        raise UsageError(why)
    if cfg.dtype in DTYPES:
        item = 4 if cfg.dtype == "float32" else 8
        need(
            cfg.bucket_bytes == 0 or cfg.bucket_bytes >= item,
            "--bucket-bytes",
            f"0 (no buckets) or at least one element ({item} bytes at {cfg.dtype})",
            cfg.bucket_bytes,
        )
    if cfg.mpi_algorithm is not None:
        need(
            cfg.mpi_algorithm in MPI_ALGORITHMS,
            "--mpi-algorithm",
            " or ".join(MPI_ALGORITHMS),
            cfg.mpi_algorithm,
        )
        need(
            known and table.get(cfg.allreduce).library,
            "--mpi-algorithm",
            f"--allreduce {table.MPI.name} (it forces the MPI library's own algorithm)",
            cfg.allreduce,
        )
    if cfg.ranks_per_node is not None:
        need(cfg.ranks_per_node >= 1, "--ranks-per-node", "an integer >= 1", cfg.ranks_per_node)
        aware = [a.name for a in table.of() if a.topology_aware]
        need(
            known and table.get(cfg.allreduce).topology_aware,
            "--ranks-per-node",
            f"--allreduce {' or '.join(aware)} (a topology-aware algorithm)",
            cfg.allreduce,
        )


def _records(cfg: TrainConfig) -> None:
    need(cfg.log_every >= 0, "--log-every", "an integer >= 0", cfg.log_every)
    need(cfg.checkpoint_every >= 0, "--checkpoint-every", "an integer >= 0", cfg.checkpoint_every)
    need(cfg.keep_checkpoints >= 1, "--keep-checkpoints", "an integer >= 1", cfg.keep_checkpoints)
    from dist_logreg.train.faults import MAX_WAIT_S, MIN_TIMEOUT_S

    t = cfg.comm_timeout  # 1e300 was an OverflowError, 1e-300 a stall in MPI_Init (S-H5, S-M7)
    what = f"0 (off) or {MIN_TIMEOUT_S:g} to {MAX_WAIT_S:g} seconds"
    need(t == 0 or MIN_TIMEOUT_S <= t <= MAX_WAIT_S, "--comm-timeout", what, t)
    if cfg.inject_fault is not None:
        from dist_logreg.train.faults import parse_fault

        parse_fault(cfg.inject_fault)  # its format: a UsageError naming the part
    if cfg.tag is not None:
        need(bool(cfg.tag.strip()), "--tag", "a non-empty label", cfg.tag)
    need(cfg.check_every >= 0, "--check-every", "an integer >= 0", cfg.check_every)
    need(cfg.flush_every >= 0, "--flush-every", "an integer >= 0", cfg.flush_every)
    need(cfg.slow_factor > 0, "--slow-factor", "a number > 0", cfg.slow_factor)


def _fault_in_run(cfg: TrainConfig, world_size: int | None, n_samples: int | None) -> None:
    from dist_logreg.train.faults import attempt, parse_fault

    fault = parse_fault(cfg.inject_fault)
    if world_size is not None and attempt() == 0:  # later attempts ignore the fault
        need(
            fault.rank < world_size,
            "--inject-fault rank",
            f"a rank below the world size ({world_size})",
            fault.rank,
        )
    if n_samples is not None:  # a fault at or past the last step would never fire
        last = total_steps(cfg, n_samples) - 1
        need(
            fault.step <= last,
            "--inject-fault step",
            f"a step <= {last} (the last)",
            fault.step,
        )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
