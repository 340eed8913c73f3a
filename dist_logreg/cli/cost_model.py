"""``dist-logreg model fit|predict``: the cost model (a plain process, never MPI)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from dist_logreg.cli import model_bounds as bounds
from dist_logreg.cli.guard import interrupt_name, interrupt_status, run_plain, say
from dist_logreg.errors import UsageError, exit_status_help
from dist_logreg.units import whole_arg

MODEL_EPILOG = """\
examples:
  mpirun -n 4 --oversubscribe dist-logreg bench --allreduce mpi,ring,rabenseifner --out b4.json
  dist-logreg model fit b2.json b4.json --out model.json
  dist-logreg model predict --model model.json --ranks 512 --link-rate 400G --bytes 1M,64M
  dist-logreg model predict --model model.json --ranks 64 --ranks-per-host 8 \\
      --topology two-tier --hosts-per-leaf 4 --oversubscription 2:1 --features 65536
  dist-logreg model predict --model model.json --run runs/mine --ranks 1024 --link-rate 100G
"""


def add_parser(sub) -> None:
    m = sub.add_parser(
        "model",
        help="fit a cost model to bench results, and predict with it (what-if)",
        description="The Hockney alpha-beta-gamma cost model of each allreduce algorithm "
        "(Thakur, Rabenseifner and Gropp 2005): `fit` it to `dist-logreg bench --out` files, "
        "then `predict` other sizes, rank counts, link rates and topologies.",
        epilog=MODEL_EPILOG + "\n" + exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    msub = m.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = msub.add_parser(
        "fit",
        help="fit alpha, beta (inside/between hosts, per size segment) and gamma",
        description="Non-negative least squares, relative error, per algorithm; gamma from the "
        "local reduction bench records next to each size; size segments where the transport "
        "changes protocol, found from the data unless given.",
    )
    _fit_arguments(f)
    p = msub.add_parser(
        "predict",
        help="predicted time, algbw, busbw, alpha/beta/gamma shares; fastest algorithm",
        description="Predict one allreduce per algorithm and size on a placement of ranks.",
    )
    _predict_arguments(p)
    m.set_defaults(func=cmd, mpi=False)


def _fit_arguments(f) -> None:
    f.add_argument("bench", nargs="+", metavar="BENCH.json", help="`bench --out` files")
    f.add_argument("--out", default="model.json", metavar="FILE", help="(default: model.json)")
    f.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out file (default: refuse, so one fit never overwrites "
        "another)",
    )
    f.add_argument(
        "--segments",
        type=whole_arg,
        metavar="N",
        help="exactly N size segments, breakpoints found from the data (default: 1-3, as "
        "many as pay for their parameters)",
    )
    f.add_argument(
        "--breakpoints", metavar="LIST", help="segment boundaries as message sizes, e.g. 64K,1M"
    )
    f.add_argument(
        "--cluster",
        metavar="NAME",
        help="the `dist-logreg cluster` the bench ran on: records its link rate and topology",
    )
    f.add_argument(
        "--link-rate", metavar="RATE", help="the link rate the bench ran at, if known (e.g. 1G)"
    )


def _predict_arguments(p) -> None:
    p.add_argument("--model", required=True, metavar="FILE", help="model.json from `model fit`")
    p.add_argument(
        "--ranks",
        type=bounds.whole,
        metavar="P",
        help=f"ranks, 1 to {MAX_RANKS} (default: the fit's largest)",
    )
    p.add_argument(
        "--ranks-per-host",
        type=bounds.whole,
        default=1,
        metavar="K",
        help="consecutive ranks per host (default: 1, every rank its own host)",
    )
    p.add_argument(
        "--link-rate",
        metavar="RATE",
        help="host link rate, e.g. 25G, 400G, 100M: replaces the inter-host beta with its "
        "serialization time (scaled by the fit's efficiency if the fit's rate is known), "
        "keeping the fitted per-message alpha",
    )
    p.add_argument(
        "--topology",
        choices=("flat", "two-tier"),
        default="flat",
        help="flat: every host on one switch; two-tier: hosts under leaves whose uplinks "
        "are shared (default: flat)",
    )
    p.add_argument(
        "--hosts-per-leaf",
        type=bounds.whole,
        metavar="H",
        help="two-tier: hosts per leaf",
    )
    p.add_argument(
        "--oversubscription",
        metavar="X:1",
        help="two-tier: leaf uplink = link rate x H / X (default: 1:1)",
    )
    p.add_argument(
        "--bytes", metavar="LIST", help="payload sizes, e.g. 8,64K,16M (default: 8 B to 16 MiB)"
    )
    p.add_argument(
        "--features", type=bounds.whole, metavar="D", help="the trainer's buffer: D + 3 elements"
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="with --features: the element type (default: float64)",
    )
    p.add_argument("--algorithm", metavar="LIST", help="comma list (default: all in the model)")
    p.add_argument("--run", metavar="DIR", help="a train --out DIR: its comm fraction at --ranks")
    p.add_argument(
        "--scaling",
        choices=("strong", "weak"),
        help="with --run: strong keeps the global batch (default), weak the per-rank batch",
    )
    _fabric_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _fabric_arguments(p) -> None:
    """The fabric parameters a user may state instead of the fit's."""
    p.add_argument(
        "--alpha",
        metavar="TIME",
        help="per-message overhead of the fabric's "
        "software stack, e.g. 2us, instead of the fitted alpha (which is this "
        "machine's: Python over shared memory)",
    )
    p.add_argument(
        "--link-latency",
        metavar="TIME",
        help="added to every message between hosts, e.g. 1us (wire and switches)",
    )
    p.add_argument(
        "--gamma",
        metavar="TIME",
        help="seconds per byte reduced, e.g. 0.02ns, "
        "instead of this machine's measured local reduction",
    )
    p.add_argument(
        "--reduce-rate",
        metavar="RATE",
        help="bytes reduced per second, e.g. 50GB/s (the same as --gamma 1/RATE)",
    )


