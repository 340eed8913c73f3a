"""The instrumentation tax: run under mpirun at 2 ranks, e.g.

    mpirun -n 2 python benchmarks/bench_overhead.py

Measures in one run, interleaved round by round (medians over rounds; on a shared machine
absolute times drift, ratios measured side by side much less):

(a) ``bench``'s small-message latency against a bare mpi4py loop of the same call
    (``Allreduce(IN_PLACE, buf, SUM)``, one clock read around the whole loop, as OMB-Py
    times), per size from 8 B to 1 KiB (and 64 KiB, 1 MiB for reference). Also OMB-Py's own
    form (separate send and receive buffers). Goal: bench avg / bare <= 1.2 for 8 B-1 KiB.
    bench's avg is the mean over iterations of the slowest rank; bare is the slowest
    rank's mean: on a noisy machine the first is the larger by construction.
(b) the cost per recorded call, in one process with a call that does nothing: bench's timed
    loop (one clock read and one ``array('q')`` store per call) and the trainer's
    ``Instrumented`` wrapper (two clock reads, four stores), each minus the bare loop of
    the same call. Goal: <= 0.2 us per recorded call.
(c) the trainer's per-step instrumentation: the loop's own records (a step's five clock
    reads and ``_Records.put``: the marks row, the comm time, the batch loss) and the
    wrapper, per step.

Prints a table on rank 0; ``--json FILE`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from time import perf_counter_ns

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402

from dist_logreg.bench.cases import Case  # noqa: E402
from dist_logreg.bench.sweep import time_calls, timed  # noqa: E402
from dist_logreg.comm.base import Allreduce, MPIAllreduce  # noqa: E402
from dist_logreg.comm.wrappers import Instrumented  # noqa: E402
from dist_logreg.train.loop import _Records  # noqa: E402

SIZES = (8, 64, 256, 1024, 64 << 10, 1 << 20)


#: Calls per block: a block's mean is one sample; the median over blocks resists the
#: preemptions a shared machine inflicts (one lost time slice spoils one block, not all).
BLOCK = 100


def block_medians(ns: np.ndarray) -> float:
    """Seconds per call: the median over blocks of :data:`BLOCK` calls of the block mean."""
    ns = ns.ravel()
    blocks = ns[: ns.size - ns.size % BLOCK].reshape(-1, BLOCK).mean(axis=1)
    return float(np.median(blocks)) * 1e-9


def bare_blocks(comm, call, iters: int) -> tuple[float, float]:
    """A bare loop of ``call()``, one clock read per block; (mean, block median) seconds.

    Each block's time is the slowest rank's (as bench's per-iteration time).
    """
    nblocks = max(1, iters // BLOCK)
    stamps = np.empty(nblocks + 1, dtype=np.int64)
    comm.Barrier()
    stamps[0] = perf_counter_ns()
    for b in range(1, nblocks + 1):
        for _ in range(BLOCK):
            call()
        stamps[b] = perf_counter_ns()
    per_block = np.diff(stamps)
    comm.Allreduce(MPI.IN_PLACE, per_block, MPI.MAX)
    return float(per_block.sum()) * 1e-9 / (nblocks * BLOCK), float(
        np.median(per_block)
    ) * 1e-9 / BLOCK


def part_a(comm, rounds: int, iters: int) -> list[dict]:
    keys = (
        "bare_mean",
        "bare_med",
        "omb_mean",
        "omb_med",
        "bench_mean",
        "bench_med",
        "bench_p50",
        "rank_mean",
        "rank_med",
    )
    res = {s: {k: [] for k in keys} for s in SIZES}
    impl = MPIAllreduce(comm)
    for _ in range(rounds):
        for s in SIZES:
            n = iters if s <= 1024 else max(BLOCK, iters // (10 if s <= 65536 else 100))
            buf, out = np.zeros(s // 8), np.zeros(s // 8)
            bare = partial(comm.Allreduce, MPI.IN_PLACE, buf, MPI.SUM)
            omb = partial(comm.Allreduce, buf, out, MPI.SUM)
            m, med = bare_blocks(comm, bare, n)
            res[s]["bare_mean"].append(m)
            res[s]["bare_med"].append(med)
            _, _, ns = timed(comm, Case("allreduce", impl, comm), s, "float64", 5, n)
            res[s]["bench_mean"].append(float(ns.mean()) * 1e-9)
            res[s]["bench_med"].append(block_medians(ns))
            res[s]["bench_p50"].append(float(np.median(ns)) * 1e-9)
            m, med = bare_blocks(comm, omb, n)
            res[s]["omb_mean"].append(m)
            res[s]["omb_med"].append(med)
            # bench's loop on its own rank's clock (no MAX per iteration): what recording
            # costs, apart from the slowest-rank convention
            call = impl.bind(buf)
            comm.Barrier()
            own = time_calls(call, n)
            res[s]["rank_mean"].append(comm.allreduce(float(own.mean()) * 1e-9, op=MPI.MAX))
            res[s]["rank_med"].append(comm.allreduce(block_medians(own), op=MPI.MAX))
    return [{"bytes": s, **{k: float(np.median(v)) for k, v in d.items()}} for s, d in res.items()]


class _Nothing(Allreduce):
    name = "nothing"

    def allreduce(self, buf, step=-1):
        pass


def part_b(rounds: int, n: int, blocks: int = 50) -> dict:
    """ns per call in one process, the minimum over short interleaved blocks (a block
    that lost the CPU is slower, never faster): bare loops and the recorded ones."""
    buf = np.zeros(1)
    inner = _Nothing()
    wrapped = Instrumented(_Nothing(), capacity=n)
    call = inner.bind(buf)
    out = {"bare_bound": [], "bench_loop": [], "bare_call": [], "instrumented": []}
    for _ in range(rounds * blocks):
        t0 = perf_counter_ns()
        for _ in range(n):
            call()
        t1 = perf_counter_ns()
        time_calls(call, n)
        t2 = perf_counter_ns()
        a = inner.allreduce
        for i in range(n):
            a(buf, i)
        t3 = perf_counter_ns()
        wrapped.calls = 0
        w = wrapped.allreduce
        for i in range(n):
            w(buf, i)
        t4 = perf_counter_ns()
        for key, dt in zip(out, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            out[key].append(dt / n)
    low = {k: float(np.min(v)) for k, v in out.items()}
    low["bench_cost"] = low["bench_loop"] - low["bare_bound"]
    low["wrapper_cost"] = low["instrumented"] - low["bare_call"]
    return low


def part_c(rounds: int, n: int, blocks: int = 50) -> dict:
    """ns per step of the loop's own records: the five clock reads of a step and the real
    ``_Records.put`` of train/loop.py, minus an empty loop; each the minimum over blocks."""
    clock = perf_counter_ns
    rec = _Records(n)
    full, empty = [], []
    for _ in range(rounds * blocks):
        t_start = clock()
        for i in range(n):
            t0 = clock()
            t1 = clock()
            t2 = clock()
            t3 = clock()
            rec.put(i, (t0, t1, t2, t3, clock()), t3 - t2, 0.5)
        t_mid = clock()
        for _ in range(n):
            pass
        full.append((t_mid - t_start) / n)
        empty.append((clock() - t_mid) / n)
    return {"loop_records": float(np.min(full) - np.min(empty))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds (median taken)")
    ap.add_argument("--iters", type=int, default=2000, help="calls per size and round, <= 1 KiB")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    part_a(comm, 1, 200)  # warm-up
    a = part_a(comm, args.rounds, args.iters)
    b = part_b(args.rounds, 2000) if rank == 0 else None
    c = part_c(args.rounds, 1000) if rank == 0 else None
    if rank:
        return 0
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    print(f"world size {size}; {args.rounds} interleaved rounds, medians; loadavg {' '.join(load)}")
    print(
        "(a) allreduce, us per call: mean over all calls (OSU's number) and, in [ ], the "
        f"median over blocks of {BLOCK} calls of the block mean (robust to preemption)"
    )
    print(
        f"    {'bytes':>10} {'bare IN_PLACE':>20} {'OMB-Py form':>20} {'bench':>20} "
        f"{'bench loop, own rank':>21} {'bench/bare':>14} {'own rank/bare':>14}"
    )
    for r in a:
        r["ratio_mean"] = r["bench_mean"] / r["bare_mean"]
        r["ratio"] = r["bench_med"] / r["bare_med"]
        goal = "  goal <= 1.2" if r["bytes"] <= 1024 else ""
        r["ratio_own"] = r["rank_med"] / r["bare_med"]
        cols = " ".join(
            f"{r[k + '_mean'] * 1e6:9.2f} [{r[k + '_med'] * 1e6:7.2f}]"
            for k in ("bare", "omb", "bench", "rank")
        )
        print(
            f"    {r['bytes']:>8} B {cols} {r['ratio_mean']:6.2f} [{r['ratio']:5.2f}]"
            f" [{r['ratio_own']:5.2f}]{goal}"
        )
    print(
        "(b) per recorded call (a call that does nothing, min over blocks): bench loop "
        f"+{b['bench_cost']:.0f} ns "
        f"(bare {b['bare_bound']:.0f} ns); Instrumented wrapper +{b['wrapper_cost']:.0f} ns "
        f"(bare {b['bare_call']:.0f} ns); goal <= 200 ns"
    )
    step = c["loop_records"] + b["wrapper_cost"]
    print(
        f"(c) trainer, per step: the loop's records {c['loop_records']:.0f} ns + the wrapper "
        f"{b['wrapper_cost']:.0f} ns = {step / 1e3:.2f} us per step"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "world_size": size,
                    "loadavg": load,
                    "allreduce": a,
                    "per_call_ns": b,
                    "per_step_ns": {**c, "wrapper": b["wrapper_cost"], "total": step},
                },
                fh,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
