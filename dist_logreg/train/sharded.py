"""``train --sync sharded``: the ZeRO-1 / FSDP traffic pattern for one packed buffer.

Instead of one allreduce of the packed gradient buffer ``[gradient sums, loss_sum, count]``
(``n`` elements) and the same update on every rank, each step:

1. reduce-scatters the buffer: rank ``r`` receives the SUM over ranks of its chunk
   ``[b_r, b_{r+1})`` (chunks from :func:`~dist_logreg.comm.links.bounds`, sizes differ
   by at most one);
2. updates only the parameters in its chunk, with only its slice of the momentum
   (optimizer state per rank falls as 1/p);
3. allgathers the parameters: a second buffer ``[params, loss_sum, count]`` of the same
   ``n`` elements, each rank's chunk filled (the owner of the last chunk also passes the
   reduced loss and count), so afterwards every rank holds every parameter and the loss.

Same bytes as a reduce-scatter + allgather allreduce (ring, Rabenseifner), in a different
rhythm: the update sits between the two halves. The arithmetic of the update is the
allreduce mode's, element by element; only the summation order of the reduction may differ,
so the trajectory equals the allreduce mode's up to rounding (tested against the serial
oracle at 1, 2 and 3 ranks).

The divisor: the update needs the global row count before the allgather brings the reduced
one, and only the last chunk's owner has it. Every step of this trainer has exactly
``batch_size`` rows (partial batches are dropped), so that is the divisor; the reduced count
arriving with the allgather is checked against it on every rank, every step.

The object records both collectives' calls in preallocated ``array('q')`` (start, duration,
payload bytes, step, which collective): the same records as
:class:`~dist_logreg.comm.wrappers.Instrumented`, plus ``collective``.
"""

from __future__ import annotations

from array import array
from time import perf_counter_ns

import numpy as np

from dist_logreg.comm.collectives import make_collective
from dist_logreg.comm.links import Traffic, bounds
from dist_logreg.errors import RunError
from dist_logreg.train.syncmode import HALVES, SHARDED_COLLECTIVES


class ShardedSync:
    """Reduce-scatter, the update of this rank's slice, allgather (collective, ``comm``).

    Parameters
    ----------
    comm : mpi4py communicator
    algorithm : one of :data:`~dist_logreg.train.syncmode.HALVES` (the run's ``--allreduce``)
    n : int
        Elements of the packed buffer; :attr:`buf` is allocated here (the loop computes the
        gradient sums into it; ours reduce-scatters it in place), :attr:`params` too (a view
        of the allgather buffer :attr:`full`, so the loop updates nothing itself).
    dtype : the run's float dtype
    n_params, n_penalized : ints
        Parameters at the front of the buffer; the first ``n_penalized`` carry the L2 term.
    lr, l2, momentum : the update's constants; count : the global rows of every step.
    capacity : calls to preallocate records for (grown by doubling).
    """

    node_of = None
    sync = "sharded"  # what the loop asks: it then calls step() instead of allreduce()

    def __init__(
        self,
        comm,
        algorithm: str,
        n: int,
        dtype,
        n_params: int,
        n_penalized: int,
        lr: float,
        l2: float,
        momentum: float,
        count: int,
        capacity: int = 1024,
    ):
        p, r = comm.Get_size(), comm.Get_rank()
        self.buf = buf = np.zeros(n, dtype=dtype)
        rs_name, ag_name = HALVES[algorithm]
        self.name = algorithm
        self.halves = (rs_name, ag_name)  # the summary names each collective's own
        self.rs = make_collective("reduce-scatter", rs_name, comm)
        self.ag = make_collective("allgather", ag_name, comm)
        b = bounds(n, p)
        self.lo, self.hi = b[r], b[r + 1]
        self.plo, self.phi = min(self.lo, n_params), min(self.hi, n_params)
        self.pen_hi = max(self.plo, min(self.phi, n_penalized))
        self.full = np.zeros(n, dtype=buf.dtype)  # [params, loss_sum, count]: the allgather
        self.params = self.full[:n_params]
        self.n_params = n_params
        own = self.hi - self.lo
        self.out = buf[self.lo : self.hi] if self.rs.in_place else np.empty(own, buf.dtype)
        self.grad = np.empty(self.phi - self.plo, dtype=buf.dtype)
        self.velocity = np.zeros(self.phi - self.plo, dtype=buf.dtype) if momentum else None
        self.lr, self.l2, self.momentum, self.count = lr, l2, momentum, float(count)
        self._rs = self.rs.bind(buf, self.out)
        self._ag = self.ag.bind(self.full)
        self.payload = buf.nbytes  # nccl-tests' size S of both collectives
        self.traffic = _combined(p, self.rs.traffic, self.ag.traffic)
        self.calls, self._cap = 0, max(2, 2 * capacity)
        self._rec = [array("q", bytes(8 * self._cap)) for _ in range(5)]
        self.last_comm_ns = self.last_update_ns = 0

    @property
    def optimizer_state_bytes(self) -> int:
        """Bytes of momentum this rank holds (its slice only)."""
        return 0 if self.velocity is None else self.velocity.nbytes

    def step(self, step: int) -> float:
        """One sharded step; returns the global mean batch loss (the same on every rank)."""
        clock = perf_counter_ns
        t0 = clock()
        self._rs()
        t1 = clock()
        self._update()
        t2 = clock()
        self._ag()
        t3 = clock()
        self._record(t0, t1 - t0, step, 0)
        self._record(t2, t3 - t2, step, 1)
        self.last_comm_ns, self.last_update_ns = (t1 - t0) + (t3 - t2), t2 - t1
        loss_sum, count = self.full[-2], self.full[-1]
        if count != self.count:  # the same value on every rank: all raise together
            raise RunError(
                f"step {step}: --sync sharded divided by {self.count:g} rows, but the "
                f"reduced row count is {count:g} (expected every step to have batch_size rows)"
            )
        return float(loss_sum / count)

    def _update(self) -> None:
        """The allreduce mode's update (train/loop.py), on this rank's slice only."""
        k = self.phi - self.plo
        grad, params = self.grad, self.params[self.plo : self.phi]
        np.divide(self.out[:k], self.count, out=grad)
        if self.l2:
            pen = self.pen_hi - self.plo
            grad[:pen] += self.l2 * params[:pen]
        if self.velocity is not None:
            self.velocity *= self.momentum
            self.velocity += grad
            params -= self.lr * self.velocity
        else:
            params -= self.lr * grad
        tail = max(self.lo, self.n_params)  # loss_sum and count, if they are in my chunk
        if tail < self.hi:
            self.full[tail : self.hi] = self.out[tail - self.lo :]

    def _record(self, start: int, ns: int, step: int, which: int) -> None:
        i = self.calls
        if i == self._cap:
            for a in self._rec:
                a.frombytes(bytes(8 * self._cap))
            self._cap *= 2
        start_a, ns_a, bytes_a, step_a, coll_a = self._rec
        start_a[i], ns_a[i], bytes_a[i], step_a[i], coll_a[i] = (
            start,
            ns,
            self.payload,
            step,
            which,
        )
        self.calls = i + 1

    def records(self) -> dict[str, np.ndarray]:
        """Both collectives' calls as int64 arrays: ``start_ns``, ``ns``, ``bytes``, ``step``
        and ``collective`` (an index into :data:`SHARDED_COLLECTIVES`)."""
        keys = ("start_ns", "ns", "bytes", "step", "collective")
        out = {
            k: np.frombuffer(a, dtype=np.int64)[: self.calls].copy()
            for k, a in zip(keys, self._rec, strict=True)
        }
        out["collective_names"] = SHARDED_COLLECTIVES
        return out

    def free(self) -> None:
        """Nothing to release (no communicator of its own)."""


