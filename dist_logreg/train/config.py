"""The training configuration: one frozen object and its commented defaults.

Its validation is in :mod:`dist_logreg.train.validation`. Precedence: built-in defaults <
``--config FILE.toml`` < command-line flags (both read in :mod:`dist_logreg.train.options`).
The resolved configuration is saved next to every result (``config.json``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dist_logreg.collective import algorithms as table
from dist_logreg.collective.algorithms import MPI_ALGORITHMS

DTYPES = ("float32", "float64")
DEFAULT_STEPS = 200
#: Columns of the synthetic set when --features is not given.
DEFAULT_FEATURES = 128
#: --format values: by the file name, or LIBSVM / svmlight text whatever the name.
FORMATS = ("auto", "svmlight")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Help texts double as the ``--help`` strings."""

    samples: int = field(
        default=32768,
        metadata={"help": "rows of the built-in synthetic data set (ignored with --data)"},
    )
    features: int | None = field(
        default=None,
        metadata={
            "help": f"columns of the synthetic data set (default {DEFAULT_FEATURES}); the "
            "allreduce carries features+3 numbers per step (classes x (features+1) + 2 "
            "for a softmax model), so this is the payload-size dial. With a LIBSVM file: "
            "the dimension, when the file's highest index is lower (ignored with other "
            "--data)"
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
            "reads only the rows it uses), FILE.csv (header optional); sparse: a LIBSVM "
            "file (.svm, .libsvm, .svmlight; each rank parses its share of the lines) or a "
            "scipy.sparse.save_npz archive as 'X.npz,y.npy'"
        },
    )
    format: str = field(
        default="auto",
        metadata={
            "help": "auto: by the file name (.svm, .libsvm, .svmlight are LIBSVM text; a "
            ".npz written by scipy.sparse.save_npz is sparse), or svmlight for LIBSVM text "
            "whatever the name (needs the extra: pip install 'dist-logreg[sparse]')"
        },
    )
    classes: int = field(
        default=0,
        metadata={
            "help": "K >= 2: train a K-class softmax model on labels 0..K-1 (payload "
            "K x (features+1) + 2 elements; also a synthetic K-class set). 0: from the "
            "labels: 0/1 (or -1/+1, mapped to 0/1) train a binary model, 0..K-1 with "
            "every class present a K-class one"
        },
    )
    val_data: str | None = field(
        default=None,
        metadata={
            "help": "held-out data (same forms as --data), evaluated collectively every "
            "--eval-every steps and at the end: loss, accuracy, and ROC AUC for binary"
        },
    )
    val_fraction: float = field(
        default=0.0,
        metadata={
            "help": "hold out this fraction of the training rows instead (a split drawn "
            "from --seed, the same at any world size; the rows are copied into memory)"
        },
    )
    eval_every: int = field(
        default=0,
        metadata={"help": "evaluate the held-out rows every N steps (0: only at the end)"},
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
    tag: str | None = field(
        default=None,
        metadata={
            "help": "a label for this run, recorded in summary.json (run.tag) and used by "
            "`dist-logreg report` to name it in comparisons (default: the output "
            "directory's name)"
        },
    )
    allreduce: str = field(
        default=table.DEFAULT,
        metadata={
            "help": "allreduce algorithm: "
            + "; ".join(f"{a.name} ({a.help})" for a in table.of())
            + f"; {table.HIERARCHICAL_2D.name}:INTER runs INTER across nodes ("
            + ", ".join(table.INTER_CHOICES)
            + ")"
            + " (all but the library's own are written here on point-to-point calls, "
            "with exact traffic counts)"
        },
    )
    mpi_algorithm: str | None = field(
        default=None,
        metadata={
            "help": f"with --allreduce {table.MPI.name}, force the library's own algorithm: "
            + ", ".join(MPI_ALGORITHMS)
            + " (Open MPI coll_tuned; MPICH offers recursive-doubling, ring, "
            "rabenseifner); set before MPI starts and recorded in the outputs "
            "(default: the library decides per call)"
        },
    )
    ranks_per_node: int | None = field(
        default=None,
        metadata={
            "help": "with a topology-aware --allreduce ("
            + ", ".join(a.name for a in table.of() if a.topology_aware)
            + "), treat each block of K consecutive "
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
    sync: str = field(
        default="allreduce",
        metadata={
            "help": "allreduce: one allreduce of the packed gradient per step, every rank "
            "updates every parameter; sharded: reduce-scatter the gradient, each rank "
            "updates its 1/p slice (momentum sharded too), then allgather the parameters "
            "(the ZeRO-1 / FSDP traffic pattern; with --allreduce mpi, ring or "
            "rabenseifner: that allreduce's two halves; not with buckets, --compress or "
            "checkpoints)"
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
        metadata={
            "help": "where checkpoints go (default: <out>/checkpoints); several runs may "
            "share one: each file is named after its run's settings and data"
        },
    )
    keep_checkpoints: int = field(
        default=3, metadata={"help": "how many of the newest checkpoints to keep"}
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "continue from the newest valid checkpoint of this run's settings and "
            "data at or before the last step (corrupt ones are reported and skipped, other "
            "runs' ones ignored; none: start from step 0; a completed run: nothing to do, "
            "nothing changes). Same world size: bitwise the uninterrupted model; another "
            "world size: equal up to summation order"
        },
    )
    force: bool = field(
        default=False,
        metadata={
            "help": "start afresh in an --out that holds another run's results, removing "
            "them (default: refuse; --resume continues that run instead)"
        },
    )
    comm_timeout: float = field(
        default=0.0,
        metadata={
            "help": "seconds a collective may take before the job is ended (exit status 3) "
            "with a message naming the step or phase and the collective, instead of "
            "hanging; covers every collective from MPI_Init to the last write "
            "(0: wait forever)"
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
            "help": "every N steps (and at each checkpoint) each rank appends its new "
            "allreduce records to <out>/partial/, so a run that dies keeps its measurements; "
            "the partial files of a run that completes are removed (0: only at checkpoints "
            "and the end)"
        },
    )
    check_every: int = field(
        default=100,
        metadata={
            "help": "every N steps, compare a checksum of the parameters across ranks "
            "(invariant: replicas agree bitwise); 0 checks only at the end"
        },
    )
    cost_model: str | None = field(
        default=None,
        metadata={
            "help": "a cost model (model.json from `dist-logreg model fit` or `bench --fit`), "
            "or auto (a sweep of about a second on these ranks before training): the "
            "predicted allreduce time goes next to each measured one, and the summary "
            "compares them"
        },
    )
    slow_factor: float = field(
        default=2.0,
        metadata={
            "help": "with --model: flag the steps whose allreduce took more than this "
            "times the prediction, naming the rank that arrived last"
        },
    )


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
#: Keys renamed since (old name: new), still read from TOML files and saved ``config.json``.
RENAMED = {"model": "cost_model"}


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
        # 1e308 epochs made inf steps, an OverflowError traceback (X-H7): at most 2^62,
        # which the memory estimate refuses unless --steps bounds the run first
        bounds.append(max(1, int(min(cfg.epochs * per_epoch, 2.0**62))))
    return min(bounds) if bounds else DEFAULT_STEPS


def steps_asked(cfg: TrainConfig, n_samples: int, steps_per_epoch: int | None = None) -> str:
    """The option that set a resolved ``cfg.steps``, for a message: ``--steps N``, or
    ``--epochs E (N steps)`` where the epochs' bound is the one the run reaches."""
    if cfg.epochs is not None:
        bound = total_steps(dataclasses.replace(cfg, steps=None), n_samples, steps_per_epoch)
        if bound == cfg.steps:
            return f"--epochs {cfg.epochs:g} ({cfg.steps} steps)"
    return f"--steps {cfg.steps}"


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain dict of the configuration, for ``config.json``."""
    return dataclasses.asdict(cfg)
