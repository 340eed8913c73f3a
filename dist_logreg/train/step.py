"""One optimizer step: gradient sums, one allreduce, the same update on every rank.

The loop (:mod:`dist_logreg.train.loop`) calls a step object once per step; everything the
step needs lives in it (the packed buffer, the model's workspace, the bucket plan), so a
second way to synchronise (another collective, another split of the update) is another
class with the same call::

    step(state, step_index, t0) -> (marks, in_comm_ns, batch_loss)

``marks`` are the five timestamps of :data:`~dist_logreg.record.result.MARKS`. The packed
buffer is ``[gradient sums of params, loss_sum, count]`` (docs/design.md, invariant 1): one
in-place allreduce(SUM) of it, then division by the GLOBAL count gives the exact mean, also
for uneven slices. With ``--bucket-bytes`` the compute and comm phases interleave (as in
DDP and Horovod): the weight gradient is produced one column block (bucket) at a time, and
each bucket's non-blocking allreduce starts as soon as it is ready. Same sums, same result
up to summation order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from time import perf_counter_ns

import numpy as np

from dist_logreg.errors import Diverged
from dist_logreg.train import models
from dist_logreg.train.checkpoint import good_state_note


@dataclass
class SgdState:
    """What the update changes: the flat parameters and the momentum velocity (``(n_params,)``
    each, identical on every rank)."""

    params: np.ndarray
    velocity: np.ndarray

    @classmethod
    def initial(cls, n_params: int, dtype, start=None) -> SgdState:
        """Zeros everywhere (identical initial parameters), or a checkpoint's arrays."""
        state = cls(np.zeros(n_params, dtype=dtype), np.zeros(n_params, dtype=dtype))
        if start:
            state.params[:] = start.params
            state.velocity[:] = start.velocity
        return state


class AllreduceStep:
    """The data-parallel step: this rank's gradient sums, ONE allreduce, the same update.

    Example::

        >>> step = AllreduceStep(cfg, mdl, ds, plan, allreduce, watchdog, checkpointer)
        >>> marks, in_comm, loss = step(state, 0, perf_counter_ns())
    """

    def __init__(self, cfg, mdl, ds, plan, allreduce, watchdog, checkpointer=None):
        self.cfg, self.mdl, self.ds, self.plan = cfg, mdl, ds, plan
        self.allreduce, self.dog, self.checkpointer = allreduce, watchdog, checkpointer
        dtype = self.dtype = np.dtype(cfg.dtype)
        self.buf = np.empty(mdl.buffer_size, dtype=dtype)
        self.grad = np.empty(mdl.n_params, dtype=dtype)
        self.work = mdl.workspace(plan.rows_per_step, dtype)
        self.buckets = bucket_ranges(
            self.buf.size, mdl.n_weights, cfg.bucket_bytes // dtype.itemsize
        )
        if self.buckets is not None:  # bucketed steps need the whole batch, column by column
            self.xbuf = None if ds.sparse else np.empty((plan.rows_per_step, ds.n_features), dtype)
            self.ybuf = np.empty(plan.rows_per_step, dtype=dtype)

    def __call__(self, state: SgdState, step: int, t0: int) -> tuple[tuple, int, float]:
        rows = self.plan.rows(step)
        if self.buckets is None:
            t1, t2, t3, in_comm = self._sums_then_allreduce(state.params, rows, step)
        else:
            t1, t2, t3, in_comm = self._bucketed(state.params, rows, step)
        self.dog.disarm()
        if not math.isfinite(self.buf.sum()):  # the reduced buffer is the same on every rank
            diverged(step, self.buf, self.cfg, self.checkpointer)
        loss = self._update(state)
        return (t0, t1, t2, t3, perf_counter_ns()), in_comm, loss

    def _sums_then_allreduce(self, params, rows, step) -> tuple[int, int, int, int]:
        t1 = perf_counter_ns()
        self.mdl.grad_sums(self.ds.X, self.ds.y, params, self.buf, rows, self.work)
        t2 = perf_counter_ns()
        self.dog.arm("gradient allreduce", step, t2)
        self.allreduce.allreduce(self.buf, step)
        t3 = perf_counter_ns()
        return t1, t2, t3, t3 - t2

    def _bucketed(self, params, rows, step) -> tuple[int, int, int, int]:
        xb = models.whole_batch(self.ds.X, rows, self.xbuf, self.dtype)
        yb = models.row_labels(self.ds.y, rows, self.ybuf[: xb.shape[0]])
        t1 = perf_counter_ns()
        self.dog.arm("bucketed gradient allreduce", step, t1)
        t2, t3, in_comm = bucketed_step(
            self.allreduce, self.mdl, xb, yb, params, self.buf, self.buckets, perf_counter_ns, step
        )
        return t1, t2, t3, in_comm

    def _update(self, state: SgdState) -> float:
        """Divide by the GLOBAL count, add the L2 term, momentum SGD; the batch's mean loss."""
        cfg, buf, grad, n_pen = self.cfg, self.buf, self.grad, self.mdl.n_weights
        count = buf[-1]
        np.divide(buf[: self.mdl.n_params], count, out=grad)  # exact mean, also uneven slices
        if cfg.l2:
            grad[:n_pen] += cfg.l2 * state.params[:n_pen]
        if cfg.momentum:
            state.velocity *= cfg.momentum
            state.velocity += grad
            state.params -= cfg.lr * state.velocity
        else:
            state.params -= cfg.lr * grad
        return float(buf[-2] / count)


def diverged(step, buf, cfg, checkpointer) -> None:
    """NaN/inf in the reduced gradient or loss: name the last good state, stop all ranks."""
    what = "loss" if not math.isfinite(buf[-2]) else "gradient"
    raise Diverged(
        f"step {step}: the global batch {what} is not finite (nan or inf); training "
        f"diverged ({advice(cfg)})" + good_state_note(checkpointer)
    )


def advice(cfg) -> str:
    """What to lower: the learning rate, and the L2 penalty where lr x l2 >= 1 (each step
    then scales the weights by 1 - lr x l2, away from 0: --l2 1e308 was told to lower
    --lr: fourteenth attack, P-L3)."""
    l2 = f" or a smaller --l2 than {cfg.l2:g}" if cfg.lr * cfg.l2 >= 1 else ""
    return f"try a smaller --lr than {cfg.lr}{l2}"


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


def bucketed_step(
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