def _combined(p: int, *parts) -> Traffic | None:
    """One traffic count over both halves (None: the MPI library's, not observable)."""
    if any(t is None for t in parts):
        return None

    class _Sum(Traffic):
        @property
        def bytes(self):
            return [sum(t.bytes[k] for t in parts) for k in range(p)]

        @property
        def messages(self):
            return [sum(t.messages[k] for t in parts) for k in range(p)]

    return _Sum.__new__(_Sum)


class ShardedStep:
    """The loop's step for ``--sync sharded`` (the call of
    :class:`~dist_logreg.train.step.AllreduceStep`): this rank's gradient sums into the
    sync's buffer, then :meth:`ShardedSync.step` (reduce-scatter, slice update, allgather).

    The state's parameters become the sync's (a view of its allgather buffer, so the
    update of the slice and the allgather change them in place) and its velocity the
    momentum slice. Marks: the update's time is moved to the end (``comm_end`` is the
    allgather's end minus the update), so the phases add up as in allreduce mode.

    Example::

        >>> step = ShardedStep(cfg, mdl, ds, plan, sync, watchdog, state)
        >>> marks, in_comm, loss = step(state, 0, perf_counter_ns())
    """

    def __init__(self, cfg, mdl, ds, plan, sync: ShardedSync, watchdog, state, checkpointer=None):
        self.cfg, self.mdl, self.ds, self.plan = cfg, mdl, ds, plan
        self.sync, self.dog, self.checkpointer = sync, watchdog, checkpointer
        self.work = mdl.workspace(plan.rows_per_step, np.dtype(cfg.dtype))
        sync.params[:] = state.params  # zeros, identical everywhere
        state.params = sync.params
        state.velocity = sync.velocity if sync.velocity is not None else sync.grad[:0]

    def __call__(self, state, step: int, t0: int) -> tuple[tuple, int, float]:
        from dist_logreg.train.step import diverged

        sync, clock = self.sync, perf_counter_ns
        rows = self.plan.rows(step)
        t1 = clock()
        self.mdl.grad_sums(self.ds.X, self.ds.y, state.params, sync.buf, rows, self.work)
        t2 = clock()
        self.dog.arm("gradient reduce-scatter + allgather (--sync sharded)", step, t2)
        loss = sync.step(step)
        end = clock()
        self.dog.disarm()
        if not np.isfinite(sync.full.sum()):  # after the allgather: the same bits everywhere
            diverged(step, sync.full, self.cfg, self.checkpointer)
        return (t0, t1, t2, end - sync.last_update_ns, end), sync.last_comm_ns, loss
