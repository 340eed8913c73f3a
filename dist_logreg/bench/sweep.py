"""``dist-logreg bench``: collective micro-benchmarks (after the OSU micro-benchmarks and
nccl-tests).

For each collective, implementation and message size: untimed warm-up calls, then
``--repeats`` timed loops of ``--iters`` calls, each loop after a barrier, then one checked
call (:mod:`dist_logreg.bench.cases`). A timed loop reads the clock once per call into
a preallocated ``array('q')`` and calls the collective through a bound call with no
arguments (``bind``), so recording adds one clock read and one store per call and no Python
object that outlives it; ``benchmarks/bench_overhead.py`` measures that against a bare
mpi4py loop. Per iteration the slowest rank's time counts (OSU's convention): the ranks'
per-iteration times are reduced with MAX after the loops, never during them.
"""

from __future__ import annotations

import csv
import io
import sys
from array import array
from pathlib import Path
from time import perf_counter_ns

import numpy as np
from mpi4py import MPI

from dist_logreg.bench import cost
from dist_logreg.bench.cases import Case
from dist_logreg.bench.summary import best_per_size, summarize
from dist_logreg.collective import algorithms as table
from dist_logreg.collective.algorithms import COLLECTIVES, IMPLEMENTATIONS
from dist_logreg.comm.collectives import make_collective
from dist_logreg.comm.registry import make_allreduce
from dist_logreg.errors import RunError, UsageError
from dist_logreg.files import write_json, write_output
from dist_logreg.record import provenance
from dist_logreg.record.progress import bar_for

#: Above this size, fewer iterations (OSU does the same): large calls are long and stable.
LARGE = 1 << 20
#: The most timed calls per size (--iters x --repeats): their timings are allocated first.
MAX_TIMED = 10_000_000
#: The timing columns every bench record has (collectives and point-to-point alike).
TIMING_COLUMNS = (
    "iters",
    "repeats",
    "time_s",
    "time_s_p50",
    "time_s_p99",
    "time_s_min",
    "time_s_max",
    "time_s_ci95",
)
#: The columns of ``--csv``, in order (the JSON records hold these and more).
CSV_COLUMNS = (
    "collective",
    "algorithm",
    "bytes",
    "count",
    "dtype",
    "world_size",
    *TIMING_COLUMNS,
    "algbw",
    "busbw",
    "busbw_factor",
    "wrong",
)


def sizes(min_bytes: int, max_bytes: int, factor: int) -> list[int]:
    """Sizes from ``min_bytes`` multiplying by ``factor``; ``max_bytes`` is always the last."""
    out, s = [], min_bytes
    while s <= max_bytes:
        out.append(s)
        s *= factor
    if out[-1] != max_bytes:
        out.append(max_bytes)  # inclusive: --max-bytes 1M --factor 4 ends at 1 MiB
    return out


def time_calls(call, iters: int, clock=perf_counter_ns) -> np.ndarray:
    """Nanoseconds of each of ``iters`` back-to-back ``call()``s: one clock read per call."""
    stamps = array("q", bytes(8 * (iters + 1)))
    stamps[0] = clock()
    for i in range(1, iters + 1):
        call()
        stamps[i] = clock()
    return np.diff(np.frombuffer(stamps, dtype=np.int64))


def scaled(nbytes: int, warmup: int, iters: int) -> tuple[int, int]:
    """Fewer warm-up and timed calls above :data:`LARGE` (at least 1 and 3)."""
    if nbytes <= LARGE:
        return warmup, iters
    scale = LARGE / nbytes
    return max(1, int(warmup * scale)), max(3, int(iters * scale))


def timed(comm, case: Case, nbytes: int, dtype, warmup: int, iters: int, repeats: int = 1):
    """Collective: set ``case`` up for ``nbytes``, warm up, time ``repeats`` loops.

    Returns ``(count, call, ns)``: ``ns`` of shape ``(repeats, iters)`` holds the slowest
    rank's nanoseconds of each iteration (the same array on every rank).
    """
    dtype = np.dtype(dtype)
    count, call = case.setup(nbytes, dtype)
    warmup, iters = scaled(count * dtype.itemsize, warmup, iters)
    for _ in range(warmup):
        call()
    ns = np.empty((repeats, iters), dtype=np.int64)
    for k in range(repeats):
        comm.Barrier()
        ns[k] = time_calls(call, iters)
    comm.Allreduce(MPI.IN_PLACE, ns, MPI.MAX)  # the slowest rank, iteration by iteration
    return count, call, ns


