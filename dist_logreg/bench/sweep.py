"""``dist-logreg bench``: an allreduce micro-benchmark (after OSU's osu_allreduce and
nccl-tests' all_reduce_perf).

For each algorithm and message size: barrier, untimed warm-up calls, then timed calls. Before
every call the buffer is refilled from a template (untimed), so every call reduces the same
known values and the last result can be checked exactly: rank r holds
``(i mod 13 + 1) * (r + 1)`` at element i, so the sum is ``(i mod 13 + 1) * p(p+1)/2``, an
integer that float32 and float64 represent exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from time import perf_counter_ns

import numpy as np

from dist_logreg.bench import cost
from dist_logreg.collective import algorithms as table
from dist_logreg.collective.closed_form import busbw_factor
from dist_logreg.comm.registry import make_allreduce
from dist_logreg.errors import RunError, UsageError
from dist_logreg.files import write_json
from dist_logreg.record import provenance
from dist_logreg.record.progress import bar_for

#: Above this size, fewer iterations (OSU does the same): large calls are long and stable.
LARGE = 1 << 20


def sizes(min_bytes: int, max_bytes: int, factor: int) -> list[int]:
    """Message sizes from ``min_bytes`` to ``max_bytes``, multiplying by ``factor``."""
    out, s = [], min_bytes
    while s <= max_bytes:
        out.append(s)
        s *= factor
    return out


def measure(comm, allreduce, nbytes: int, dtype, warmup: int, iters: int) -> dict:
    """Collective: time ``iters`` calls of ``allreduce`` on ``nbytes``; validate the result."""
    p, rank = comm.Get_size(), comm.Get_rank()
    dtype = np.dtype(dtype)
    count = max(1, nbytes // dtype.itemsize)
    base = (np.arange(count) % 13 + 1).astype(dtype)
    template = base * (rank + 1)
    buf = np.empty_like(template)
    if nbytes > LARGE:
        scale = LARGE / nbytes
        warmup, iters = max(1, int(warmup * scale)), max(3, int(iters * scale))
    for _ in range(warmup):
        np.copyto(buf, template)
        allreduce.allreduce(buf)
    comm.Barrier()
    total = 0
    for _ in range(iters):
        np.copyto(buf, template)
        t0 = perf_counter_ns()
        allreduce.allreduce(buf)
        total += perf_counter_ns() - t0
    wrong = int(np.count_nonzero(buf != base * (p * (p + 1) // 2)))
    mean = total * 1e-9 / iters
    times = comm.allgather(mean)
    wrong = comm.allreduce(wrong)
    avg = float(np.mean(times))
    algbw = count * dtype.itemsize / avg / 1e9 if avg > 0 else 0.0
    return {
        "algorithm": allreduce.name,
        "bytes": count * dtype.itemsize,
        "count": count,
        "dtype": dtype.name,
        "iters": iters,
        "time_s": avg,
        "time_s_min": float(np.min(times)),
        "time_s_max": float(np.max(times)),
        "algbw": algbw,
        "busbw": algbw * busbw_factor(p),
        "wrong": wrong,
        "world_size": p,
    }


HEADER = (
    f"{'algorithm':>20} {'bytes':>10} {'count':>9} {'avg(us)':>10} {'min(us)':>10} "
    f"{'max(us)':>10} {'algbw(GB/s)':>12} {'busbw(GB/s)':>12} {'wrong':>6}"
)


def format_row(r: dict) -> str:
    return (
        f"{r['algorithm']:>20} {r['bytes']:>10} {r['count']:>9} {r['time_s'] * 1e6:>10.2f} "
        f"{r['time_s_min'] * 1e6:>10.2f} {r['time_s_max'] * 1e6:>10.2f} {r['algbw']:>12.3f} "
        f"{r['busbw']:>12.3f} {r['wrong']:>6}"
    )


def run(comm, args, mpi_record: dict | None) -> int:
    """Collective: the whole sweep; rank 0 prints the table and writes ``--out``.

    ``--out`` holds ``{"run": <where the run came from>, "records": [...]}``.
    """
    rank = comm.Get_rank()
    tag = args.tag or (Path(args.out).stem if args.out else None)
    run_info = provenance.collect(comm, tag)
    algorithms = algorithm_names(args.allreduce)
    sweep = sizes(args.min_bytes, args.max_bytes, args.factor)
    bar = bar_for(rank, sys.stdout, len(algorithms) * len(sweep), "size", "bench")

    def say(text: str, flush: bool = True) -> None:
        if bar is not None:
            bar.write(text)
        elif rank == 0:
            print(text, flush=flush)

    say(
        f"# dist-logreg bench: {comm.Get_size()} ranks, {args.dtype}, warmup {args.warmup}, "
        f"iters {args.iters} (scaled down above {LARGE >> 20} MiB); time = mean per call on "
        "each rank, avg/min/max over ranks; algbw = bytes / avg; busbw = algbw * 2(p-1)/p; "
        "wrong = elements differing from the exact sum, all ranks",
        flush=True,
    )
    if mpi_record and table.MPI.name in algorithms:
        say(f"# mpi: {mpi_record['library']}; {mpi_record['setting']}", flush=True)
    model = getattr(args, "model_doc", None)  # --model: predicted columns
    say(HEADER + (cost.HEADER if model else ""), flush=True)
    place = cost.where(comm, args.ranks_per_node)
    reduce_s: dict[int, float] = {}  # local np.add per size: gamma, measured alongside
    records = []
    for name in algorithms:
        allreduce = make_allreduce(name, comm, ranks_per_node=args.ranks_per_node)
        for nbytes in sweep:
            rec = measure(comm, allreduce, nbytes, args.dtype, args.warmup, args.iters)
            if table.get(name).library and mpi_record:
                rec["mpi_algorithm"] = mpi_record
            if rec["bytes"] not in reduce_s:
                reduce_s[rec["bytes"]] = cost.measure_reduce(
                    comm, rec["bytes"], args.dtype, args.iters
                )
            rec.update(place, reduce_s=reduce_s[rec["bytes"]])
            if model:
                rec.update(cost.compare(model, rec))
            records.append(rec)
            say(format_row(rec) + (cost.format_cols(rec) if model else ""), flush=True)
            if bar is not None:
                bar.advance_to(len(records), f"{name} {nbytes} B")
        allreduce.free()  # hierarchical's split communicators
    if bar is not None:
        bar.close()
    if rank == 0 and args.out:
        write_json(Path(args.out), {"run": run_info, "records": records})
        say(f"# wrote {args.out}")
    if getattr(args, "fit", None):
        cost.fit_after_sweep(comm, records, args.fit, say)
    bad = sum(r["wrong"] for r in records)
    if bad:
        raise RunError(f"validation failed: {bad} wrong elements in total (see column wrong)")
    return 0


def algorithm_names(text: str) -> list[str]:
    """``"mpi, ring"`` -> ``["mpi", "ring"]``, each checked against the registry."""
    names = [a.strip() for a in text.split(",") if a.strip()]
    known = table.names()
    unknown = [a for a in names if a not in known]
    if not names or unknown:
        raise UsageError(f"--allreduce: expected a comma list of {', '.join(known)}, got {text!r}")
    return names


def check_args(args) -> None:
    """Raise ``UsageError`` for any bench option out of range (sizes already parsed)."""
    algorithm_names(args.allreduce)
    checks = [
        (args.min_bytes >= 1, "--min-bytes", "at least 1", args.min_bytes),
        (
            args.max_bytes >= args.min_bytes,
            "--max-bytes",
            f">= --min-bytes ({args.min_bytes})",
            args.max_bytes,
        ),
        (args.factor >= 2, "--factor", "an integer >= 2", args.factor),
        (args.iters >= 1, "--iters", "an integer >= 1", args.iters),
        (args.warmup >= 0, "--warmup", "an integer >= 0", args.warmup),
        (args.tag is None or bool(args.tag.strip()), "--tag", "a non-empty label", args.tag),
        (
            args.ranks_per_node is None or args.ranks_per_node >= 1,
            "--ranks-per-node",
            "an integer >= 1",
            args.ranks_per_node,
        ),
    ]
    for ok, flag, expected, got in checks:
        if not ok:
            raise UsageError(f"{flag}: expected {expected}, got {got!r}")
