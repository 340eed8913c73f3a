"""The training loop: the only place that knows the order of a step.

One step (docs/design.md, invariant 1; the step itself is :mod:`dist_logreg.train.step`)::

    data     which rows: this rank's share of the global batch (train/sampling.py)
    compute  the model's grad_sums reads those rows once (gathered block by block, or a
             contiguous view) -> packed buffer [gradient sums of params, loss_sum, count]
    comm     ONE in-place allreduce(SUM) of that buffer (one per bucket with
             ``--bucket-bytes``: the buckets together are still one gradient)
    update   divide by the GLOBAL count, add the L2 term, momentum SGD step

The model (binary or softmax, dense or sparse rows) is an object with the contract of
:mod:`dist_logreg.train.models`: the step asks it for the parameter count, the buffer size,
a workspace and the packed sums of the step's rows (``grad_sums(X, y, params, out, rows,
work)``: the binary dense case reads each row once, :mod:`dist_logreg.train.binary`), and
knows that ``params[:n_weights]`` are penalized, that the last two buffer slots are the loss
sum and the row count.

Every rank runs every line, in the same order (rank-specific printing is in the reporter).
"""

from __future__ import annotations

import math
import zlib
from time import perf_counter_ns

import numpy as np

from dist_logreg.errors import Diverged, ReplicasDisagree
from dist_logreg.record.console import LoopReporter, progress_every
from dist_logreg.record.result import MARKS, PHASES, TrainResult
from dist_logreg.train import models
from dist_logreg.train.checkpoint import Checkpoint, Checkpointer, good_state_note
from dist_logreg.train.config import TrainConfig, total_steps
from dist_logreg.train.data import Dataset, check_values
from dist_logreg.train.evaluate import evaluate
from dist_logreg.train.faults import NoWatchdog, inject, parse_fault, planned
from dist_logreg.train.sampling import BatchPlan, make_plan
from dist_logreg.train.shards import agree_shards
from dist_logreg.train.step import AllreduceStep, SgdState, advice, bucket_ranges
from dist_logreg.train.validation import validate

__all__ = ["MARKS", "PHASES", "TrainResult", "bucket_ranges", "check_replicas", "train"]


def train(
    comm,
    allreduce,
    cfg: TrainConfig,
    ds: Dataset,
    reporter: LoopReporter,
    start: Checkpoint | None = None,
    checkpointer: Checkpointer | None = None,
    watchdog=None,
    flush=None,
    model=None,
    val: Dataset | None = None,
    plan: BatchPlan | None = None,
) -> TrainResult:
    """Run the data-parallel training loop on this rank (collective over ``comm``).

    Parameters
    ----------
    comm : mpi4py communicator
        Used for control messages (error agreement, replica checks, final evaluation).
    allreduce : object with ``allreduce(buf)`` (see :mod:`dist_logreg.comm`)
        The gradient path: once per step (per bucket with ``--bucket-bytes``); may be wrapped.
    cfg : TrainConfig
    ds : Dataset
        The rows this rank can read (possibly memory-mapped): all of them, or its shard
        (``shards.for_rank``).
    reporter : LoopReporter (:mod:`dist_logreg.record.console`)
        ``start``, ``progress`` and ``evaluation``; prints on rank 0 only.
    start : Checkpoint, optional
        Continue from this state (parameters, velocity, steps done) instead of zeros.
    checkpointer : Checkpointer, optional
        Saves every ``cfg.checkpoint_every`` steps, and the last good state on divergence.
    watchdog : Watchdog, optional
        Armed around every collective (``--comm-timeout``).
    flush : callable, optional
        Called every ``cfg.flush_every`` steps to save this rank's records so far.
    model : models.Binary or models.Softmax, optional
        What is trained (default: binary logistic regression on ``ds``'s features).
    val : Dataset, optional
        Held-out rows, evaluated every ``cfg.eval_every`` steps and at the end.
    plan : BatchPlan, optional
        Which rows each step reads, from the command's start-up (which has validated, agreed
        on the shards, checked the values); None: :func:`library_start` does that here.
    """
    dog = watchdog or NoWatchdog()
    mdl = model if model is not None else models.Binary(ds.n_features)
    if plan is None:
        plan = library_start(comm, cfg, ds, mdl, dog)
    steps = total_steps(cfg, ds.n_total, plan.steps_per_epoch)
    first = min(start.step, steps) if start else 0
    reporter.start(cfg, ds, comm.Get_size(), steps)
    state = SgdState.initial(mdl.n_params, np.dtype(cfg.dtype), start)
    one_step = _step_object(cfg, mdl, ds, plan, allreduce, dog, state, checkpointer)
    rec = _Records(steps - first)
    every = _EveryN(comm, cfg, reporter, dog, steps, first, checkpointer, flush, mdl, val)
    fault = planned(parse_fault(cfg.inject_fault), comm.Get_rank()) if cfg.inject_fault else None

    with dog.phase("the barrier before the first step"):
        comm.Barrier()  # start the clocks together, so the first step's skew is real
    loop_start = every.begin()
    for step in range(first, steps):
        t0 = perf_counter_ns()
        if fault is not None and step == fault.step:
            inject(fault, step)
        # one step: gradient sums, one allreduce, the same update
        marks, in_comm, loss = one_step(state, step, t0)
        rec.put(step - first, marks, in_comm, loss)
        # every N steps: progress, replicas, checkpoint, flush, held-out evaluation
        every.after(step, state, rec)
    loop_ns = perf_counter_ns() - loop_start - every.eval_ns

    # the end: replicas agree, the objective on all rows, the last held-out evaluation
    final = _finish(comm, mdl, ds, state, cfg, steps, checkpointer, dog)
    if val is not None and not (every.evals and every.evals[-1]["step"] == steps):
        every.evals.append(held_out(comm, mdl, val, state.params, steps, steps, reporter, dog))
    return _result(state, steps, first, rec, loop_ns, final, steps / plan.steps_per_epoch, every)


