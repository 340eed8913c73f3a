"""``simulate --sweep FILE``: a TOML grid of ``simulate`` runs, serial or spread over MPI ranks.

The file's keys are the command's options (``ranks-per-host``, not ``--ranks-per-host``);
a list means "each of these", a single value one. Each value is read by the option's own
reader, so the file takes what the command line takes, and a bad one is one line naming
the file, the key and the value (exit 2). Options given on the command line stand for the
keys the file leaves out.

Started under ``mpirun -n N`` (``OMPI_COMM_WORLD_SIZE``, ``PMI_SIZE`` or ``PMIX_RANK`` in
the environment), MPI starts here (only then: a plain ``simulate`` never loads mpi4py) and
the points not yet done go round-robin over the ranks; rank 0 gathers them and writes the
one ``simulate.json``, its ``results`` in the points' order, as the serial sweep writes them.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import tomllib
from pathlib import Path

from dist_logreg.cli.guard import interrupt_name, interrupt_status, sigterm_as_sigint
from dist_logreg.errors import UsageError
from dist_logreg.files import MAX_FILE_BYTES, regular_file
from dist_logreg.record.progress import status_line
from dist_logreg.sim import sweep as grid

#: Options a sweep file may not set: they say where and how the sweep itself writes.
NOT_KEYS = {"sweep", "resume", "out", "json", "force", "help", "simulate_parser"}
#: The environment variables by which an MPI launcher tells a process it is one rank.
MPI_ENV = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")
#: The options the command takes as a comma-separated list (one value each at a point).
LISTED = ("ranks", "algorithm", "bytes")
#: A grid of more points than this is refused (a typo such as ranks = [1, ..., 1e6]).
MAX_POINTS = 100_000


def _options(parser) -> dict:
    """``{key: action}`` of every option a sweep file may set."""
    out = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest not in NOT_KEYS:
            out[longs[0][2:]] = action
    return out


def _values(name: str, key: str, value, action) -> list:
    """The values ``value`` (one, or a list) of option ``key``, read as the command reads."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise UsageError(f"--sweep {name}: {key}: expected a value or a list of values, got []")
    out = []
    for v in items:
        where = f"--sweep {name}: {key}"
        if action.nargs == 0:  # a switch (exact): true or false
            if not isinstance(v, bool):
                raise UsageError(f"{where}: expected true or false, got {v!r}")
            out.append(v)
            continue
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise UsageError(f"{where}: expected a string or a number, got {v!r}")
        whole = isinstance(v, float) and v.is_integer() and abs(v) < 2**53  # 1e300 (V-M2)
        text = str(int(v)) if whole else str(v)
        try:
            got = action.type(text) if action.type else text
        except (argparse.ArgumentTypeError, ValueError, UsageError) as exc:
            raise UsageError(f"{where}: {exc} (value {v!r})") from None
        if action.choices and got not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise UsageError(f"{where}: expected one of {choices}, got {v!r}")
        out.extend(got if isinstance(got, list) else [got])
    return list(dict.fromkeys(out))