def measure(
    comm,
    impl,
    nbytes: int,
    dtype,
    warmup: int,
    iters: int,
    repeats: int = 1,
    collective: str = "allreduce",
) -> dict:
    """Collective: time ``impl`` (an allreduce or another collective) on ``nbytes``.

    Returns one record: the columns of :func:`~dist_logreg.bench.summary.summarize`
    (the slowest rank's time per iteration), algbw = bytes / avg, busbw = algbw * the
    collective's nccl-tests factor, and ``wrong``: elements off the exact result, all ranks.
    """
    case = Case(collective, impl, comm)
    dtype = np.dtype(dtype)
    count, call, ns = timed(comm, case, nbytes, dtype, warmup, iters, repeats)
    wrong = comm.allreduce(case.check(call))
    rec = {
        "collective": collective,
        "algorithm": impl.name,
        "bytes": count * dtype.itemsize,
        "count": count,
        "dtype": dtype.name,
        **summarize(ns),
    }
    avg, p = rec["time_s"], comm.Get_size()
    algbw = rec["bytes"] / avg / 1e9 if avg > 0 else 0.0
    factor = case.busbw_factor() if p > 1 else 0.0
    rec.update(algbw=algbw, busbw=algbw * factor, busbw_factor=factor, wrong=wrong, world_size=p)
    return rec


HEADER = (
    f"{'algorithm':>18} {'bytes':>10} {'count':>9} {'iters':>6} {'avg(us)':>10} "
    f"{'p50(us)':>10} {'p99(us)':>10} {'min(us)':>10} {'max(us)':>10} {'ci95(us)':>9} "
    f"{'algbw(GB/s)':>12} {'busbw(GB/s)':>12} {'wrong':>6}"
)


def format_row(r: dict) -> str:
    ci = "-" if r.get("time_s_ci95") is None else f"{r['time_s_ci95'] * 1e6:.2f}"
    us = [
        f"{r[k] * 1e6:>10.2f}"
        for k in ("time_s", "time_s_p50", "time_s_p99", "time_s_min", "time_s_max")
    ]
    return (
        f"{r['algorithm']:>18} {r['bytes']:>10} {r['count']:>9} {r['iters'] * r['repeats']:>6} "
        + " ".join(us)
        + f" {ci:>9} {r['algbw']:>12.3f} {r['busbw']:>12.3f} {r['wrong']:>6}"
    )


def plan(args) -> list[tuple[str, str]]:
    """``(collective, implementation)`` pairs in the order they run."""
    pairs = []
    for collective in collective_names(args.collective):
        if collective == "allreduce":
            pairs += [(collective, a) for a in algorithm_names(args.allreduce)]
        else:
            pairs += [(collective, a) for a in IMPLEMENTATIONS[collective]]
    return pairs


def keys(args) -> list[str]:
    """The algorithm-table keys of what runs (``ring``, ``reduce-scatter/ring``, ...)."""
    return [table.key(table.get(n, c)) for c, n in plan(args)]


def _build(comm, collective: str, name: str, ranks_per_node):
    if collective == "allreduce":
        return make_allreduce(name, comm, ranks_per_node=ranks_per_node)
    return make_collective(collective, name, comm)


def run(comm, args, mpi_record: dict | None) -> int:
    """Collective: the whole sweep; rank 0 prints the table and writes ``--out``/``--csv``.

    ``--out`` holds ``{"run": <where the run came from>, "records": [...]}``.
    """
    rank, p = comm.Get_rank(), comm.Get_size()
    tag = args.tag or (Path(args.out).stem if args.out else None)
    run_info = provenance.collect(comm, tag)
    pairs = plan(args)
    sweep = sizes(args.min_bytes, args.max_bytes, args.factor)
    bar = bar_for(rank, sys.stdout, len(pairs) * len(sweep), "size", "bench")
    repeats = getattr(args, "repeats", 1)

    def say(text: str) -> None:
        if bar is not None:
            bar.write(text)
        elif rank == 0:
            print(text, flush=True)

    say(
        f"# dist-logreg bench: {p} ranks, {args.dtype}, warmup {args.warmup}, iters "
        f"{args.iters} x repeats {repeats} (scaled down above {LARGE >> 20} MiB); one "
        "iteration = the slowest rank's time; avg/p50/p99/min/max over iterations (iters "
        "column: how many); ci95 = half-width of the 95% interval of the mean over repeats; "
        "algbw = bytes / avg; busbw = algbw * the nccl-tests factor of the collective; "
        "wrong = elements differing from the exact result, all ranks"
    )
    if mpi_record and ("allreduce", table.MPI.name) in pairs:
        say(f"# mpi allreduce: {mpi_record['library']}; {mpi_record['setting']}")
    model = getattr(args, "model_doc", None)  # --model: predicted columns
    place = cost.where(comm, args.ranks_per_node)
    reduce_s: dict[int, float] = {}  # local np.add per size: gamma, measured alongside
    records, current = [], None
    for collective, name in pairs:
        if collective != current:
            factor = f"busbw factor {_factor_text(collective)}"
            say(f"# {collective} ({factor})")
            say(HEADER + (cost.HEADER if model else ""))
            current = collective
        impl = _build(comm, collective, name, args.ranks_per_node)
        for nbytes in _distinct(Case(collective, impl, comm), sweep, args.dtype, say):
            rec = measure(
                comm, impl, nbytes, args.dtype, args.warmup, args.iters, repeats, collective
            )
            if collective == "allreduce" and table.get(name).library and mpi_record:
                rec["mpi_algorithm"] = mpi_record
            if rec["bytes"] not in reduce_s:  # gamma: what the cost model fits next to alpha
                reduce_s[rec["bytes"]] = cost.measure_reduce(
                    comm, rec["bytes"], args.dtype, args.iters
                )
            rec.update(place, reduce_s=reduce_s[rec["bytes"]])
            extra = ""
            if model:
                rec.update(cost.compare(model, rec))
                extra = cost.format_cols(rec)
            records.append(rec)
            say(format_row(rec) + extra)
            if bar is not None:
                bar.advance_to(len(records), f"{collective} {name} {nbytes} B")
        if hasattr(impl, "free"):
            impl.free()  # hierarchical's split communicators
    if bar is not None:
        bar.close()
    for line in best_per_size(records):
        say(line)
    if rank == 0:
        _write(args, run_info, records, say)
    if getattr(args, "fit", None):
        force = bool(getattr(args, "force", False))
        cost.fit_after_sweep(comm, records, args.fit, say, force)  # one fit per implementation
    bad = sum(r["wrong"] for r in records)
    if bad:
        raise RunError(f"validation failed: {bad} wrong elements in total (see column wrong)")
    return 0


