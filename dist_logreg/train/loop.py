"""The training loop: the only place that knows the order of a step.

One step (DESIGN.md invariant 1)::

    data     gather this rank's contiguous slice of the global batch
    compute  model.grad_sums -> packed buffer [grad params, loss_sum, count]
    comm     ONE in-place allreduce(SUM) of that buffer
    update   divide by the GLOBAL count, add the L2 term, momentum SGD step

With ``--bucket-bytes`` the compute and comm phases interleave instead (as in DDP and
Horovod): after the forward pass, the weight gradient is produced one column block (bucket)
at a time, and each bucket's non-blocking allreduce starts as soon as it is ready, while the
next block is computed. Same sums, same result up to summation order.

The model (binary or softmax, dense or sparse rows) is an object with the contract of
:mod:`dist_logreg.train.models`: the loop asks it for the parameter count, the buffer size
and the packed sums, and knows that ``params[:n_weights]`` are penalized, that the last two
buffer slots are the loss sum and the row count.

Every rank runs every line, in the same order (rank-specific printing is in the reporter).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from time import perf_counter_ns

import numpy as np

from dist_logreg.errors import Diverged, ReplicasDisagree
from dist_logreg.train import models
from dist_logreg.train.checkpoint import Checkpoint, Checkpointer, good_state_note
from dist_logreg.train.config import TrainConfig, total_steps, validate
from dist_logreg.train.data import Dataset, GlobalBatches, check_values, rank_slice
from dist_logreg.train.evaluate import evaluate
from dist_logreg.train.faults import NoWatchdog, inject, parse_fault, planned

#: Columns of the per-step timing array.
PHASES = ("data", "compute", "comm", "update")
#: Timestamps taken in every step (perf_counter_ns): the columns of ``TrainResult.marks``.
MARKS = ("data_start", "data_end", "first_post", "comm_end", "update_end")


@dataclass
class TrainResult:
    """What one rank ends with. ``params`` is the model's flat vector (``[coef..., intercept]``,
    shape ``(d + 1,)`` for binary; see :mod:`dist_logreg.train.models`)."""

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
    model: object = None  # the models.Binary / models.Softmax trained (None: binary)
    evals: list = field(default_factory=list)  # held-out metrics: {"step", "loss", ...}
    eval_ns: int = 0  # time spent in periodic held-out evaluations (not in loop_ns)

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
        return self.params[:-1] if self.model is None else self.model.unpack(self.params)[0]

    @property
    def intercept(self):
        if self.model is None or self.model.kind == "binary":
            return float(self.params[-1])
        return self.model.unpack(self.params)[1]

    def model_arrays(self) -> dict:
        """The arrays of ``model.npz``: ``coef``, ``intercept`` and ``classes``."""
        classes = (0, 1) if self.model is None else self.model.classes
        return {"coef": self.coef, "intercept": np.asarray(self.intercept), "classes": classes}


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
        The full data set as seen from this rank (possibly memory-mapped).
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
    """
    size, rank = comm.Get_size(), comm.Get_rank()
    dog = watchdog or NoWatchdog()
    validate(cfg, world_size=size, n_samples=ds.n_samples)
    mdl = model if model is not None else models.Binary(ds.n_features)
    with dog.phase("checking the data values (allgather)"):
        check_values(comm, ds, mdl.n_classes)
    steps = total_steps(cfg, ds.n_samples)
    first = min(start.step, steps) if start else 0
    reporter.start(cfg, ds, size, steps)
    dtype = np.dtype(cfg.dtype)
    d = ds.n_features
    fault = planned(parse_fault(cfg.inject_fault), rank) if cfg.inject_fault else None

    batches = GlobalBatches(ds.n_samples, cfg.batch_size, cfg.seed)
    lo, hi = rank_slice(cfg.batch_size, size, rank)
    m = hi - lo
    xbuf = None if ds.sparse else np.empty((m, d), dtype=dtype)  # sparse rows: gathered as CSR
    ybuf = np.empty(m, dtype=dtype)
    # take() straight into the preallocated buffer needs matching dtypes; a memory map of
    # another dtype goes through a cast instead.
    gather_direct = ds.X.dtype == dtype
    n_params, n_w = mdl.n_params, mdl.n_weights
    params = np.zeros(n_params, dtype=dtype)  # identical initial parameters everywhere
    velocity = np.zeros(n_params, dtype=dtype)
    if start:
        params[:] = start.params
        velocity[:] = start.velocity
    w = params[:n_w]
    grad = np.empty(n_params, dtype=dtype)
    buf = np.empty(mdl.buffer_size, dtype=dtype)
    buckets = bucket_ranges(buf.size, n_w, cfg.bucket_bytes // dtype.itemsize)
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
        idx = np.sort(batches.batch(step)[lo:hi])  # sorted: sequential reads of a memory map
        if xbuf is None:
            xb = ds.X[idx].astype(dtype, copy=False)  # CSR rows
        elif gather_direct:
            xb = np.take(ds.X, idx, axis=0, out=xbuf, mode="clip")  # idx valid: skip checks
        else:
            xbuf[...] = ds.X[idx]
            xb = xbuf
        np.take(ds.y, idx, out=ybuf, mode="clip")
        t1 = clock()
        if buckets is None:
            mdl.grad_sums(xb, ybuf, params, buf)
            t2 = clock()
            dog.arm("gradient allreduce", step, t2)
            allreduce.allreduce(buf, step)
            t3 = clock()
            in_comm = t3 - t2
        else:
            dog.arm("bucketed gradient allreduce", step, t1)
            t2, t3, in_comm = _bucketed_step(
                allreduce, mdl, xb, ybuf, params, buf, buckets, clock, step
            )
        dog.disarm()
        if not math.isfinite(buf.sum()):  # the reduced buffer is the same on every rank
            _diverged(step, buf, lr, checkpointer)
        count = buf[-1]
        np.divide(buf[:n_params], count, out=grad)  # exact global mean, also for uneven slices
        if l2:
            grad[:n_w] += l2 * w
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
        steps / batches.steps_per_epoch,
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
