"""Trainer overhead benchmark: run under mpirun, e.g.

    mpirun -n 2 python benchmarks/bench_step.py

Measures, in the same run and interleaved round by round (absolute times drift between
runs on shared machines; ratios measured side by side do not):

(a) the trainer's step time against a bare loop of the same math on the same rows plus
    one bare ``Allreduce`` of the same buffer (goal: ratio <= 1.15);
(b) the instrumented allreduce against a bare mpi4py ``Allreduce(IN_PLACE, ...)`` of the
    same buffer (goal: overhead <= 2%).

Prints a table on rank 0; ``--json FILE`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from time import perf_counter_ns

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per rank, before numpy loads

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402

from dist_logreg.comm.base import MPIAllreduce  # noqa: E402
from dist_logreg.comm.wrappers import Instrumented  # noqa: E402
from dist_logreg.record.console import NullReporter  # noqa: E402
from dist_logreg.train import data  # noqa: E402
from dist_logreg.train.config import TrainConfig  # noqa: E402
from dist_logreg.train.loop import train  # noqa: E402


def bare_loop(comm, ds, cfg, steps: int) -> float:
    """The same math on the same rows, written as plainly as possible: seconds per step."""
    size, rank = comm.Get_size(), comm.Get_rank()
    batches = data.GlobalBatches(ds.n_samples, cfg.batch_size, cfg.seed)
    lo, hi = data.rank_slice(cfg.batch_size, size, rank)
    d = ds.n_features
    xbuf = np.empty((hi - lo, d))
    ybuf = np.empty(hi - lo)
    params = np.zeros(d + 1)
    buf = np.empty(d + 3)
    comm.Barrier()
    t0 = perf_counter_ns()
    for step in range(steps):
        idx = np.sort(batches.batch(step)[lo:hi])
        np.take(ds.X, idx, axis=0, out=xbuf, mode="clip")
        np.take(ds.y, idx, out=ybuf, mode="clip")
        z = xbuf @ params[:d] + params[d]
        p = 0.5 + 0.5 * np.tanh(0.5 * z)
        r = p - ybuf
        buf[:d] = r @ xbuf
        buf[d] = r.sum()
        buf[d + 1] = (np.logaddexp(0.0, z) - ybuf * z).sum()
        buf[d + 2] = hi - lo
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        g = buf[: d + 1] / buf[d + 2]
        g[:d] += cfg.l2 * params[:d]
        params -= cfg.lr * g
    return (perf_counter_ns() - t0) * 1e-9 / steps


def trainer_loop(comm, ds, cfg) -> float:
    """The real trainer, instrumented as the CLI runs it: seconds per step."""
    allreduce = Instrumented(MPIAllreduce(comm), cfg.steps)
    result = train(comm, allreduce, cfg, ds, NullReporter())
    return result.loop_ns * 1e-9 / result.steps


def allreduce_pair(comm, nbytes: int, iters: int, blocks: int = 10) -> tuple[float, float]:
    """Seconds per call: bare ``Allreduce(IN_PLACE)`` and the instrumented wrapper.

    The two alternate in ``blocks`` short blocks, so drift of the machine hits both alike.
    """
    buf = np.ones(max(1, nbytes // 8))
    wrapped = Instrumented(MPIAllreduce(comm), iters)
    per_block = max(1, iters // blocks)
    bare_ns = inst_ns = 0
    for _ in range(blocks):
        comm.Barrier()
        t0 = perf_counter_ns()
        for _ in range(per_block):
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        t1 = perf_counter_ns()
        comm.Barrier()
        t2 = perf_counter_ns()
        for _ in range(per_block):
            wrapped.allreduce(buf)
        t3 = perf_counter_ns()
        wrapped.calls = 0
        bare_ns += t1 - t0
        inst_ns += t3 - t2
    n = blocks * per_block
    return bare_ns * 1e-9 / n, inst_ns * 1e-9 / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=100, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median taken)")
    ap.add_argument("--iters", type=int, default=2000, help="allreduce calls per round")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()

    comm = MPI.COMM_WORLD
    size, rank = comm.Get_size(), comm.Get_rank()
    ds = data.synthetic(args.samples, args.features, seed=0, dtype="float64")
    cfg = TrainConfig(
        batch_size=args.batch_size, steps=args.steps, lr=0.1, l2=1e-4, seed=0, check_every=0
    )
    payload = (args.features + 3) * 8
    bare_loop(comm, ds, cfg, 10)  # warm-up: page in the data, start MPI's paths
    trainer_loop(comm, ds, TrainConfig(**{**cfg.__dict__, "steps": 10}))
    step_bare, step_trainer = [], []
    for _ in range(args.rounds):
        step_bare.append(bare_loop(comm, ds, cfg, args.steps))
        step_trainer.append(trainer_loop(comm, ds, cfg))
    sizes = sorted({payload, 8, 64 * 1024, 1024 * 1024})
    ar = {s: ([], []) for s in sizes}
    for s in sizes:
        allreduce_pair(comm, s, max(10, args.iters // 10))  # warm-up
    for _ in range(args.rounds):
        for s in sizes:
            iters = args.iters if s <= 64 * 1024 else max(20, args.iters // 20)
            bare, inst = allreduce_pair(comm, s, iters)
            ar[s][0].append(bare)
            ar[s][1].append(inst)
    # Every rank measured; report the slowest rank's median (the step is as slow as it).
    med = lambda v: float(np.median(v))  # noqa: E731
    rows = comm.gather(
        {
            "step_bare_s": med(step_bare),
            "step_trainer_s": med(step_trainer),
            "allreduce": {s: (med(a), med(b)) for s, (a, b) in ar.items()},
        },
        root=0,
    )
    if rank != 0:
        return 0
    bare = max(r["step_bare_s"] for r in rows)
    trainer = max(r["step_trainer_s"] for r in rows)
    result = {
        "world_size": size,
        "workload": vars(args),
        "step_bare_s": bare,
        "step_trainer_s": trainer,
        "step_ratio": trainer / bare,
        "allreduce": [],
    }
    print(
        f"world size {size}; {args.samples} x {args.features} float64, global batch "
        f"{args.batch_size}, {args.rounds} interleaved rounds, medians, slowest rank"
    )
    print(
        f"(a) step time: trainer {trainer * 1e3:.3f} ms, bare loop {bare * 1e3:.3f} ms, "
        f"ratio {trainer / bare:.3f} (goal <= 1.15)"
    )
    print("(b) allreduce per call: bare Allreduce(IN_PLACE) vs instrumented wrapper")
    for s in sizes:
        b = max(r["allreduce"][s][0] for r in rows)
        i = max(r["allreduce"][s][1] for r in rows)
        tag = "  <- the trainer's buffer" if s == payload else ""
        print(
            f"    {s:>9} B   bare {b * 1e6:9.2f} us   instrumented {i * 1e6:9.2f} us   "
            f"overhead {100 * (i / b - 1):+6.2f}%{tag}"
        )
        result["allreduce"].append({"bytes": s, "bare_s": b, "instrumented_s": i})
        if s == payload:
            result["wrapper_cost_s"] = i - b
    cost = result["wrapper_cost_s"]
    print(
        f"    wrapper cost at the trainer's buffer: {cost * 1e6:.2f} us per call = "
        f"{100 * cost / trainer:.3f}% of a trainer step"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
