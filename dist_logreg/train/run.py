"""One whole ``train`` run on this rank (collective): config, data, resume, loop, outputs.

Every step that can fail on some ranks only (reading a file, writing the outputs) ends in
:func:`~dist_logreg.errors.raise_together`, so all ranks fail together with one message.
Every collective outside the steps runs under the ``--comm-timeout`` watchdog too (named
by its phase), so no rank waits forever, from start-up to the last write.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dist_logreg.bench.cost import host_names
from dist_logreg.comm.registry import make_allreduce
from dist_logreg.comm.wrappers import Instrumented
from dist_logreg.errors import RunError, raise_together
from dist_logreg.protocol import history, report
from dist_logreg.record import provenance
from dist_logreg.record.console import Reporter
from dist_logreg.record.outputs import (
    PartialMetrics,
    prepare_out_dir,
    rescue,
    write_outputs,
)
from dist_logreg.record.stats import gather_records, summarize
from dist_logreg.record.stragglers import annotate
from dist_logreg.record.sync import sync_block
from dist_logreg.record.trace import clock_offset, clock_sync, write_trace
from dist_logreg.train import checkpoint as ckpt
from dist_logreg.train import cost_model
from dist_logreg.train.config import TrainConfig, steps_asked, to_dict
from dist_logreg.train.faults import attempt, parse_fault, start_watchdog
from dist_logreg.train.loop import train
from dist_logreg.train.prepare import summary_keys
from dist_logreg.train.sharded import ShardedSync
from dist_logreg.train.startup import resume_point, start


def run(comm, args: argparse.Namespace, watchdog=None) -> int:
    """Collective: the ``train`` sub-command from its parsed flags; returns the exit status.

    ``watchdog``: the command line's, started before ``MPI_Init``; without one (a library
    call) a watchdog of ``--comm-timeout`` is started here for the run.
    """
    if comm.Get_rank() == 0:
        report(started=True)  # for supervise: a rank started, so no launch failure
    if watchdog is not None:
        return _run(comm, args, watchdog)
    dog = start_watchdog(getattr(args, "comm_timeout", None))
    dog.attach(comm)
    try:
        return _run(comm, args, dog)
    finally:
        dog.close()


@dataclass
class _Out:
    """Where this attempt writes: the output directory, its attempt number, the run block."""

    dir: Path
    attempt: int
    run_info: dict | None


@dataclass
class _Comm:
    """The gradient path: the allreduce (instrumented), where the ranks sit, clock offset."""

    inner: object
    allreduce: Instrumented
    hosts: list
    host_of: list
    clock: tuple
    cost_model: dict | None


def _run(comm, args: argparse.Namespace, dog) -> int:
    """The run itself, with ``dog`` armed around every collective outside the steps too."""
    reporter = Reporter(comm.Get_rank())
    # start-up: settings, data and model, checked and agreed by every rank
    begin = start(comm, args, dog, reporter.notes.append)
    out = _output_dir(comm, begin.cfg, dog)
    # resume: the newest compatible checkpoint, or step 0; the checkpointer
    expected = _trajectory(begin)
    start_point, done = _resume(comm, begin, expected, out, dog, reporter)
    if done:
        reporter.say(
            f"nothing to do: the run in {out.dir} already completed its {begin.cfg.steps} "
            "steps; its outputs are unchanged"
        )
        return 0
    checkpointer = _checkpointer(comm, begin, expected, out, start_point, reporter)
    # the allreduce: the table's algorithm, instrumented; where the ranks sit; clocks
    path = _gradient_path(comm, begin, dog, reporter)
    # the loop
    first = start_point.step if start_point else 0
    partial = PartialMetrics(out.dir, comm.Get_rank(), first, reporter.warn, out.attempt)
    try:
        with np.errstate(all="ignore"):  # non-finite values are caught, reported in one line
            result = train(
                comm,
                path.allreduce,
                begin.cfg,
                begin.ds,
                reporter,
                start_point,
                checkpointer,
                dog,
                flush=lambda *rows: partial.flush(path.allreduce, *rows),
                model=begin.prep.model,
                val=begin.prep.val,
                plan=begin.plan,
            )
    finally:
        reporter.close()  # the progress bar, if any, ends before any error or summary
    # the end: records to rank 0, the files written there, every rank agrees they were
    with dog.phase("gathering the records to rank 0"):
        per_rank = gather_records(comm, path.allreduce, result, path.clock)
    path.allreduce.free()
    error = None
    if comm.Get_rank() == 0:
        summary, traffic, predict = _summary(begin, out, path, per_rank, result)
        error = _write(begin.cfg, out, summary, traffic, per_rank, result, predict, first, path)
        if error is None:
            reporter.finish(summary, out.dir)
    with dog.phase("agreeing that the results were written"):
        raise_together(comm, error)
    partial.remove()  # metrics.jsonl now holds everything this run measured
    return 0


def _output_dir(comm, cfg: TrainConfig, dog) -> _Out:
    """Collective: the output directory (made by rank 0), this attempt, the run block."""
    with dog.phase("creating the output directory (rank 0, then bcast)"):
        out_dir, run_no = prepare_out_dir(
            comm,
            cfg.out,
            attempt() + 1,
            fresh=not cfg.resume,
            force=cfg.force,
            checkpoints=cfg.checkpoint_dir,
            reads=(cfg.data, cfg.val_data),
        )
    if comm.Get_rank() == 0:
        report(attempt=run_no)  # its number in --out (partial/metrics-attempt<a>-*)
    with dog.phase("gathering where the run came from (host names)"):
        run_info = provenance.collect(comm, cfg.tag or out_dir.name)
    return _Out(out_dir, run_no, run_info)


def _trajectory(begin) -> dict:
    """What decides the trajectory: a checkpoint must match it to be resumed."""
    cfg, mdl = begin.cfg, begin.prep.model
    expected = ckpt.trajectory(cfg, begin.ds, begin.fingerprint)
    if mdl.kind == "softmax" or cfg.val_fraction:  # binary runs keep their old trajectory keys
        expected.update(classes=mdl.n_classes, val_fraction=cfg.val_fraction)
    return expected


def _checkpoint_dir(cfg: TrainConfig, out: _Out) -> Path:
    return Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else out.dir / "checkpoints"


def _resume(comm, begin, expected: dict, out: _Out, dog, reporter):
    """Collective: ``(checkpoint to start from or None, whether nothing is left to do)``."""
    cfg = begin.cfg
    if not cfg.resume:
        return None, False
    asked = steps_asked(cfg, begin.ds.n_total, begin.plan.steps_per_epoch)
    with dog.phase("finding the resume point (rank 0, then bcast)"):
        return resume_point(
            comm,
            _checkpoint_dir(cfg, out),
            expected,
            cfg.steps,
            out.dir,
            reporter,
            cfg.force,
            asked,
        )


def _checkpointer(comm, begin, expected: dict, out: _Out, start_point, reporter):
    """Warnings about the resume point; temp files of a killed run removed; the checkpointer
    of ``--checkpoint-every`` (None without it)."""
    cfg, rank = begin.cfg, comm.Get_rank()
    ckpt_dir, run_id = _checkpoint_dir(cfg, out), ckpt.run_id(expected)
    fault = parse_fault(cfg.inject_fault) if cfg.inject_fault and attempt() == 0 else None
    if fault and start_point and fault.step < start_point.step:
        reporter.warn(
            f"--inject-fault {cfg.inject_fault}: step {fault.step} comes before the resume "
            f"point (after step {start_point.step}); the fault will not fire"
        )
    if rank == 0:
        for tmp in ckpt.clean_temporary(ckpt_dir, run_id):
            reporter.warn(f"removed {tmp.name}, left by a run killed while writing a checkpoint")
        if start_point:
            report(checkpoint=start_point.step)
    if not cfg.checkpoint_every:
        return None
    meta = {
        "trajectory": expected,
        "run": run_id,
        "world_size": comm.Get_size(),
        "sampler": {
            "kind": f"--shuffle {cfg.shuffle} --sampling {cfg.sampling}, "
            "a function of (seed, epoch[, rank])",
            "seed": cfg.seed,
            "steps_per_epoch": begin.plan.steps_per_epoch,
        },
        "rng": "none beyond the sampler's (seed, epoch)",
    }
    return ckpt.Checkpointer(
        rank,
        ckpt_dir,
        cfg.keep_checkpoints,
        meta,
        reporter.warn,
        on_save=lambda step: report(checkpoint=step),
    )


def _gradient_path(comm, begin, dog, reporter) -> _Comm:
    """Collective: the cost model (``--model auto``: a short sweep), the allreduce of the
    table's algorithm, where the ranks sit, and each rank's clock offset."""
    cfg, mdl = begin.cfg, begin.prep.model
    payload = mdl.buffer_size * np.dtype(cfg.dtype).itemsize
    costs = cost_model.prepare(comm, cfg, payload, reporter.say)
    with dog.phase("setting up the allreduce (communicator split, clock sync)"):
        allreduce, inner = _sync(comm, cfg, mdl)
        hosts, host_of = host_names(comm)
        # always: metrics.jsonl gets clock-aligned start times, and the arrival order of
        # every step names stragglers
        clock = clock_offset(comm)
    return _Comm(inner, allreduce, hosts, host_of, clock, costs)


def _sync(comm, cfg: TrainConfig, mdl):
    """Collective: ``(recorded gradient path, the object under it)``: an instrumented
    allreduce, or with ``--sync sharded`` the reduce-scatter + update + allgather
    (:mod:`dist_logreg.train.sharded`, which records its two collectives itself)."""
    if cfg.sync == "sharded":
        sync = ShardedSync(
            comm,
            cfg.allreduce,
            mdl.buffer_size,
            cfg.dtype,
            mdl.n_params,
            mdl.n_weights,
            cfg.lr,
            cfg.l2,
            cfg.momentum,
            cfg.batch_size,
            capacity=cfg.steps or 1024,
        )
        return sync, sync
    inner = make_allreduce(
        cfg.allreduce,
        comm,
        ranks_per_node=cfg.ranks_per_node,
        compress=cfg.compress,
        fp16_scale=cfg.batch_size,  # fp16 sums each rank's share of the mean
    )
    return Instrumented(inner, capacity=cfg.steps * _buckets(cfg, mdl.buffer_size)), inner


def _summary(begin, out: _Out, path: _Comm, per_rank, result):
    """Rank 0: ``(summary.json, traffic.json, per-step predictions)`` of the run."""
    cfg = begin.cfg
    info = {
        "algorithm": path.inner.name,
        "node_of": path.inner.node_of,
        "mpi_algorithm": begin.mpi_record,
    }
    summary, traffic = summarize(per_rank, result, cfg, begin.ds, info)
    mdl, halves = begin.prep.model, getattr(path.inner, "halves", path.inner.name)
    summary["sync"] = sync_block(per_rank, cfg, mdl.n_params, mdl.buffer_size, halves)
    summary["attempts"] = {
        "count": out.attempt,
        "failed": history(),
        "note": "failed: what each earlier attempt of a supervised run lost; their "
        "measurements are in partial/metrics-attempt<a>-*.jsonl",
    }
    summary["run"] = out.run_info
    summary["clock_sync"] = clock_sync(per_rank)  # behind metrics.jsonl start_aligned_s
    source = cfg.cost_model if cfg.cost_model in ("auto", None) else str(cfg.cost_model)
    predict = annotate(
        summary, per_rank, path.hosts, path.host_of, path.cost_model, source, cfg.slow_factor
    )
    summary.update(summary_keys(begin.prep.model, begin.prep.labels, result))
    return summary, traffic, predict


def _write(cfg, out: _Out, summary, traffic, per_rank, result, predict, first, path):
    """Rank 0: the trace and the output files; a ``RunError`` (results rescued) or None."""
    try:
        if cfg.trace:
            sync = write_trace(
                out.dir / "trace.json", per_rank, path.inner.name, cfg.bucket_bytes > 0
            )
            summary["trace"] = {"file": "trace.json", "clock_sync": sync}
        write_outputs(
            out.dir,
            summary,
            traffic,
            per_rank,
            result,
            to_dict(cfg),
            predict=predict,
            attempt=out.attempt,
            append=first > 0,
        )
    except OSError as exc:
        saved = rescue(summary, result, exc)
        return RunError(
            f"--out {out.dir}: writing results failed: {exc.strerror or exc}; "
            f"the model and summary were saved to {saved} instead"
        )
    return None


def _buckets(cfg: TrainConfig, buffer_elements: int) -> int:
    """Allreduce calls per step: one, or one per bucket of ``--bucket-bytes``."""
    if not cfg.bucket_bytes:
        return 1
    nbytes = buffer_elements * np.dtype(cfg.dtype).itemsize
    return -(-nbytes // cfg.bucket_bytes)
