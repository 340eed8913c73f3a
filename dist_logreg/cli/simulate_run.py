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
from dist_logreg.collective import costfile
from dist_logreg.collective.algorithms import scheduled_keys
from dist_logreg.errors import UsageError
from dist_logreg.files import check_output, regular_file, write_output
from dist_logreg.record.progress import status_line
from dist_logreg.sim import exact as exact_mode
from dist_logreg.sim import packet_options
from dist_logreg.sim.fabric import cost_model_fabrics, resolve
from dist_logreg.sim.runner import note_cost_model, sweep
from dist_logreg.sim.text import lines


def resolve_fabric(args):
    """Read what ``--fabric cluster:NAME`` and ``--flows`` name; the library resolves."""
    state, flows = None, None
    if args.fabric.strip().lower().startswith("cluster:"):
        from dist_logreg.ops.cluster import state as cluster_state

        name = args.fabric.split(":", 1)[1].partition(",")[0].strip()
        state = dataclasses.asdict(cluster_state.load(name))
    if args.flows:
        flows = schema.read(args.flows, "--flows")
    name = f"--flows {args.flows}"
    return resolve(args.fabric, cluster_state=state, flows=flows, flows_name=name)


#: A sweep estimated longer than this says so (from its first seed) before going on.
ANNOUNCE_S = 60.0


def progress_printer(points: int, seeds: int, stream=None, lines: bool = True):
    """``progress(done, total, elapsed)`` over runs (points x seeds): after the first run,
    an estimate when the sweep will take over :data:`ANNOUNCE_S`; then (``lines``) a line
    at most every second once it has run 2 s."""
    last = [0.0]

    def progress(done: int, total: int, elapsed: float) -> None:
        out = stream or sys.stderr
        if done == 1 and elapsed * total > ANNOUNCE_S:
            print(
                f"simulate: about {elapsed * total:,.0f} s for {total} runs ({points} "
                f"point(s) x {seeds} seed(s)), estimated from the first seed's {elapsed:.2f} s",
                file=out,
                flush=True,
            )
        if lines and elapsed > 2.0 and (elapsed - last[0] >= 1.0 or done == total):
            last[0] = elapsed
            status_line(
                out,
                f"simulate: {done}/{total} runs ({points} point(s) x {seeds} seed(s)), "
                f"{elapsed:.1f} s",
                done == total,
            )

    return progress


def run(args) -> int:
    """``simulate``; Ctrl-C (SIGINT) stops it with one line, exit 130, nothing written."""
    try:
        return _run(args)
    except KeyboardInterrupt:
        msg = "dist-logreg simulate: interrupted (SIGINT); nothing written"
        print(msg, file=sys.stderr, flush=True)
        return 130


def _run(args) -> int:
    for key in ("algorithm", "ranks", "bytes"):  # ring,ring: one row, not two
        setattr(args, key, list(dict.fromkeys(getattr(args, key))))
    if args.out is not None:
        _check_out(args.out, getattr(args, "force", False))
    for alg in args.algorithm:
        if alg not in scheduled_keys():  # reduce-scatter/ring and the like too
            raise UsageError(
                f"--algorithm: expected one of {', '.join(scheduled_keys())} (with a "
                f"schedule), got {alg!r}"
            )
    fab, spec_text = resolve_fabric(args)
    if args.exact and args.engine == "flow":
        _check_exact(args)
    fabric_for = None
    if args.cost_model:
        model = costfile.load(regular_file(args.cost_model, "--cost-model"))
        fabric_for = cost_model_fabrics(fab, model, args.cost_model)
    options = packet_options.from_args(args, args.engine)  # typed once; refused if ignored
    options = exact_mode.from_args(args, args.engine, args.exact) or options
    sizes = args.bytes
    train = None
    if args.run:
        from dist_logreg.cli.simulate_train import read_run

        train = read_run(args.run)
        sizes = [train["bytes_per_call"]]
    doc = sweep(
        fab,
        spec_text,
        args.ranks,
        args.algorithm,
        sizes,
        seeds=args.seeds,
        per_host=args.ranks_per_host,
        mode=args.placement,
        placement_seed=args.placement_seed,
        exact=args.exact,
        engine=args.engine,
        options=options,
        fabric_for=fabric_for,
        progress=progress_printer(  # with --json: only the estimate (stdout is the JSON)
            len(args.ranks) * len(args.algorithm) * len(sizes), args.seeds, lines=not args.json
        ),
    )
    if fabric_for:
        note_cost_model(doc, fabric_for, args.cost_model)
    if train:
        from dist_logreg.cli.simulate_train import predict_steps

        doc["run"] = predict_steps(train, doc["results"])
    _check_finite(doc)
    try:
        text = json.dumps(doc, indent=1, allow_nan=False)  # never Infinity or NaN: not JSON
    except ValueError as exc:
        raise RuntimeError(
            f"simulate: a non-finite number in the results ({exc}) (a bug)"
        ) from None
    if args.out is not None:
        _write(Path(args.out), text, getattr(args, "force", False))
    print(text if args.json else "\n".join(lines(doc)))
    if args.out and not args.json:
        print(f"wrote {Path(args.out) / 'simulate.json'}")
    return 0


#: ``--exact`` sweeps estimated longer than this are refused up front, longer than
#: :data:`EXACT_WARN_S` announced.
EXACT_MAX_S, EXACT_WARN_S = 3600.0, 60.0


def _check_exact(args) -> None:
    """Refuse an ``--exact`` sweep that would run for hours; say so when it takes minutes."""
    from dist_logreg.sim.exact import estimate_s

    one = sum(estimate_s(a, p) for a in args.algorithm for p in args.ranks)
    total = one * len(args.bytes) * args.seeds
    what = (
        f"--exact: estimated {total:,.0f} s of event-by-event simulation (about 2 us per "
        f"message, ranks x steps messages per run, {len(args.bytes)} size(s) x {args.seeds} "
        f"seed(s); good to a factor of a few)"
    )
    if total > EXACT_MAX_S:
        raise UsageError(
            f"{what}, expected at most {EXACT_MAX_S:.0f} s: drop --exact (phase-synchronous "
            f"runs in seconds), or simulate fewer ranks, sizes or seeds"
        )
    if total > EXACT_WARN_S:
        print(f"simulate: {what}", file=sys.stderr, flush=True)


def _check_out(out: str, force: bool = False) -> None:
    """Before simulating: ``--out`` must name a directory, new or existing, not a file, and
    ``simulate.json`` there must be new (or ``--force``) and never a link (files.check_output)."""
    if not out.strip():
        raise UsageError("--out: expected a directory name, got ''")
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out}: expected a directory (new or existing), got a file")
    check_output(Path(out) / "simulate.json", "--out", force)


def _write(out: Path, text: str, force: bool = False) -> None:
    write_output(out / "simulate.json", text + "\n", "--out", force)


def _check_finite(doc) -> None:
    for r in doc["results"]:
        for k in ("time_s", "ideal_s", "busbw"):
            if not np.isfinite(r[k]):
                raise RuntimeError(
                    f"simulate: {r['algorithm']} {r['bytes']} B: {k} is {r[k]} (a bug)"
                )
