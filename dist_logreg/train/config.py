"""The training configuration: one frozen object, its defaults and its validation.

Precedence: built-in defaults < ``--config FILE.toml`` < command-line flags (both read in
:mod:`dist_logreg.train.options`). The resolved configuration is saved next to every
result (``config.json``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dist_logreg.comm.names import ALGORITHMS, COMPRESSORS, MPI_ALGORITHMS
from dist_logreg.errors import UsageError
from dist_logreg.train.sampling import SAMPLINGS, SHUFFLES

DTYPES = ("float32", "float64")
DEFAULT_STEPS = 200


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Help texts double as the ``--help`` strings."""

    samples: int = field(
        default=32768,
        metadata={"help": "rows of the built-in synthetic data set (ignored with --data)"},
    )
    features: int = field(
        default=128,
        metadata={
            "help": "columns of the synthetic data set; the allreduce carries "
            "features+3 numbers per step, so this is the payload-size dial "
            "(ignored with --data)"
        },
    )
    batch_size: int = field(
        default=1024,
        metadata={
            "help": "GLOBAL mini-batch rows per step, split across ranks in contiguous "
            "slices whose sizes differ by at most one"
        },
    )
    steps: int | None = field(
        default=None,
        metadata={
            "help": f"optimizer steps to run (default {DEFAULT_STEPS} when neither "
            "--steps nor --epochs is given; with both, the first bound reached ends "
            "the run)"
        },
    )
    epochs: float | None = field(
        default=None,
        metadata={
            "help": "passes over the data; an epoch is floor(samples / batch-size) steps "
            "(the last partial batch of each shuffled epoch is dropped)"
        },
    )
    lr: float = field(default=0.5, metadata={"help": "learning rate (> 0)"})
    l2: float = field(
        default=1e-4,
        metadata={
            "help": "L2 penalty: objective = mean log-loss + (l2/2)*||w||^2, intercept not "
            "penalized (scikit-learn's C = 1/(l2*samples)); >= 0"
        },
    )
    momentum: float = field(
        default=0.0, metadata={"help": "heavy-ball momentum in [0, 1); 0 is plain SGD"}
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "one seed for the synthetic data and the batch order; the same seed "
            "gives the same trajectory at any world size"
        },
    )
    dtype: str = field(
        default="float64",
        metadata={"help": "float32 or float64: data, parameters and the allreduce buffer"},
    )
    data: str | None = field(
        default=None,
        metadata={
            "help": "training data instead of the synthetic set: FILE.npz (arrays X, y), "
            "DIR holding X.npy and y.npy, 'X.npy,y.npy' (memory-mapped: each rank "
            "reads only the rows it uses), or FILE.csv (header optional)"
        },
    )
    shuffle: str = field(
        default="rows",
        metadata={
            "help": "batch order. rows: a new permutation every epoch (a rank gathers its "
            "rows); blocks: runs of batch-size consecutive rows in a new order every epoch "
            "(a contiguous view, no gather; shuffle an ordered file once first); none: file "
            "order. With --sampling global, same trajectory at any world size"
        },
    )
    sampling: str = field(
        default="global",
        metadata={
            "help": "global, or sharded: rank r owns rows [r*n/p, (r+1)*n/p) (or its own "
            "file, '{rank}' in --data) and draws its share of each batch from them, holding "
            "1/p of the data; the trajectory then depends on the number of ranks"
        },
    )
    label_column: str | None = field(
        default=None,
        metadata={
            "help": "CSV only: the label column, by header name or 0-based index "
            "(default: a column named y or label, else the last column)"
        },
    )
    out: str | None = field(
        default=None,
        metadata={
            "help": "output directory for model.npz, summary.json, metrics.jsonl, "
            "config.json (default: runs/train-<time>)"
        },
    )
    allreduce: str = field(
        default="mpi",
        metadata={
            "help": "allreduce algorithm: mpi (the MPI library's own), ring, "
            "recursive-doubling, rabenseifner, hierarchical (the last four are "
            "written here on point-to-point calls, with exact traffic counts)"
        },
    )
    mpi_algorithm: str | None = field(
        default=None,
        metadata={
            "help": "with --allreduce mpi, force the library's own algorithm: "
            + ", ".join(MPI_ALGORITHMS)
            + " (Open MPI coll_tuned; MPICH offers recursive-doubling, ring, "
            "rabenseifner); set before MPI starts and recorded in the outputs "
            "(default: the library decides per call)"
        },
    )
    ranks_per_node: int | None = field(
        default=None,
        metadata={
            "help": "with --allreduce hierarchical, treat each block of K consecutive "
            "ranks as one node (default: ranks that share memory, as MPI "
            "reports it)"
        },
    )
    bucket_bytes: int = field(
        default=0,
        metadata={
            "help": "split the gradient into buckets of about N bytes, computed column "
            "block by block, each reduced by a non-blocking allreduce started "
            "as soon as it is ready, overlapping the next block's compute "
            "(0: one blocking allreduce per step)"
        },
    )
    compress: str = field(
        default="none",
        metadata={
            "help": "none, or fp16: reduce a half-precision copy of the gradient, "
            "pre-scaled by 1/batch-size so its sum cannot overflow"
        },
    )
    trace: bool = field(
        default=False,
        metadata={
            "help": "write trace.json (Chrome trace: Perfetto, chrome://tracing): one "
            "track per rank, spans for data, compute, each allreduce, update; "
            "clocks aligned to rank 0 by ping-pong at start-up"
        },
    )
    checkpoint_every: int = field(
        default=0,
        metadata={
            "help": "every N steps rank 0 writes a checkpoint (parameters, optimizer state, "
            "step, sampler state, the settings that decide the trajectory), atomically and "
            "with a checksum (0: never)"
        },
    )
    checkpoint_dir: str | None = field(
        default=None,
        metadata={"help": "where checkpoints go (default: <out>/checkpoints)"},
    )
    keep_checkpoints: int = field(
        default=3, metadata={"help": "how many of the newest checkpoints to keep"}
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "continue from the newest valid checkpoint in the checkpoint directory "
            "(corrupt ones are reported and skipped; none: start from step 0). Same world "
            "size: bitwise the uninterrupted model; another world size: equal up to "
            "summation order"
        },
    )
    comm_timeout: float = field(
        default=0.0,
        metadata={
            "help": "seconds a collective may take before the job is ended with a message "
            "naming the step and the collective, instead of hanging (0: wait forever)"
        },
    )
    inject_fault: str | None = field(
        default=None,
        metadata={
            "help": "cause a fault on purpose, on the first attempt only: "
            "kill:rank=R:step=N (the rank SIGKILLs itself at step N) or "
            "stall:rank=R:step=N:seconds=S (it sleeps S seconds inside step N)"
        },
    )
    log_every: int = field(
        default=0,
        metadata={"help": "rank 0 prints progress every N steps (0: about 10 lines per run)"},
    )
    flush_every: int = field(
        default=1000,
        metadata={
            "help": "every N steps each rank appends its new allreduce records to "
            "<out>/partial/, so a run that dies keeps its measurements; the partial files "
            "of a run that completes are removed (0: write only at the end)"
        },
    )
    check_every: int = field(
        default=100,
        metadata={
            "help": "every N steps, compare a checksum of the parameters across ranks "
            "(invariant: replicas agree bitwise); 0 checks only at the end"
        },
    )


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def validate(cfg: TrainConfig, world_size: int | None = None, n_samples: int | None = None) -> None:
    """Raise ``UsageError`` for any setting out of range.

    Called once statically, then again when the world size and the number of data rows are
    known. Every rank computes the same verdict from the same inputs, so it raises on all
    ranks together and no rank is left waiting in a collective.
    """

    def need(ok: bool, what: str, expected: str, got: Any) -> None:
        if not ok:
            raise UsageError(f"{what}: expected {expected}, got {got!r}")

    need(cfg.samples >= 1, "--samples", "an integer >= 1", cfg.samples)
    need(cfg.features >= 1, "--features", "an integer >= 1", cfg.features)
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
    need(cfg.allreduce in ALGORITHMS, "--allreduce", " or ".join(ALGORITHMS), cfg.allreduce)
    need(cfg.compress in COMPRESSORS, "--compress", " or ".join(COMPRESSORS), cfg.compress)
    need(cfg.bucket_bytes >= 0, "--bucket-bytes", "an integer >= 0", cfg.bucket_bytes)
    if cfg.mpi_algorithm is not None:
        need(
            cfg.mpi_algorithm in MPI_ALGORITHMS,
            "--mpi-algorithm",
            " or ".join(MPI_ALGORITHMS),
            cfg.mpi_algorithm,
        )
        need(
            cfg.allreduce == "mpi",
            "--mpi-algorithm",
            "--allreduce mpi (it forces the MPI library's own algorithm)",
            cfg.allreduce,
        )
    if cfg.ranks_per_node is not None:
        need(cfg.ranks_per_node >= 1, "--ranks-per-node", "an integer >= 1", cfg.ranks_per_node)
        need(
            cfg.allreduce == "hierarchical",
            "--ranks-per-node",
            "--allreduce hierarchical (the only topology-aware algorithm)",
            cfg.allreduce,
        )
    need(cfg.log_every >= 0, "--log-every", "an integer >= 0", cfg.log_every)
    need(cfg.checkpoint_every >= 0, "--checkpoint-every", "an integer >= 0", cfg.checkpoint_every)
    need(cfg.keep_checkpoints >= 1, "--keep-checkpoints", "an integer >= 1", cfg.keep_checkpoints)
    need(cfg.comm_timeout >= 0, "--comm-timeout", "a number of seconds >= 0", cfg.comm_timeout)
    if cfg.inject_fault is not None:
        from dist_logreg.train.faults import attempt, parse_fault

        fault = parse_fault(cfg.inject_fault)
        if world_size is not None and attempt() == 0:  # later attempts ignore the fault
            need(
                fault.rank < world_size,
                "--inject-fault rank",
                f"a rank below the world size ({world_size})",
                fault.rank,
            )
    need(cfg.check_every >= 0, "--check-every", "an integer >= 0", cfg.check_every)
    need(cfg.flush_every >= 0, "--flush-every", "an integer >= 0", cfg.flush_every)
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


def total_steps(cfg: TrainConfig, n_samples: int, steps_per_epoch: int | None = None) -> int:
    """Steps the run takes: the tighter of ``--steps`` and ``--epochs`` (default 200 steps).

    An epoch is ``n_samples // batch_size`` steps unless the sampler says otherwise
    (sharded ranks agree on the shortest shard's epoch).
    """
    per_epoch = steps_per_epoch or n_samples // cfg.batch_size
    bounds = []
    if cfg.steps is not None:
        bounds.append(cfg.steps)
    if cfg.epochs is not None:
        bounds.append(max(1, int(cfg.epochs * per_epoch)))
    return min(bounds) if bounds else DEFAULT_STEPS


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain dict of the configuration, for ``config.json``."""
    return dataclasses.asdict(cfg)
