"""What ``simulate`` does once parsed: read the files the fabric needs (a cluster's state, a
flow map, a cost model) and hand them to :mod:`dist_logreg.sim.fabric`, sweep, print, write
``simulate.json``; with ``--run``, predict a train run's step time."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from dist_logreg import schema
from dist_logreg.cli.guard import interrupt_name, interrupt_status
from dist_logreg.collective import algorithms as table
from dist_logreg.collective import costfile
from dist_logreg.errors import UsageError
from dist_logreg.files import (
    check_new_folder,
    check_output,
    not_an_input,
    regular_file,
    write_output,
)
from dist_logreg.record.progress import progress_printer
from dist_logreg.report.simcheck import MAX_ROWS, MAX_SERIES
from dist_logreg.sim import exact as exact_mode
from dist_logreg.sim import packet_options
from dist_logreg.sim.fabric import cost_model_fabrics, resolve
from dist_logreg.sim.placement import check_slots
from dist_logreg.sim.runner import note_cost_model, sweep
from dist_logreg.sim.scenario import apply_fabric, apply_workload, parse_scenario
from dist_logreg.sim.step import neighbour_lines, step_doc, step_lines
from dist_logreg.sim.text import lines
from dist_logreg.sim.workload import collectives, parse_workload


def resolve_fabric(args):
    """Read what ``--fabric cluster:NAME`` and ``--flows`` name; the library resolves."""
    state, flows = None, None
    if args.fabric.strip().lower().startswith("cluster:"):
        from dist_logreg.ops.cluster import state as cluster_state

        name = args.fabric.split(":", 1)[1].partition(",")[0].strip()
        state = dataclasses.asdict(cluster_state.load(name, f"--fabric {args.fabric}: NAME"))
    if args.flows is not None:
        if not args.flows.strip():  # "" was silently no flow map at all
            raise UsageError(f"--flows: expected the path of a flows.json, got {args.flows!r}")
        flows = schema.read(args.flows, "--flows")
    name = f"--flows {args.flows}"
    return resolve(args.fabric, cluster_state=state, flows=flows, flows_name=name)


def run(args) -> int:
    """``simulate``; Ctrl-C (SIGINT) or SIGTERM stops it with one line, exit 130 or 143,
    nothing written."""
    try:
        return _run(args)
    except KeyboardInterrupt as exc:
        msg = f"dist-logreg simulate: interrupted ({interrupt_name(exc)}); nothing written"
        print(msg, file=sys.stderr, flush=True)
        return interrupt_status(exc)


def _run(args) -> int:
    for key in ("fabric", "ranks"):
        if getattr(args, key) is None:
            raise UsageError(f"--{key}: required (or --sweep FILE)")
    if getattr(args, "resume", False):
        raise UsageError("--resume: goes with --sweep FILE (a sweep's partial results)")
    if args.out is not None:
        _check_out(args.out, getattr(args, "force", False), args)
    doc = simulate_doc(args, progress_lines=not args.json)
    text = to_json(doc)
    if args.out is not None:
        _write(Path(args.out), text, getattr(args, "force", False))
    print(text if args.json else "\n".join(lines(doc) + neighbour_lines(doc) + step_text(doc)))
    if args.out and not args.json:
        print(f"wrote {Path(args.out) / 'simulate.json'}")
    return 0


def step_text(doc) -> list[str]:
    """The step table under the collectives' table, when there is a workload."""
    return step_lines(doc["step"]) if "step" in doc else []


def to_json(doc) -> str:
    """``simulate.json``'s text: never Infinity or NaN (not JSON)."""
    for r in doc["results"]:
        for k in ("time_s", "ideal_s", "busbw"):
            if not np.isfinite(r[k]):
                raise RuntimeError(
                    f"simulate: {r['algorithm']} {r['bytes']} B: {k} is {r[k]} (a bug)"
                )
    try:
        return json.dumps(doc, indent=1, allow_nan=False)
    except ValueError as exc:
        raise RuntimeError(
            f"simulate: a non-finite number in the results ({exc}) (a bug)"
        ) from None


#: ``--bytes`` when neither the command line nor a sweep file gives it.
DEFAULT_BYTES = [1 << 20, 100 << 20]


@dataclasses.dataclass
class Plan:
    """What one ``simulate`` run will do, every option read and checked, nothing run."""

    fab: object
    spec_text: str
    scenario: object
    neighbour: object
    fabric_for: object
    options: object
    sizes: list
    algs: list
    train: dict | None
    work: object


