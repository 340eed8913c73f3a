"""The training loop: the only place that knows the order of a step.

One step (docs/design.md invariant 1)::

    data     which rows: this rank's share of the global batch (train/sampling.py)
    compute  the model's grad_sums reads those rows once (gathered block by block, or a
             contiguous view) -> packed buffer [gradient sums of params, loss_sum, count]
    comm     ONE in-place allreduce(SUM) of that buffer
    update   divide by the GLOBAL count, add the L2 term, momentum SGD step

With ``--bucket-bytes`` the compute and comm phases interleave instead (as in DDP and
Horovod): after the forward pass, the weight gradient is produced one column block (bucket)
at a time, and each bucket's non-blocking allreduce starts as soon as it is ready, while the
next block is computed. Same sums, same result up to summation order.

The model (binary or softmax, dense or sparse rows) is an object with the contract of
:mod:`dist_logreg.train.models`: the loop asks it for the parameter count, the buffer size,
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
from dist_logreg.record.result import MARKS, TrainResult
from dist_logreg.train import models
from dist_logreg.train.checkpoint import Checkpoint, Checkpointer, good_state_note
from dist_logreg.train.config import TrainConfig, total_steps
from dist_logreg.train.data import Dataset, check_values
from dist_logreg.train.evaluate import evaluate
from dist_logreg.train.faults import NoWatchdog, inject, parse_fault, planned
from dist_logreg.train.sampling import BatchPlan, make_plan
from dist_logreg.train.shards import agree_shards
from dist_logreg.train.validation import validate


def train(
    comm,
    allreduce,
    cfg: TrainConfig,
    ds: Dataset,
    reporter,
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
        The gradient path: called exactly once per step. May be instrumented.
    cfg : TrainConfig
    ds : Dataset
        The rows this rank can read (possibly memory-mapped): all of them, or its shard
        (``shards.for_rank``).
    reporter : object with ``start(cfg, ds, world_size, steps)`` and
        ``progress(step, steps, loss, samples_per_s)``; prints on rank 0 only.
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
        Which rows each step reads (default: from ``cfg.shuffle`` and ``cfg.sampling``).
    """
    size, rank = comm.Get_size(), comm.Get_rank()
    dog = watchdog or NoWatchdog()
    mdl = model if model is not None else models.Binary(ds.n_features)
    with dog.phase("checking the data values and agreeing on the shards (allgather)"):
        if plan is None:  # called as a library: the run's start-up has done this
            agree_shards(comm, ds, cfg.batch_size)
        validate(cfg, world_size=size, n_samples=ds.n_total)
        check_values(comm, ds, mdl.n_classes)
        plan = plan or make_plan(comm, cfg, ds)
    steps = total_steps(cfg, ds.n_total, plan.steps_per_epoch)
    first = min(start.step, steps) if start else 0
    reporter.start(cfg, ds, size, steps)
    dtype = np.dtype(cfg.dtype)
    d = ds.n_features
    fault = planned(parse_fault(cfg.inject_fault), rank) if cfg.inject_fault else None

    n_par, n_pen = mdl.n_params, mdl.n_weights
    params = np.zeros(n_par, dtype=dtype)  # identical initial parameters everywhere
    velocity = np.zeros(n_par, dtype=dtype)
    if start:
        params[:] = start.params
        velocity[:] = start.velocity
    penalized = params[:n_pen]
    grad = np.empty(n_par, dtype=dtype)
    buf = np.empty(mdl.buffer_size, dtype=dtype)
    work = mdl.workspace(plan.rows_per_step, dtype)
    buckets = bucket_ranges(buf.size, n_pen, cfg.bucket_bytes // dtype.itemsize)
    if buckets is not None:  # bucketed steps need the whole batch at once, column by column
        xbuf = None if ds.sparse else np.empty((plan.rows_per_step, d), dtype=dtype)
        ybuf = np.empty(plan.rows_per_step, dtype=dtype)
    marks = np.zeros((steps - first, len(MARKS)), dtype=np.int64)
    comm_ns = np.zeros(steps - first, dtype=np.int64)
    batch_loss = np.full(steps - first, np.nan)
    log_every = cfg.log_every or max(1, steps // getattr(reporter, "updates", 10))
    every = cfg.checkpoint_every if checkpointer else 0
    lr, l2, mom = cfg.lr, cfg.l2, cfg.momentum
    clock = perf_counter_ns
    evals, eval_ns = [], 0

    with dog.phase("the barrier before the first step"):
        comm.Barrier()  # start the clocks together, so the first step's skew is real
    loop_start = last_log = clock()
    last_log_step = first
    for step in range(first, steps):
        t0 = clock()
        if fault is not None and step == fault.step:
            inject(fault, step)
        rows = plan.rows(step)
        if buckets is None:
            t1 = clock()
            mdl.grad_sums(ds.X, ds.y, params, buf, rows, work)
            t2 = clock()
            dog.arm("gradient allreduce", step, t2)
            allreduce.allreduce(buf, step)
            t3 = clock()
            in_comm = t3 - t2
        else:
            xb = models.whole_batch(ds.X, rows, xbuf, dtype)
            yb = models.row_labels(ds.y, rows, ybuf[: xb.shape[0]])
            t1 = clock()
            dog.arm("bucketed gradient allreduce", step, t1)
            t2, t3, in_comm = _bucketed_step(
                allreduce, mdl, xb, yb, params, buf, buckets, clock, step
            )
        dog.disarm()
        if not math.isfinite(buf.sum()):  # the reduced buffer is the same on every rank
            _diverged(step, buf, lr, checkpointer)
        count = buf[-1]
        np.divide(buf[:n_par], count, out=grad)  # exact global mean, also for uneven slices
        if l2:
            grad[:n_pen] += l2 * penalized
        if mom:
            velocity *= mom
            velocity += grad
            params -= lr * velocity
        else:
            params -= lr * grad
        t4 = clock()
        i = step - first
        marks[i] = (t0, t1, t2, t3, t4)
        comm_ns[i] = in_comm
        loss = float(buf[-2] / count)
        batch_loss[i] = loss
        if (step + 1) % log_every == 0 or step + 1 == steps:
            now = clock()
            done = (step + 1 - last_log_step) * cfg.batch_size
            reporter.progress(step + 1, steps, loss, done * 1e9 / (now - last_log))
            last_log, last_log_step = now, step + 1
        if cfg.check_every and (step + 1) % cfg.check_every == 0:
            check_replicas(comm, params, step + 1, dog)
        at_checkpoint = every and (step + 1) % every == 0
        if at_checkpoint:
            checkpointer.save(step + 1, params, velocity, batch_loss[: i + 1])
        # Records are flushed at each checkpoint too: a run that dies loses no more of its
        # measurements than of its work.
        if flush is not None and (
            at_checkpoint or (cfg.flush_every and (step + 1) % cfg.flush_every == 0)
        ):
            flush()
        if val is not None and cfg.eval_every and (step + 1) % cfg.eval_every == 0:
            t5 = clock()
            evals.append(_held_out(comm, mdl, val, params, step + 1, steps, reporter, dog))
            spent = clock() - t5
            eval_ns += spent
            last_log += spent  # samples/s counts training time only
    loop_ns = clock() - loop_start - eval_ns
    check_replicas(comm, params, steps, dog)
    final = evaluate(comm, mdl, ds, params, l2, dog)
    if not (math.isfinite(final["loss"]) and np.isfinite(params).all()):
        raise Diverged(
            f"after the last step ({steps}): the final "
            f"{'model' if not np.isfinite(params).all() else 'loss'} is not finite (the "
            f"parameters overflowed); training diverged (try a smaller --lr than {lr})"
            + good_state_note(checkpointer)
        )
    if val is not None and not (evals and evals[-1]["step"] == steps):
        evals.append(_held_out(comm, mdl, val, params, steps, steps, reporter, dog))
    return TrainResult(
        params,
        steps,
        first,
        marks,
        comm_ns,
        batch_loss,
        loop_ns,
        final["loss"],
        final["accuracy"],
        steps / plan.steps_per_epoch,
        mdl,
        evals,
        eval_ns,
    )


def _held_out(comm, mdl, val, params, step, steps, reporter, dog) -> dict:
    """Collective: held-out loss (no penalty), accuracy and binary AUC; rank 0 prints them."""
    metrics = {"step": step, **evaluate(comm, mdl, val, params, 0.0, dog, auc=True)}
    reporter.evaluation(step, steps, metrics)
    return metrics


def _diverged(step, buf, lr, checkpointer) -> None:
    """NaN/inf in the reduced gradient or loss: name the last good state, stop all ranks."""
    what = "loss" if not math.isfinite(buf[-2]) else "gradient"
    raise Diverged(
        f"step {step}: the global batch {what} is not finite (nan or inf); training "
        f"diverged (try a smaller --lr than {lr})" + good_state_note(checkpointer)
    )


def bucket_ranges(n: int, d: int, bucket_elems: int) -> list[tuple[int, int]] | None:
    """Contiguous ``[lo, hi)`` element ranges of the packed buffer, or None for no buckets.

    ``d`` is the number of weight-gradient elements. The last bucket also carries the tail
    slots (intercept gradients, loss, count), which the forward pass fills before any
    weight-gradient block.
    """
    if bucket_elems <= 0:
        return None
    bounds = list(range(0, d, bucket_elems)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] <= n - d:  # no tail-only bucket
        del bounds[-2]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _bucketed_step(
    allreduce, mdl, xbuf, ybuf, params, buf, buckets, clock, step
) -> tuple[int, int, int]:
    """Compute the gradient bucket by bucket, starting each bucket's allreduce at once.

    Returns (time the first allreduce was posted, time all completed, time spent inside
    communication calls). Between blocks, ``progress()`` lets posted allreduces advance:
    MPI moves non-blocking collectives forward only inside MPI calls.
    """
    d = mdl.n_weights
    state = mdl.forward(xbuf, ybuf, params, buf)
    first_post = 0
    in_comm = 0
    for lo, hi in buckets:
        top = min(hi, d)
        if lo < top:
            mdl.weight_block(xbuf, state, lo, top, buf[lo:top])
        c0 = clock()
        first_post = first_post or c0
        allreduce.start(buf[lo:hi], step)
        allreduce.progress()
        in_comm += clock() - c0
    c0 = clock()
    allreduce.wait()
    done = clock()
    return first_post, done, in_comm + done - c0


def check_replicas(comm, params: np.ndarray, step: int, watchdog=None) -> None:
    """Collective: all ranks must hold bitwise-identical parameters (docs/design.md invariant 3)."""
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