def read_grid(path: str, parser) -> dict[str, list]:
    """The axes of the sweep file ``path``: ``{option: [values]}`` (checked)."""
    f = regular_file(path, "--sweep")
    try:
        if f.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(
                f"--sweep {path}: expected at most {MAX_FILE_BYTES} bytes of TOML, got "
                f"{f.stat().st_size}"
            )
        raw = tomllib.loads(f.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--sweep {path}: cannot read: {exc}") from None
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # nested 5,000 deep: L-H23
        raise UsageError(f"--sweep {path}: expected TOML, got a file that is not ({exc})") from None
    options = _options(parser)
    axes = {}
    for key, value in raw.items():
        if key not in options:
            known = ", ".join(sorted(options))
            raise UsageError(f"--sweep {path}: {key}: expected one of the options {known}")
        axes[key] = _values(path, key, value, options[key])
    n = 1
    for v in axes.values():
        n *= len(v)
    if n > MAX_POINTS:
        raise UsageError(f"--sweep {path}: expected at most {MAX_POINTS} points, got {n}")
    return axes


def point_args(base: argparse.Namespace, options: dict, point: dict) -> argparse.Namespace:
    """The command's options for one point: the command line's, with the point's values."""
    args = copy.copy(base)
    args.sweep, args.out, args.json, args.resume = None, None, True, False
    for key, value in point.items():
        dest = options[key].dest
        setattr(args, dest, [value] if dest in LISTED else value)
    return args


def given_twice(args, axes: dict) -> None:
    """``UsageError`` for an option both on the command line and in the sweep file (the
    command line was dropped silently), or a ``bytes`` axis with ``--run`` (each point
    simulated the run's own bytes)."""
    options = _options(args.simulate_parser)
    for key in axes:
        action = options[key]
        if getattr(args, action.dest, action.default) != action.default:
            raise UsageError(
                f"--{key}: also set in {args.sweep} ({key}); give it in one place (the "
                "command line stands for the keys the file leaves out)"
            )
    if args.run and "bytes" in axes:
        raise UsageError(
            f"--sweep {args.sweep}: bytes: not read with --run (every point simulates the "
            "run's own bytes per call)"
        )


def check_points(args, options, points: list[dict]) -> None:
    """Read and check every point's options before the first runs (``UsageError`` naming
    the point): a conflict at the last point was found after the others had run."""
    from dist_logreg.cli.simulate_run import check_samples_bytes, plan, samples_bytes
    from dist_logreg.report.simcheck import MAX_ROWS

    rows, samples = 0, 0.0
    for i, point in enumerate(points):
        pa = point_args(args, options, point)
        try:
            _required(pa)
            p = plan(pa)
        except UsageError as exc:
            raise UsageError(f"--sweep {args.sweep}: point {i} {point}: {exc}") from None
        here = len(pa.ranks) * len(p.algs) * len(p.sizes)
        rows += here
        if pa.engine == "packet":
            samples += samples_bytes(p.fab, here, p.options)
    check_samples_bytes(samples, f"{len(points):,} points' samples")
    if rows > MAX_ROWS:  # the file report would refuse, after the whole sweep (W-H4)
        raise UsageError(
            f"--sweep {args.sweep}: expected at most {MAX_ROWS:,} rows in all (what report "
            f"draws), got {rows:,} over {len(points):,} points"
        )


def _required(args) -> None:
    if args.fabric is None or args.ranks is None:
        missing = "fabric" if args.fabric is None else "ranks"
        raise UsageError(f"--sweep: {missing}: required (in the file or on the command line)")


def run_point(base, options, axes, index: int, point: dict) -> dict:
    """One point's ``simulate.json`` document, each row naming the point."""
    from dist_logreg.cli.simulate_run import simulate_doc

    args = point_args(base, options, point)
    _required(args)
    doc = simulate_doc(args, progress=lambda *a: None)
    tag = {"point": index, "fabric": doc["fabric"]["spec"]}
    tag.update(
        {k: point[k] for k in grid.varying(axes) if k not in ("ranks", "algorithm", "bytes")}
    )
    doc["results"] = [{**tag, **r} for r in doc["results"]]
    if "step" in doc:
        doc["step"]["rows"] = [{**tag, **r} for r in doc["step"]["rows"]]
    doc.pop("wall_s", None)
    return doc


def world():
    """``(comm, rank, size)``: MPI's world when started by an MPI launcher, else a serial
    ``(None, 0, 1)`` (MPI never loaded)."""
    if not any(v in os.environ for v in MPI_ENV):
        return None, 0, 1
    from dist_logreg.comm.mpi_start import init_mpi

    MPI = init_mpi()
    comm = MPI.COMM_WORLD  # the sweep's entry point: the only reader of the world here
    return comm, comm.Get_rank(), comm.Get_size()


def run_sweep(args) -> int:
    """``simulate --sweep FILE``; under mpirun every rank calls it."""
    axes = read_grid(args.sweep, args.simulate_parser)
    given_twice(args, axes)
    points = grid.expand(axes)
    comm, rank, size = world()
    try:
        # SIGTERM as Ctrl-C: Open MPI's mpirun passes a Ctrl-C on to the ranks as SIGTERM
        with sigterm_as_sigint():
            return _sweep(args, axes, points, comm, rank, size)
    except KeyboardInterrupt as exc:
        kept = f"; finished points kept in {args.out} (--resume)" if args.out else ""
        name = interrupt_name(exc)
        if comm is not None and size > 1:  # the others waited forever (T-H1): abort them
            at = f"{kept}; rank {rank} of {size}, aborting all ranks"
            print(f"dist-logreg simulate: interrupted ({name}){at}", file=sys.stderr, flush=True)
            comm.Abort(interrupt_status(exc))
        if rank == 0:
            print(f"dist-logreg simulate: interrupted ({name}){kept}", file=sys.stderr, flush=True)
        return interrupt_status(exc)
    except UsageError:
        if rank == 0 or comm is None:
            raise
        return 2
    except Exception:
        if comm is None:
            raise
        import traceback

        traceback.print_exc()
        comm.Abort(1)  # one rank's bug must not leave the others waiting
        return 1


#: The command's options that change no point's result: a resume may give them anew.
_NOT_RESULTS = {"help", "json", "out", "force", "sweep", "resume", "packet_max_wall"}


def _what_runs(args) -> dict:
    """The command's options that shape the results (the grid key holds them)."""
    dests = {a.dest for a in args.simulate_parser._actions} - _NOT_RESULTS
    return {k: getattr(args, k, None) for k in sorted(dests)}


def _sweep(args, axes, points, comm, rank, size) -> int:
    from dist_logreg.cli.simulate_run import _check_out, make_out, step_text, to_json
    from dist_logreg.sim.text import lines, sweep_table

    if args.out is None and (args.resume or comm is not None):
        raise UsageError("--sweep: --out DIR is required with --resume and under mpirun")
    partial = None
    if args.out is not None:
        _check_out(args.out, args.force, args)
    check_points(args, _options(args.simulate_parser), points)
    if args.out is not None:
        make_out(Path(args.out))  # after every check: a refused sweep leaves no folder
        key = grid.grid_key(points, _what_runs(args))
        partial = grid.Partial(Path(args.out), key, len(points), rank)
    done = _resume(args, partial, comm, axes, points)
    todo = [i for i in range(len(points)) if i not in done]
    mine = todo[rank::size]
    if rank == 0:
        _announce(args.sweep, axes, points, len(done), size)
    options, t0, failed = _options(args.simulate_parser), time.perf_counter(), None
    for n, i in enumerate(mine, 1):
        try:
            doc = run_point(args, options, axes, i, points[i])
        except UsageError as exc:
            failed = (i, str(exc))
            break
        if partial:
            partial.add(i, doc)
        else:
            done[i] = doc
        if rank == 0:
            _progress(n, len(mine), time.perf_counter() - t0, size, not args.json)
    if comm is not None:
        fails = [f for f in comm.allgather(failed) if f]
        failed = min(fails) if fails else None
    if failed:
        raise UsageError(
            f"--sweep {args.sweep}: point {failed[0]} {points[failed[0]]}: {failed[1]}"
        )
    finished = grid.gather(comm, partial.done if partial else done)
    if rank != 0:
        return 0
    finished.update(done)
    doc = grid.combine(args.sweep, axes, [finished[i] for i in range(len(points))], size, t0)
    text = to_json(doc)
    if args.out is not None:
        from dist_logreg.cli.simulate_run import _write

        _write(Path(args.out), text, True)
        partial.remove()
    print(
        text
        if args.json
        else "\n".join(sweep_table(lines(doc), doc, grid.varying(axes)) + step_text(doc))
    )
    if args.out and not args.json:
        print(f"wrote {Path(args.out) / 'simulate.json'}")
    return 0


def _resume(args, partial, comm, axes=None, points=None) -> dict:
    """The points an interrupted sweep finished (``--resume``); a partial sweep found without
    ``--resume`` or ``--force`` is refused, with ``--force`` removed."""
    done = {}
    if partial is not None and partial.files():
        if args.resume:
            done = partial.load()
            _check_points(partial, done, args, axes, points)
        elif not args.force:
            raise UsageError(
                f"--out {args.out}: a partial sweep is there ({partial.files()[0].name}): "
                "--resume to keep its points, or --force to start over"
            )
    if comm is not None:
        comm.Barrier()  # every rank read the old files before any rank rewrites its own
    if partial is not None:
        if partial.path.name.endswith("partial"):  # rank 0 keeps them all, in one file
            partial.done = dict(done)
            partial.save(done)
        elif not args.resume:
            partial.path.unlink(missing_ok=True)
    return done


def _check_points(partial, done: dict, args, axes: dict, points: list) -> None:
    """Each finished point as ``report`` holds a ``simulate.json``: its schema, its physics
    and the simulator's own bound on its fabric (a point that is not a result, or that is
    1000x faster than its links, was taken into the sweep's output: L-H3, L-H4); and the
    grid's point it says it is: its fabric, engine, mode, each row's ranks, algorithm, bytes
    and axes (a point of an 800G fabric was spliced into a sweep of 400G: M-H3)."""
    from dist_logreg.report.simulate import check
    from dist_logreg.sim.recheck import check as job_bound

    options = _options(args.simulate_parser)
    for i in sorted(done):
        f, doc = partial.sources[i], done[i]
        name = f"--resume {f}: done.{i}"
        check(f, grid.alone(doc), job_bound, name=name)
        want = point_args(args, options, points[i])
        # a step's rows are its buckets' collectives (no --bytes, a sharded sync's halves):
        # only their ranks are the point's (a workload sweep could not resume: P-H2)
        step = getattr(want, "workload", None) or getattr(want, "run", None)
        listed = {
            k: [x for v in getattr(want, options[k].dest) for x in options[k].type(str(v))]
            for k in (("ranks",) if step else LISTED)
            if getattr(want, options[k].dest) is not None
        }
        tags = {k: points[i][k] for k in grid.varying(axes) if k not in LISTED}
        engine, exact = want.engine or "flow", bool(getattr(want, "exact", False))
        setting = grid.point_setting(want, engine)
        if key := grid.other_point(doc, i, str(want.fabric), engine, exact, listed, tags, setting):
            raise UsageError(
                f"{name}: {key}: expected grid point {i} of {args.sweep} "
                f"({points[i]}), got another point's (start over with --force)"
            )


def _announce(file, axes, points, done, size) -> None:
    shape = " x ".join(f"{len(v)} {k}" for k, v in axes.items() if len(v) > 1) or "1 point"
    left = len(points) - done
    where = f" over {size} MPI ranks" if size > 1 else ""
    kept = f", {done} kept from the partial file" if done else ""
    print(
        f"simulate --sweep {Path(file).name}: {len(points)} points ({shape}){kept}; "
        f"{left} to run{where}",
        file=sys.stderr,
        flush=True,
    )


def _progress(n: int, total: int, elapsed: float, size: int, lines: bool) -> None:
    """After each of rank 0's points: the estimate after the first, then a progress line."""
    eta = elapsed / n * (total - n)
    if n == 1 and total > 1:
        print(
            f"simulate --sweep: about {elapsed * total:,.1f} s in all"
            + (f" on each of {size} ranks" if size > 1 else "")
            + f", estimated from the first point's {elapsed:.2f} s",
            file=sys.stderr,
            flush=True,
        )
    if lines:
        bar = "#" * int(20 * n / total)
        status_line(
            sys.stderr,
            f"simulate --sweep: [{bar:<20}] {n}/{total} points, {elapsed:.1f} s, ~{eta:.0f} s left",
            n == total,
        )