def plan(args) -> Plan:
    """Read and check every option of ``args`` (``UsageError``), nothing simulated: a
    sweep checks each point with it before the first runs."""
    for key in ("run", "workload", "scenario", "cost_model"):  # "" was "not given" (W-M1)
        if isinstance(v := getattr(args, key, None), str) and not v.strip():
            raise UsageError(f"--{key.replace('_', '-')}: expected a path or a spec, got {v!r}")
    if args.run and getattr(args, "workload", None):
        raise UsageError(
            "--workload and --run: give one (--run takes the run's own buckets and measured "
            "compute; --workload would replace both)"
        )
    if args.run and args.bytes is not None:
        raise UsageError(
            "--bytes: not read with --run (the run's own bytes per call are simulated); drop it"
        )
    if getattr(args, "workload", None) and args.bytes is not None:
        raise UsageError(
            "--bytes: not read with --workload (its buckets' bytes are simulated: params=, "
            "dtype= and buckets=, or bucket-sizes); drop it"
        )
    if args.bytes is None:
        args.bytes = list(DEFAULT_BYTES)
    for key in ("algorithm", "ranks", "bytes"):  # ring,ring: one row, not two
        setattr(args, key, list(dict.fromkeys(getattr(args, key))))
    if (n := len(args.algorithm) * len(args.bytes)) > MAX_SERIES:  # report refused (V-H3)
        raise UsageError(f"--algorithm x --bytes: expected at most {MAX_SERIES} series, got {n}")
    for alg in args.algorithm:
        if not (table.known(alg) and table.get(alg).phases):  # reduce-scatter/ring too
            choices = table.scheduled_keys() + table.INTER_SPELLINGS
            raise UsageError(
                f"--algorithm: expected one of {', '.join(choices)} (with a schedule), got {alg!r}"
            )
    fab, spec_text = resolve_fabric(args)
    scenario = parse_scenario(getattr(args, "scenario", None))
    fab = apply_fabric(scenario, fab)
    for ranks in args.ranks:  # a sweep's point too big for its fabric: before any run (T-L1)
        check_slots(ranks, fab, args.ranks_per_host)
    neighbour = scenario if scenario.kind == "neighbour" else None
    if neighbour and not (args.exact and args.engine == "flow"):
        raise UsageError(
            f"--scenario {scenario.spec}: two jobs at once run in the dependency graph: add "
            "--exact (with --engine flow; the phase-synchronous engine cannot)"
        )
    fabric_for = None
    if args.cost_model:
        model = costfile.load(regular_file(args.cost_model, "--cost-model"))
        fabric_for = cost_model_fabrics(fab, model, args.cost_model)
    options = packet_options.from_args(args, args.engine)  # typed once; refused if ignored
    options = exact_mode.from_args(args, args.engine, args.exact) or options
    sizes, algs = args.bytes, args.algorithm
    train = None
    if args.run:
        from dist_logreg.cli.simulate_train import read_run

        train = read_run(args.run)
        sizes = [train["bytes_per_call"]]
    work = _workload(args, train)
    if work is not None:  # the step's buckets: each distinct size, each collective once
        work.check_ranks(args.ranks)  # strong= scales the compute: bounded at every count
        sizes = sorted(set(work.sizes()))
        algs = list(dict.fromkeys(c for a in args.algorithm for c in collectives(work, a)))
    if (rows := len(args.ranks) * len(algs) * len(sizes)) > MAX_ROWS:  # report's (W-H4)
        raise UsageError(
            f"--ranks x --algorithm x --bytes: expected at most {MAX_ROWS:,} rows (what report "
            f"draws), got {rows:,}"
        )
    if scenario.kind == "straggler" and work is None:
        raise UsageError(f"--scenario {scenario.spec}: a straggler slows a step: give --workload")
    return Plan(fab, spec_text, scenario, neighbour, fabric_for, options, sizes, algs, train, work)