def _result(state, steps, first, rec, loop_ns, final, epochs, every) -> TrainResult:
    """What the loop hands to the records (``record/result.py``)."""
    return TrainResult(
        state.params,
        steps,
        first,
        rec.marks,
        rec.comm_ns,
        rec.batch_loss,
        loop_ns,
        final["loss"],
        final["accuracy"],
        epochs,
        every.mdl,
        every.evals,
        every.eval_ns,
    )


def _step_object(cfg, mdl, ds, plan, allreduce, dog, state, checkpointer):
    """The step: :class:`AllreduceStep`, or with ``--sync sharded`` (the gradient path is a
    :class:`~dist_logreg.train.sharded.ShardedSync`) its own step object."""
    if getattr(allreduce, "sync", None) == "sharded":
        from dist_logreg.train.sharded import ShardedStep  # MPI-side, loaded only then

        return ShardedStep(cfg, mdl, ds, plan, allreduce, dog, state, checkpointer)
    return AllreduceStep(cfg, mdl, ds, plan, allreduce, dog, checkpointer)


def library_start(comm, cfg: TrainConfig, ds: Dataset, mdl, dog) -> BatchPlan:
    """Collective: what ``train``'s start-up does before the loop, for a library call:
    shards agreed, settings validated, values checked, the batch plan made."""
    with dog.phase("checking the data values and agreeing on the shards (allgather)"):
        agree_shards(comm, ds, cfg.batch_size)
        validate(cfg, world_size=comm.Get_size(), n_samples=ds.n_total)
        check_values(comm, ds, mdl.n_classes)
        return make_plan(comm, cfg, ds)


class _Records:
    """The loop's per-step records, preallocated: timestamps (MARKS), comm time, batch loss."""

    def __init__(self, steps: int):
        self.marks = np.zeros((steps, len(MARKS)), dtype=np.int64)
        self.comm_ns = np.zeros(steps, dtype=np.int64)
        self.batch_loss = np.full(steps, np.nan)

    def put(self, i: int, marks: tuple, in_comm: int, loss: float) -> None:
        self.marks[i] = marks
        self.comm_ns[i] = in_comm
        self.batch_loss[i] = loss


