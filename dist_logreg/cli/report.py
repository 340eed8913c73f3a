"""``dist-logreg report``: its flags and its entry (a plain process, never MPI)."""

from __future__ import annotations

import argparse
import time

from dist_logreg.cli.guard import run_plain, say
from dist_logreg.errors import UsageError, exit_status_help
from dist_logreg.units import parse_bit_rate

REPORT_EPILOG = """\
examples:
  dist-logreg report runs/train-20261126-141309          # one training run
  dist-logreg report runs/ring runs/rabenseifner --out cmp  # two runs compared
  dist-logreg report bench.json --link-rate 1gbit         # a bench sweep, with the link drawn
  dist-logreg report b-1gbit.json b-100mbit.json runs/a   # bench and training runs together

A training run is compared by its tag (train --tag NAME; default: its directory's name), a
bench JSON by its run.tag (bench --tag NAME; default: the file's name).
"""


def add_parser(sub) -> None:
    rep = sub.add_parser(
        "report",
        help="plots and tables of one or more runs: PNG files, report.html, report.md",
        description="Reads training output directories and bench JSON files and writes PNG "
        "plots, one self-contained report.html (images embedded, to mail or attach to a "
        "ticket), report.md with the same tables, and report.json with their numbers. With "
        "several runs, the plots are overlaid and a table compares their headline numbers "
        "against the first. Needs no MPI: run it anywhere the files are.",
        epilog=REPORT_EPILOG + "\n" + exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="a training output directory (train --out) or a bench JSON file (bench --out)",
    )
    rep.add_argument(
        "--out",
        metavar="DIR",
        help="where the report goes (default: reports/report-<time>)",
    )
    rep.add_argument(
        "--link-rate",
        metavar="RATE",
        help="the link rate to draw as the busbw ceiling of bench runs, e.g. 1gbit, 100mbit "
        "(default: the emulated cluster's rate recorded in the bench JSON, if any)",
    )
    rep.set_defaults(func=cmd, mpi=False)


def cmd(args: argparse.Namespace) -> int:
    """The ``report`` sub-command: read the runs, write the report."""
    from pathlib import Path

    def body() -> int:
        from dist_logreg.report import packetplots
        from dist_logreg.report.runs import load

        link_rate = args.link_rate and parse_bit_rate(args.link_rate, "--link-rate")
        sims = {p: packetplots.simulate_doc(Path(p)) for p in args.runs}
        runs = [load(p) for p in args.runs]  # bad input fails here; simulate.json included
        from dist_logreg.report.build import build

        out = (
            Path(args.out) if args.out else Path("reports") / time.strftime("report-%Y%m%d-%H%M%S")
        )
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
        files = build(runs, out, link_rate) if runs else []
        for doc in (d for d in sims.values() if d is not None):  # simulate --engine packet
            files += packetplots.draw(doc, out)
        pngs = [f.name for f in files if f.suffix == ".png"]
        say(f"dist-logreg report: {len(args.runs)} run(s) -> {out}/")
        if runs:
            say("  report.html  self-contained: open it in a browser, mail it, attach it")
            say("  report.md    the same tables, the plots linked")
            say("  report.json  the tables' numbers")
        say(f"  {len(pngs)} plot(s): {', '.join(pngs)}")
        return 0

    return run_plain(body)