def simulate_doc(args, progress_lines: bool = True, progress=None) -> dict:
    """The ``simulate.json`` document of the parsed options ``args`` (nothing printed but
    the progress on standard error; ``progress`` replaces the printer)."""
    pl = plan(args)
    fab, spec_text, scenario, neighbour = pl.fab, pl.spec_text, pl.scenario, pl.neighbour
    fabric_for, options, sizes, algs, train, work = (
        pl.fabric_for,
        pl.options,
        pl.sizes,
        pl.algs,
        pl.train,
        pl.work,
    )
    if args.engine == "packet":
        _check_packet_sweep(args, fab, fabric_for, algs, sizes, options)
    if args.exact and args.engine == "flow":  # what will run: the buckets, not --bytes
        _check_exact(args, algs, sizes, neighbour)
    doc = sweep(
        fab,
        spec_text,
        args.ranks,
        algs,
        sizes,
        seeds=args.seeds,
        per_host=args.ranks_per_host,
        mode=args.placement,
        placement_seed=args.placement_seed,
        exact=args.exact,
        engine=args.engine,
        options=options,
        fabric_for=fabric_for,
        neighbour=neighbour,
        progress=progress  # with --json: only the estimate (stdout is the JSON)
        or progress_printer(
            len(args.ranks) * len(algs) * len(sizes), args.seeds, lines=progress_lines
        ),
    )
    if fabric_for:
        note_cost_model(doc, fabric_for, args.cost_model)
    if train:
        from dist_logreg.sim.workload import predict_steps

        doc["run"] = predict_steps(train, doc["results"])
    if scenario.kind != "none":
        doc["scenario"] = scenario.describe()
    if work is not None:
        doc["step"] = step_doc(apply_workload(scenario, work, min(args.ranks)), doc["results"])
    from dist_logreg.report.simulate import within_bounds

    within_bounds(doc)  # one set of bounds with report's (Q-H7)
    return doc


def _workload(args, train):
    """``--workload SPEC``, or with ``--run`` the run's own buckets and compute; else None."""
    spec = getattr(args, "workload", None)
    if spec:
        return parse_workload(spec)
    if train is None:
        return None
    from dist_logreg.sim.workload import run_workload

    return run_workload(train)


#: ``--exact`` sweeps estimated longer than this are refused up front, longer than
#: :data:`EXACT_WARN_S` announced.
EXACT_MAX_S, EXACT_WARN_S = 3600.0, 60.0


def _check_exact(args, algs, sizes, neighbour=None) -> None:
    """Refuse an ``--exact`` sweep that would run for hours; say so when it takes minutes.
    ``algs`` and ``sizes``: what runs (with a workload, its collectives and bucket sizes);
    a neighbour adds its run alone and the two jobs together."""
    from dist_logreg.sim.exact import check_memory, estimate_s

    one = sum(estimate_s(a, p) for a in algs for p in args.ranks)
    if neighbour is not None:
        v = neighbour.values
        other = sum(estimate_s(v["algorithm"] or a, v["ranks"]) for a in algs)
        one = 2 * (one + other * len(args.ranks))  # alone each, then both in one loop
    total = one * len(sizes) * args.seeds
    what = (
        f"--exact: estimated {total:,.0f} s of event-by-event simulation (about 2 us per "
        f"message, ranks x steps messages per run, {len(sizes)} size(s) x {args.seeds} "
        f"seed(s); good to a factor of a few)"
    )
    if total > EXACT_MAX_S:
        raise UsageError(
            f"{what}, expected at most {EXACT_MAX_S:.0f} s: drop --exact (phase-synchronous "
            f"runs in seconds), or simulate fewer ranks, sizes or seeds"
        )
    for a in algs:  # the largest message graph (with a neighbour's): before any is built
        also = None
        if neighbour is not None:
            also = (neighbour.values["algorithm"] or a, neighbour.values["ranks"])
        check_memory(a, max(args.ranks), also)
    if total > EXACT_WARN_S:
        print(f"simulate: {what}", file=sys.stderr, flush=True)


#: A packet sweep estimated longer than this says so before ns-3 loads.
PACKET_ANNOUNCE_S = 10.0


def samples_bytes(fab, rows: int, options) -> float:
    """About how many bytes of ``simulate.json`` the queue samples of ``rows`` packet rows
    take: each row samples every link, each number at most about 24 B of JSON."""
    samples = packet_options.parse_options(options).queue_samples
    return rows * (samples * 1.1 + 2) * (len(fab.link_src) + 1) * 24 if samples else 0.0


