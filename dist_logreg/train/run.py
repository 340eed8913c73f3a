"""One whole ``train`` run on this rank (collective): config, data, resume, loop, outputs.

Every step that can fail on some ranks only (reading a file, writing the outputs) ends in
:func:`~dist_logreg.errors.raise_together`, so all ranks fail together with one message.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from mpi4py import MPI

from dist_logreg.comm.mpilib import mpi_algorithm_record
from dist_logreg.comm.registry import make_allreduce
from dist_logreg.comm.wrappers import Instrumented
from dist_logreg.errors import RunError, UsageError, raise_together
from dist_logreg.study.console import Reporter
from dist_logreg.study.outputs import PartialMetrics, prepare_out_dir, rescue, write_outputs
from dist_logreg.study.stats import gather_records, summarize
from dist_logreg.study.trace import clock_offset, write_trace
from dist_logreg.train import checkpoint as ckpt
from dist_logreg.train import data as data_mod
from dist_logreg.train import shards
from dist_logreg.train.config import TrainConfig, to_dict, total_steps, validate
from dist_logreg.train.faults import Watchdog
from dist_logreg.train.loop import train
from dist_logreg.train.model import buffer_size
from dist_logreg.train.options import flag_values, load_toml, resolve
from dist_logreg.train.sampling import make_plan


def run(comm, args: argparse.Namespace) -> int:
    """Collective: the ``train`` sub-command from its parsed flags; returns the exit status."""
    cfg, mpi_record = _config(comm, args)
    out_dir = prepare_out_dir(comm, cfg.out)
    ds = _dataset(comm, cfg)
    rank = comm.Get_rank()
    reporter = Reporter(rank)
    plan = make_plan(comm, cfg, ds)
    steps = total_steps(cfg, ds.n_total, plan.steps_per_epoch)
    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else out_dir / "checkpoints"
    expected = ckpt.trajectory(cfg, ds)
    start = _resume_point(comm, ckpt_dir, expected, reporter) if cfg.resume else None
    checkpointer = None
    if cfg.checkpoint_every:
        meta = {
            "trajectory": expected,
            "world_size": comm.Get_size(),
            "sampler": {
                "kind": f"--shuffle {cfg.shuffle} --sampling {cfg.sampling}, "
                "a function of (seed, epoch[, rank])",
                "seed": cfg.seed,
                "steps_per_epoch": plan.steps_per_epoch,
            },
            "rng": "none beyond the sampler's (seed, epoch)",
        }
        checkpointer = ckpt.Checkpointer(rank, ckpt_dir, cfg.keep_checkpoints, meta, reporter.warn)

    inner = make_allreduce(cfg.allreduce, comm, cfg.ranks_per_node, cfg.compress, cfg.batch_size)
    allreduce = Instrumented(inner, capacity=steps * _buckets(cfg, ds.n_features))
    clock = clock_offset(comm) if cfg.trace else (0, 0)
    watchdog = Watchdog(comm, cfg.comm_timeout) if cfg.comm_timeout else None
    partial = PartialMetrics(out_dir, rank, start.step if start else 0, reporter.warn)
    try:
        result = train(
            comm,
            allreduce,
            cfg,
            ds,
            reporter,
            start,
            checkpointer,
            watchdog,
            flush=lambda: partial.flush(allreduce),
            plan=plan,
        )
        per_rank = gather_records(comm, allreduce, result, clock)
    finally:
        if watchdog:
            watchdog.close()
    allreduce.free()
    error = None
    if rank == 0:
        info = {"algorithm": inner.name, "node_of": inner.node_of, "mpi_algorithm": mpi_record}
        summary, traffic = summarize(per_rank, result, cfg, ds, info)
        try:
            if cfg.trace:
                sync = write_trace(
                    out_dir / "trace.json", per_rank, inner.name, cfg.bucket_bytes > 0
                )
                summary["trace"] = {"file": "trace.json", "clock_sync": sync}
            write_outputs(out_dir, summary, traffic, per_rank, result, to_dict(cfg))
        except OSError as exc:
            saved = rescue(summary, result, exc)
            error = RunError(
                f"--out {out_dir}: writing results failed: {exc.strerror or exc}; "
                f"the model and summary were saved to {saved} instead"
            )
        else:
            reporter.finish(summary, out_dir)
    raise_together(comm, error)
    partial.remove()  # metrics.jsonl now holds everything this run measured
    return 0


def _config(comm, args: argparse.Namespace) -> tuple[TrainConfig, dict | None]:
    """Collective: defaults < --config file < flags, validated; and the MPI library record."""
    error, cfg, mpi_record = None, None, None
    try:  # every rank reads the file itself; they may disagree (a node without the file)
        file_values = load_toml(args.config) if getattr(args, "config", None) else {}
        cfg = resolve(file_values, flag_values(args))
        if cfg.allreduce == "mpi":
            mpi_record = mpi_algorithm_record(cfg.mpi_algorithm, MPI.Get_library_version())
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    return cfg, mpi_record


def _dataset(comm, cfg: TrainConfig) -> data_mod.Dataset:
    """Collective: the synthetic set or the file every rank opens itself (or its shard),
    checked against the world size."""
    ds, error = None, None
    try:
        ds = shards.for_rank(cfg, comm.Get_size(), comm.Get_rank())
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    shards.agree_shards(comm, ds, cfg.batch_size)
    validate(cfg, world_size=comm.Get_size(), n_samples=ds.n_total)
    return ds


def _resume_point(comm, ckpt_dir: Path, expected: dict, reporter) -> ckpt.Checkpoint | None:
    """Collective: rank 0 reads and verifies the newest checkpoint; everyone gets the same."""
    error, start = None, None
    if comm.Get_rank() == 0:
        try:
            start = ckpt.newest_valid(ckpt_dir, reporter.warn)
            if start is not None:
                ckpt.check_compatible(start, expected)
        except ckpt.CheckpointError as exc:
            error = UsageError(f"--resume: {exc}")
    raise_together(comm, error)
    start = comm.bcast(start, root=0)
    reporter.say(
        f"resuming from {start.path} (after step {start.step})"
        if start
        else f"--resume: no checkpoint in {ckpt_dir}; starting from step 0"
    )
    return start


def _buckets(cfg: TrainConfig, n_features: int) -> int:
    """Allreduce calls per step: one, or one per bucket of ``--bucket-bytes``."""
    if not cfg.bucket_bytes:
        return 1
    nbytes = buffer_size(n_features) * np.dtype(cfg.dtype).itemsize
    return -(-nbytes // cfg.bucket_bytes)