def _distinct(case: Case, sweep: list[int], dtype, say) -> list[int]:
    """The sizes of ``sweep`` whose element count (rounded to whole elements, and to chunks
    of ``p``) differs from the previous one's: each size measured once, as report and
    ``model fit`` read a file (``--min-bytes 1`` at float64 would measure 8 B four times)."""
    itemsize, out, last = np.dtype(dtype).itemsize, [], None
    for nbytes in sweep:
        n = case.count_for(nbytes, itemsize) * itemsize
        if n == last:
            say(f"# {case.name}: {nbytes} B rounds to {n} B, measured already: skipped")
            continue
        out.append(nbytes)
        last = n
    return out


def _factor_text(collective: str) -> str:
    return {"allreduce": "2(p-1)/p", "broadcast": "1"}.get(collective, "(p-1)/p")


def _write(args, run_info: dict, records: list[dict], say) -> None:
    """Rank 0: ``--out`` (JSON) and ``--csv``."""
    force = bool(getattr(args, "force", False))
    if args.out:
        write_json(Path(args.out), {"run": run_info, "records": records}, "--out", force)
        say(f"# wrote {args.out}")
    if getattr(args, "csv", None):
        write_csv(Path(args.csv), records, force)
        say(f"# wrote {args.csv}")


def write_csv(path: Path, records: list[dict], force: bool = False) -> None:
    """One row per record, columns :data:`CSV_COLUMNS` (seconds, bytes, GB/s; empty: none)."""
    f = io.StringIO(newline="")
    out = csv.writer(f)
    out.writerow(CSV_COLUMNS)
    for r in records:
        out.writerow(["" if r.get(k) is None else r.get(k) for k in CSV_COLUMNS])
    write_output(path, f.getvalue(), "--csv", force)


def _names(text: str, allowed, flag: str, known=None) -> list[str]:
    names = [a.strip() for a in str(text).split(",") if a.strip()]
    unknown = [a for a in names if not (known(a) if known else a in allowed)]
    if not names or unknown:
        raise UsageError(f"{flag}: expected a comma list of {', '.join(allowed)}, got {text!r}")
    return list(dict.fromkeys(names))


def algorithm_names(text: str) -> list[str]:
    """``"mpi, ring"`` -> ``["mpi", "ring"]``, each checked against the registry
    (``hierarchical-2d:rabenseifner`` too: its inter-node algorithm)."""
    return _names(text, table.names() + table.INTER_SPELLINGS, "--allreduce", table.known)


def collective_names(text: str) -> list[str]:
    """``"allreduce,allgather"`` -> the list, each one of :data:`COLLECTIVES`."""
    return _names(text, COLLECTIVES, "--collective")


def available_memory() -> int | None:
    """Bytes of memory available on this machine (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return kib * 1024


def check_args(args, local: int = 1) -> None:
    """Raise ``UsageError`` for any bench option out of range (sizes already parsed);
    ``local``: the ranks of the job on this machine (each holds its buffers at once)."""
    from dist_logreg.bench import memory

    algorithm_names(args.allreduce)
    repeats = getattr(args, "repeats", 1)
    if not getattr(
        args, "p2p", None
    ):  # a send, a receive and a reference buffer of the largest, every rank
        memory.check(
            3 * args.max_bytes,
            max(1, local),
            f"--max-bytes {args.max_bytes}",
            "a smaller --max-bytes",
            available_memory(),
        )
    if args.iters * max(1, repeats) > MAX_TIMED:  # 8 B a call, in two arrays
        raise UsageError(
            f"--iters {args.iters} x --repeats {repeats}: expected at most {MAX_TIMED:,} "
            "timed calls per size (each keeps 8 bytes of timings, held before the loop)"
        )
    collective_names(getattr(args, "collective", "allreduce"))
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
        (repeats >= 1, "--repeats", "an integer >= 1", repeats),
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