def check_samples_bytes(need: float, what: str) -> None:
    """Refuse queue samples that would make ``simulate.json`` larger than ``report`` reads
    (310 MB were written with exit 0, 3.4 GB of memory, and refused by report: nineteenth
    attack, W-H6)."""
    from dist_logreg.files import MAX_FILE_BYTES

    if need > MAX_FILE_BYTES:
        raise UsageError(
            f"--queue-samples: {what} would make about {need / 2**20:,.0f} MiB of "
            f"simulate.json, over the {MAX_FILE_BYTES >> 20} MiB report reads; expected fewer "
            "samples, rows or links"
        )


def _check_packet_sweep(args, fab, fabric_for, algs, sizes, options) -> None:
    """Refuse a packet sweep whose runs together exceed ``--max-wall``, before the first:
    the engine estimates each run (and refuses one over the limit), but a sweep of many
    runs each under it ran for hours. Each point is estimated on its first seed's
    placement; the seeds of a point send the same packets."""
    from dist_logreg.sim.engine import get_engine
    from dist_logreg.sim.job import Job
    from dist_logreg.sim.placement import place

    eng, limit = get_engine("packet"), packet_options.parse_options(options).max_wall
    points, total, worst = 0, 0.0, 0.0
    for p in args.ranks:
        for alg in algs:
            for n in sizes:
                f = fabric_for(alg, n) if fabric_for else fab
                host_of = place(p, f, args.ranks_per_host, args.placement, args.placement_seed)
                est = eng.prepare(Job(f, host_of, alg, n, options=options))[-1]
                points, total, worst = points + 1, total + est * args.seeds, max(worst, est)
    check_samples_bytes(samples_bytes(fab, points, options), f"{points} row(s) of samples")
    about = f"{total / 3600:.1f} h ({total:.0f} s)" if total >= 360 else f"{total:.3g} s"
    if PACKET_ANNOUNCE_S < total <= limit:  # said before ns-3 loads: nothing else prints
        print(
            f"simulate: --engine packet: about {about} of wall time for {points * args.seeds} "
            "run(s), estimated before ns-3 loads (packet hops x 40 us; good to a factor of a "
            "few)",
            file=sys.stderr,
            flush=True,
        )
    if total > limit:
        raise UsageError(
            f"--engine packet: this sweep of {points * args.seeds} runs ({points} point(s) x "
            f"{args.seeds} seed(s)) would take about {about} of wall time, over --max-wall "
            f"{limit:g} s (the longest run about {worst:.3g} s); use the flow engine, fewer "
            "ranks, sizes, algorithms or seeds, or a larger --max-wall"
        )


def _check_out(out: str, force: bool = False, args=None) -> None:
    """Before simulating: ``--out`` must name a directory, new or existing, not a file, and
    ``simulate.json`` there must be new (or ``--force``), never a link (files.check_output),
    never a file it reads (``args``' fabric, workload, cost model: R-M1)."""
    if not out.strip():
        raise UsageError("--out: expected a directory name, got ''")
    reads = [getattr(args, k, None) for k in ("fabric", "workload", "cost_model", "flows")]
    grid = getattr(args, "sweep", None)  # its grid, and a partial file's name (T-M1)
    reads = [x for x in [*reads, grid] if isinstance(x, str)]
    not_an_input(Path(out) / "simulate.json", reads, "a file it reads")
    if grid and Path(grid).name.startswith("simulate.json.partial"):
        not_an_input(Path(out) / Path(grid).name, [grid], "the --sweep grid, at a partial's name")
    if Path(out).exists() and not Path(out).is_dir():  # /dev/null was "a file" (T-L2)
        kind = "a file" if Path(out).is_file() else "a device, FIFO or socket"
        raise UsageError(f"--out {out}: expected a directory (new or existing), got {kind}")
    if Path(out).is_dir():
        from dist_logreg.record.outputs import held_results

        if held := held_results(Path(out)):  # report DIR read one of the two (P-M2)
            raise UsageError(
                f"--out {out}: holds a training run's results ({', '.join(held[:3])}); "
                "expected a directory of its own (report of it would read only one of them)"
            )
        check_output(Path(out) / "simulate.json", "--out", force)
    else:  # made when the results are written: a run refused later leaves no empty folder
        check_new_folder(Path(out))


def make_out(out: Path) -> None:
    """Make the ``--out`` folder, once every check passed (``UsageError`` on failure)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None


def _write(out: Path, text: str, force: bool = False) -> None:
    make_out(out)
    write_output(out / "simulate.json", text + "\n", "--out", force)