def cmd(args: argparse.Namespace) -> int:
    """``model fit|predict``; Ctrl-C or SIGTERM: one line and exit 130 or 143, as simulate."""
    try:
        return run_plain(lambda: fit(args) if args.action == "fit" else predict(args))
    except KeyboardInterrupt as exc:
        name = interrupt_name(exc)
        wrote = args.action == "fit" and getattr(args, "wrote", False)  # the model is whole
        print(
            f"dist-logreg model fit: interrupted ({name}) after {args.out} was written whole; "
            "it stands, exit 0 (only the summary's printing was cut short)"
            if wrote
            else f"dist-logreg model {args.action}: interrupted ({name}); nothing written",
            file=sys.stderr,
            flush=True,
        )
        return 0 if wrote else interrupt_status(exc)


@contextlib.contextmanager
def _sigint_held():
    """SIGINT and SIGTERM wait until the block ends (main thread only), then are raised."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if got:
        raise KeyboardInterrupt("SIGTERM") if got[0] == signal.SIGTERM else KeyboardInterrupt


@contextlib.contextmanager
def _made_folders(path: str):
    """The folders :func:`~dist_logreg.files.check_output` makes for ``path`` (to probe
    them) are removed again, when empty, if the block fails."""
    import os
    from pathlib import Path

    missing, up = [], Path(path).absolute().parent
    while not os.path.lexists(up):
        missing.append(up)
        up = up.parent
    try:
        yield
    except BaseException:
        for folder in missing:  # the deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _cluster(name: str | None) -> dict | None:
    if not name:
        return None
    import dataclasses

    from dist_logreg.ops import cluster

    c = dataclasses.asdict(cluster.load(name))
    spec = c["spec"]
    keep = ("name", "topology", "rate", "uplink_rate", "delay_ms", "loss_pct")
    return {**{k: spec.get(k) for k in keep}, "hosts": len(c["hosts"]), "leaf_of": c["leaf_of"]}


def fit(args) -> int:
    from dist_logreg.collective.benchfit import fit_records, format_fit, read_bench
    from dist_logreg.files import check_output, not_an_input, write_output
    from dist_logreg.units import parse_bytes, parse_link_rate

    if args.segments is not None and not 1 <= args.segments <= 4:
        raise UsageError(f"--segments: expected 1 to 4, got {args.segments}")
    bps = None
    if args.breakpoints:
        bps = [parse_bytes(b, "--breakpoints") for b in args.breakpoints.split(",")]
        bounds.check_breakpoints(bps, args.breakpoints)
    if args.link_rate:
        parse_link_rate(args.link_rate)
    with _made_folders(args.out):  # a refused fit leaves no empty folder behind
        not_an_input(args.out, args.bench, "a bench file it fits")
        check_output(args.out, "--out", args.force)  # before the fit, not after it is printed
        model = fit_records(
            read_bench(args.bench), bps, args.segments, _cluster(args.cluster), args.link_rate
        )
        text = json.dumps(model, indent=2, allow_nan=False) + "\n"  # non-finite: a bug
        with _sigint_held():  # the file and the flag together: an interrupt then finds it
            write_output(args.out, text, "--out", args.force)
            args.wrote = True
    for line in format_fit(model):
        say(line)
    say(f"# wrote {args.out}")
    return 0


def _sizes(args) -> list[int]:
    from dist_logreg.train.binary import buffer_size
    from dist_logreg.units import parse_bytes

    if args.features is not None:
        if args.features < 1:
            raise UsageError(f"--features: expected an integer >= 1, got {args.features}")
        size = buffer_size(args.features) * (4 if args.dtype == "float32" else 8)
        return bounds.check_sizes([size], "--features")
    if args.bytes:
        sizes = [parse_bytes(b, "--bytes") for b in args.bytes.split(",") if b.strip()]
        return bounds.check_sizes(sizes, "--bytes")
    return [8 * 8**k for k in range(8)]  # 8 B .. 16 MiB


#: The most ranks a prediction walks (steps are arrays of p: 10^6 take well under a second).
MAX_RANKS = 10**6


def _placement(args, ranks: int):
    from dist_logreg.collective.schedule import Placement

    if not 1 <= ranks <= MAX_RANKS:
        raise UsageError(f"--ranks: expected an integer from 1 to {MAX_RANKS}, got {ranks}")
    if not 1 <= args.ranks_per_host <= ranks:
        raise UsageError(
            f"--ranks-per-host: expected an integer from 1 to --ranks ({ranks}), "
            f"got {args.ranks_per_host}"
        )
    over = 1.0
    if args.topology == "two-tier":
        if (args.hosts_per_leaf or 0) < 1:
            raise UsageError(
                f"--hosts-per-leaf: expected an integer >= 1 with --topology two-tier, "
                f"got {args.hosts_per_leaf}"
            )
        over = bounds.oversubscription(args.oversubscription or "1:1")
    hpl = args.hosts_per_leaf if args.topology == "two-tier" else 0
    return Placement.blocks(ranks, args.ranks_per_host, hpl, over)


def _fabric(args) -> dict:
    """The fabric parameters the user stated (seconds; gamma per byte)."""
    from dist_logreg.units import parse_byte_rate, parse_seconds

    if args.gamma and args.reduce_rate:
        raise UsageError("--gamma and --reduce-rate: give one (--gamma = 1 / --reduce-rate)")
    user = {}
    for key in ("alpha", "link_latency", "gamma"):
        text = getattr(args, key)
        if text is not None:
            user[key] = parse_seconds(text, "--" + key.replace("_", "-"))
    if args.reduce_rate:
        rate = parse_byte_rate(args.reduce_rate, "--reduce-rate")
        user["gamma"] = 1.0 / bounds.bounded("--reduce-rate", rate)
    return user


def _unread(args) -> None:
    """``UsageError`` for an option ``model predict`` would not read beside the others
    given (it was dropped silently: one prediction with no sign of it)."""
    run = "not read with --run (the run's own buffer and dtype are used)"
    rules = (
        (args.run and args.bytes, "--bytes", run),
        (args.run and args.features is not None, "--features", run),
        (
            args.features is not None and args.bytes,
            "--bytes",
            "not read with --features (the trainer's buffer is D + 3 elements)",
        ),
        (
            args.dtype and args.features is None,
            "--dtype",
            "only read with --features (--bytes are bytes)",
        ),
        (args.scaling and not args.run, "--scaling", "only read with --run"),
        (
            args.hosts_per_leaf is not None and args.topology != "two-tier",
            "--hosts-per-leaf",
            "only read with --topology two-tier",
        ),
        (
            args.oversubscription is not None and args.topology != "two-tier",
            "--oversubscription",
            "only read with --topology two-tier",
        ),
    )
    for bad, flag, why in rules:
        if bad:
            raise UsageError(f"{flag}: {why}; drop it")


def predict(args) -> int:
    from dist_logreg.cli.simulate_train import read_summary
    from dist_logreg.collective import costfile, whatif
    from dist_logreg.units import parse_link_rate

    _unread(args)
    model = costfile.load(args.model)
    rate = parse_link_rate(args.link_rate) if args.link_rate else None
    user = _fabric(args)
    bounds.check_fabric(user, rate)
    bounds.check_link_latency(model, user)
    sizes = None if args.run else _sizes(args)  # checked before anything is predicted
    given = whatif.parameters_from(model, user, rate)
    model = whatif.with_fabric(model, user)
    ranks = (
        args.ranks
        if args.ranks is not None
        else max(model.get("source", {}).get("world_sizes") or [2])
    )
    place = _placement(args, ranks)
    names = args.algorithm.split(",") if args.algorithm else list(model["algorithms"])
    for name in names:
        costfile.algorithm_params(model, name)
    if args.run:
        summary = read_summary(args.run)
        name = names[0] if args.algorithm else None
        scaling = args.scaling or "strong"
        rep = whatif.run_fraction(model, summary, place, rate, scaling, name)
        rep["parameters"] = given
        rep["trust"] = whatif.trust(model, [rep["algorithm"]], [rep["bytes_per_call"]], place, rate)
        say(json.dumps(rep, indent=2) if args.json else whatif.format_run_fraction(rep))
        return 0
    rep = whatif.report(model, names, sizes, place, rate, given)
    say(json.dumps(rep, indent=2) if args.json else whatif.format_report(rep, args.model))
    return 0
