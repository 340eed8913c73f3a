"""The training loop: the only place that knows the order of a step.

One step (DESIGN.md invariant 1)::

    data     which rows: this rank's share of the global batch (train/sampling.py)
    compute  grad_sums reads those rows once (gathered block by block, or a contiguous
             view) -> packed buffer [gradient sums of params, loss_sum, count]
    comm     ONE in-place allreduce(SUM) of that buffer
    update   divide by the GLOBAL count, add the L2 term, momentum SGD step

The loop's contract with the model math (:mod:`dist_logreg.train.model`; a second model
provides the same names): ``n_params(d)``, ``n_penalized(d)`` (the first parameters carry
the L2 term), ``buffer_size(d)``, ``Workspace(d, max_rows, dtype)`` and
``grad_sums(X, y, params, out, rows, work)``, which writes ``out = [gradient sums (n_params),
loss sum, row count]``; for buckets also ``residuals(X, y, params, out)``.

With ``--bucket-bytes`` the compute and comm phases interleave instead (as in DDP and
Horovod): after the forward pass, the weight gradient is produced one column block (bucket)
at a time, and each bucket's non-blocking allreduce starts as soon as it is ready, while the
next block is computed. Same sums, same result up to summation order.

Every rank runs every line, in the same order (rank-specific printing is in the reporter).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from time import perf_counter_ns

import numpy as np

from dist_logreg.errors import Diverged, ReplicasDisagree
from dist_logreg.train import model
from dist_logreg.train.checkpoint import Checkpoint, Checkpointer
from dist_logreg.train.config import TrainConfig, total_steps, validate
from dist_logreg.train.data import Dataset, check_values, scan_range
from dist_logreg.train.faults import NoWatchdog, inject, parse_fault, planned
from dist_logreg.train.sampling import BatchPlan, make_plan
from dist_logreg.train.shards import agree_shards

#: Columns of the per-step timing array.
PHASES = ("data", "compute", "comm", "update")
#: Timestamps taken in every step (perf_counter_ns): the columns of ``TrainResult.marks``.
MARKS = ("data_start", "data_end", "first_post", "comm_end", "update_end")
#: Rows per block when evaluating the final loss over the whole data set.
EVAL_BLOCK = 65536


@dataclass
class TrainResult:
    """What one rank ends with. ``params`` is ``[coef..., intercept]``, shape ``(d + 1,)``."""

    params: np.ndarray
    steps: int  # the step count the run ends at
    first_step: int  # where this run started (> 0 when resumed from a checkpoint)
    marks: np.ndarray  # (steps, 5) int64 timestamps, columns MARKS
    comm_ns: np.ndarray  # (steps,) time this rank spent inside allreduce calls
    batch_loss: np.ndarray  # (steps,) global mean loss of each step's batch (before the step)
    loop_ns: int  # wall time of the whole loop on this rank
    final_loss: float  # objective on the full training set, after training
    final_accuracy: float
    epochs: float  # passes over the data completed

    @property
    def phase_ns(self) -> np.ndarray:
        """(steps, 4) int64: data, compute, comm, update time of each step (PHASES)."""
        m = self.marks
        compute = m[:, 3] - m[:, 1] - self.comm_ns  # between data and update, not in comm
        return np.stack([m[:, 1] - m[:, 0], compute, self.comm_ns, m[:, 4] - m[:, 3]], axis=1)

    @property
    def comm_span_ns(self) -> np.ndarray:
        """(steps,) from the first allreduce posted to the last one completed."""
        return self.marks[:, 3] - self.marks[:, 2]

    @property
    def coef(self) -> np.ndarray:
        return self.params[:-1]

    @property
    def intercept(self) -> float:
        return float(self.params[-1])


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
    plan : BatchPlan, optional
        Which rows each step reads (default: from ``cfg.shuffle`` and ``cfg.sampling``).
    """
    size, rank = comm.Get_size(), comm.Get_rank()
    agree_shards(comm, ds, cfg.batch_size)
    validate(cfg, world_size=size, n_samples=ds.n_total)
    check_values(comm, ds)
    plan = plan or make_plan(comm, cfg, ds)
    steps = total_steps(cfg, ds.n_total, plan.steps_per_epoch)
    first = min(start.step, steps) if start else 0
    reporter.start(cfg, ds, size, steps)
    dtype = np.dtype(cfg.dtype)
    d = ds.n_features
    dog = watchdog or NoWatchdog()
    fault = planned(parse_fault(cfg.inject_fault), rank) if cfg.inject_fault else None

    mm = model  # the model math, called only through the contract in the module doc
    n_par, n_pen = mm.n_params(d), mm.n_penalized(d)
    params = np.zeros(n_par, dtype=dtype)  # identical initial parameters everywhere
    velocity = np.zeros(n_par, dtype=dtype)
    if start:
        params[:] = start.params
        velocity[:] = start.velocity
    penalized = params[:n_pen]
    grad = np.empty(n_par, dtype=dtype)
    buf = np.empty(mm.buffer_size(d), dtype=dtype)
    work = mm.Workspace(d, plan.rows_per_step, dtype)
    buckets = bucket_ranges(buf.size, d, cfg.bucket_bytes // dtype.itemsize)
    if buckets is not None:  # bucketed steps need the whole batch at once, column by column
        xbuf = np.empty((plan.rows_per_step, d), dtype=dtype)
    marks = np.zeros((steps - first, len(MARKS)), dtype=np.int64)
    comm_ns = np.zeros(steps - first, dtype=np.int64)
    batch_loss = np.full(steps - first, np.nan)
    log_every = cfg.log_every or max(1, steps // 10)
    every = cfg.checkpoint_every if checkpointer else 0
    lr, l2, mom = cfg.lr, cfg.l2, cfg.momentum
    clock = perf_counter_ns

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
            mm.grad_sums(ds.X, ds.y, params, buf, rows, work)
            t2 = clock()
            dog.arm("gradient allreduce", step, t2)
            allreduce.allreduce(buf, step)
            t3 = clock()
            in_comm = t3 - t2
        else:
            xb = _whole_batch(ds.X, rows, xbuf)
            yb = mm.row_labels(ds.y, rows, work.y[: xb.shape[0]])
            t1 = clock()
            dog.arm("bucketed gradient allreduce", step, t1)
            t2, t3, in_comm = _bucketed_step(allreduce, xb, yb, params, buf, buckets, clock, step)
        dog.disarm()
        if not math.isfinite(buf.sum()):  # the reduced buffer is the same on every rank
            _diverged(step, buf, lr, checkpointer, params, velocity)
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
            rows = (step + 1 - last_log_step) * cfg.batch_size
            reporter.progress(step + 1, steps, loss, rows * 1e9 / (now - last_log))
            last_log, last_log_step = now, step + 1
        if cfg.check_every and (step + 1) % cfg.check_every == 0:
            check_replicas(comm, params, step + 1, dog)
        if every and (step + 1) % every == 0:
            checkpointer.save(step + 1, params, velocity)
        if flush is not None and cfg.flush_every and (step + 1) % cfg.flush_every == 0:
            flush()
    loop_ns = clock() - loop_start
    check_replicas(comm, params, steps, dog)
    final_loss, final_accuracy = evaluate(comm, ds, params, l2, dog)
    return TrainResult(
        params,
        steps,
        first,
        marks,
        comm_ns,
        batch_loss,
        loop_ns,
        final_loss,
        final_accuracy,
        steps / plan.steps_per_epoch,
    )


def _diverged(step, buf, lr, checkpointer, params, velocity) -> None:
    """NaN/inf in the reduced gradient or loss: save the last good state, stop all ranks."""
    saved = ""
    if checkpointer is not None:
        path = checkpointer.save(step, params, velocity)  # the state before this step
        saved = f"; the last good state (after {step} steps) is in {path}" if path else ""
    what = "loss" if not math.isfinite(buf[-2]) else "gradient"
    raise Diverged(
        f"step {step}: the global batch {what} is not finite (nan or inf); training "
        f"diverged (try a smaller --lr than {lr}){saved}"
    )


def bucket_ranges(n: int, d: int, bucket_elems: int) -> list[tuple[int, int]] | None:
    """Contiguous ``[lo, hi)`` element ranges of the packed buffer, or None for no buckets.

    The last bucket also carries the tail slots (grad_b, loss, count), which the forward
    pass fills before any weight-gradient block.
    """
    if bucket_elems <= 0:
        return None
    bounds = list(range(0, d, bucket_elems)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] <= model.EXTRA_SLOTS:  # no tail-only bucket
        del bounds[-2]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _bucketed_step(
    allreduce, xbuf, ybuf, params, buf, buckets, clock, step
) -> tuple[int, int, int]:
    """Compute the gradient bucket by bucket, starting each bucket's allreduce at once.

    Returns (time the first allreduce was posted, time all completed, time spent inside
    communication calls). Between blocks, ``progress()`` lets posted allreduces advance:
    MPI moves non-blocking collectives forward only inside MPI calls.
    """
    d = params.size - 1
    r = model.residuals(xbuf, ybuf, params, buf)
    first_post = 0
    in_comm = 0
    for lo, hi in buckets:
        top = min(hi, d)
        if lo < top:
            np.matmul(r, xbuf[:, lo:top], out=buf[lo:top])
        c0 = clock()
        first_post = first_post or c0
        allreduce.start(buf[lo:hi], step)
        allreduce.progress()
        in_comm += clock() - c0
    c0 = clock()
    allreduce.wait()
    done = clock()
    return first_post, done, in_comm + done - c0


def _whole_batch(X: np.ndarray, rows, xbuf: np.ndarray) -> np.ndarray:
    """The step's rows as one array (bucketed steps only): a view, or gathered into xbuf."""
    return model.row_block(X, rows, 0, model.count_rows(rows, X.shape[0]), xbuf)


def check_replicas(comm, params: np.ndarray, step: int, watchdog=None) -> None:
    """Collective: all ranks must hold bitwise-identical parameters (DESIGN.md invariant 3)."""
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


def evaluate(
    comm, ds: Dataset, params: np.ndarray, l2: float, watchdog=None
) -> tuple[float, float]:
    """Collective: objective and accuracy on the full data set, each rank scanning ``n/p`` rows
    (or its shard)."""
    lo, hi = scan_range(ds, comm.Get_size(), comm.Get_rank())
    n = ds.n_total
    w, b = params[:-1], float(params[-1])
    sums = np.zeros(2, dtype=np.float64)  # loss sum, correct predictions
    for start in range(lo, hi, EVAL_BLOCK):
        stop = min(start + EVAL_BLOCK, hi)
        X = np.asarray(ds.X[start:stop], dtype=params.dtype)
        y = ds.y[start:stop]
        z = X @ w + b
        sums[0] += model.loss_terms(z, y).sum()
        sums[1] += np.count_nonzero((z > 0) == (y == 1))
    dog = watchdog or NoWatchdog()
    dog.arm("final evaluation allreduce", -1, perf_counter_ns())
    sums = comm.allreduce(sums)  # one small control message at the end, not the hot path
    dog.disarm()
    loss = sums[0] / n + 0.5 * l2 * float(np.dot(w, w))
    return float(loss), float(sums[1] / n)