class _EveryN:
    """What happens every N steps, after the update: progress, replica check, checkpoint,
    flush of the records, held-out evaluation (each collective where it must be)."""

    def __init__(self, comm, cfg, reporter, dog, steps, first, checkpointer, flush, mdl, val):
        self.comm, self.cfg, self.reporter, self.dog = comm, cfg, reporter, dog
        self.steps, self.checkpointer, self.flush, self.mdl, self.val = (
            steps,
            checkpointer,
            flush,
            mdl,
            val,
        )
        self.log_every = progress_every(cfg, steps, reporter)
        self.save_every = cfg.checkpoint_every if checkpointer else 0
        self.last_log_step, self.first = first, first
        self.evals: list[dict] = []
        self.eval_ns = 0

    def begin(self) -> int:
        """The loop starts now: the clock of the first progress line."""
        self.last_log = perf_counter_ns()
        return self.last_log

    def after(self, step: int, state: SgdState, rec: _Records) -> None:
        done, cfg = step + 1, self.cfg
        if done % self.log_every == 0 or done == self.steps:
            self._progress(done, rec.batch_loss[step - self.first])
        if cfg.check_every and done % cfg.check_every == 0:
            check_replicas(self.comm, state.params, done, self.dog)
        at_checkpoint = self.save_every and done % self.save_every == 0
        if at_checkpoint:
            losses = rec.batch_loss[: step - self.first + 1]
            self.checkpointer.save(done, state.params, state.velocity, losses)
        # Records are flushed at each checkpoint too: a run that dies loses no more of its
        # measurements than of its work.
        if self.flush is not None and (
            at_checkpoint or (cfg.flush_every and done % cfg.flush_every == 0)
        ):  # the step rows so far, too: a run that dies keeps them (partial/steps-*)
            self.flush(step - self.first + 1, rec.marks, rec.comm_ns, rec.batch_loss)
        if self.val is not None and cfg.eval_every and done % cfg.eval_every == 0:
            t5 = perf_counter_ns()
            self.evals.append(
                held_out(
                    self.comm,
                    self.mdl,
                    self.val,
                    state.params,
                    done,
                    self.steps,
                    self.reporter,
                    self.dog,
                )
            )
            spent = perf_counter_ns() - t5
            self.eval_ns += spent
            self.last_log += spent  # samples/s counts training time only

    def _progress(self, done: int, loss: float) -> None:
        now = perf_counter_ns()
        rows = (done - self.last_log_step) * self.cfg.batch_size
        self.reporter.progress(done, self.steps, float(loss), rows * 1e9 / (now - self.last_log))
        self.last_log, self.last_log_step = now, done


def _finish(comm, mdl, ds, state: SgdState, cfg, steps, checkpointer, dog) -> dict:
    """Collective: replicas agree after the last step; the objective on all rows, finite."""
    params = state.params
    check_replicas(comm, params, steps, dog)
    final = evaluate(comm, mdl, ds, params, cfg.l2, dog)
    if not (math.isfinite(final["loss"]) and np.isfinite(params).all()):
        raise Diverged(
            f"after the last step ({steps}): the final "
            f"{'model' if not np.isfinite(params).all() else 'loss'} is not finite (the "
            f"parameters overflowed); training diverged ({advice(cfg)})"
            + good_state_note(checkpointer)
        )
    return final


def held_out(comm, mdl, val, params, step, steps, reporter, dog) -> dict:
    """Collective: held-out loss (no penalty), accuracy and binary AUC; rank 0 prints them."""
    metrics = {"step": step, **evaluate(comm, mdl, val, params, 0.0, dog, auc=True)}
    reporter.evaluation(step, steps, metrics)
    return metrics


def check_replicas(comm, params: np.ndarray, step: int, watchdog=None) -> None:
    """Collective: all ranks hold bitwise-identical parameters (docs/design.md, invariant 3)."""
    dog = watchdog or NoWatchdog()
    dog.arm("replica checksum allgather", step, perf_counter_ns())
    sums = comm.allgather(zlib.crc32(params.tobytes()))
    dog.disarm()
    if len(set(sums)) > 1:
        groups: dict[int, list[int]] = {}
        for r, s in enumerate(sums):
            groups.setdefault(s, []).append(r)
        raise ReplicasDisagree(
            f"after step {step}: replicas diverged; parameter checksums differ "
            f"between rank groups {sorted(groups.values())}"
        )
