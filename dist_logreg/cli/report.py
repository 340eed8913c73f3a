"""``dist-logreg report``: its flags and its entry (a plain process, never MPI)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from dist_logreg.cli.guard import (
    interrupted_since,
    run_plain,
    say,
    sigterm_as_sigint,
    terminations,
)
from dist_logreg.errors import UsageError, exit_status_help
from dist_logreg.files import check_output, not_an_input, write_output
from dist_logreg.units import bounded_link_rate

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
        "--force",
        action="store_true",
        help="replace the report files already in --out (report.md, report.html, report.json, "
        "the plots); without it such a folder is refused before any work",
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

    def body() -> int:
        from dist_logreg.report.runs import load

        link_rate = args.link_rate and bounded_link_rate(args.link_rate, "--link-rate")
        out = (
            Path(args.out) if args.out else Path("reports") / time.strftime("report-%Y%m%d-%H%M%S")
        )
        for run in args.runs:  # a bench JSON named report.json in --out was replaced (R-M1)
            name = Path(run).name
            if name in REPORT_FILES or name.endswith(".png"):
                not_an_input(out / name, [run], "a run it reports")
        check_out(out, args.force)  # before any work
        from dist_logreg.sim.recheck import check as job_bound

        # bad input fails here; a simulate.json held to the simulator's own bound too
        runs = [load(p, job_bound) for p in args.runs]
        seen: dict = {}
        for given, run in zip(args.runs, runs, strict=True):  # a run against itself (L-M7)
            key = Path(run.path).resolve()
            if key in seen:
                raise UsageError(
                    f"RUN {given}: given twice (also as {seen[key]}); expected each run once"
                )
            seen[key] = given
        from dist_logreg.report.build import build

        def draw(stage: Path) -> list:  # a packet simulate.json's plots: in its section
            return build(runs, stage, link_rate) if runs else []

        files, late = staged(out, args.force, draw)
        pngs = [f.name for f in files if f.suffix == ".png"]
        say(f"dist-logreg report: {len(args.runs)} run(s) -> {out}/")
        if runs:
            say("  report.html  self-contained: open it in a browser, mail it, attach it")
            say("  report.md    the same tables, the plots linked")
            say("  report.json  the tables' numbers")
        say(f"  {len(pngs)} plot(s): {', '.join(pngs)}")
        if late:
            print(
                f"dist-logreg report: interrupted ({late.name}) after the report was written "
                f"to {out}/",
                file=sys.stderr,
                flush=True,
            )
            return 128 + late.value
        return 0

    return run_plain(body)


#: The fixed names of a report; its plots are ``*.png``.
REPORT_FILES = ("report.md", "report.html", "report.json")


def check_out(out, force: bool) -> None:
    """Before any work: ``UsageError`` unless ``out`` is a folder (or a new name) that holds
    no report (``force``: one it may replace) and where a file can be written."""
    if os.path.lexists(out) and not out.is_dir():
        raise UsageError(f"--out {out}: expected a directory, got a file")
    if not out.is_dir():
        return
    found = sorted(n for n in os.listdir(out) if n in REPORT_FILES or n.endswith(".png"))
    for name in found:  # a link, FIFO or folder at a report's name: refused even with --force
        if not os.path.isfile(out / name) or os.path.islink(out / name):
            check_output(out / name, "--out", force)
    if found and not force:
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise UsageError(
            f"--out {out}: holds another report ({', '.join(found[:3])}{more}); expected a new "
            "directory, or --force to replace it"
        )
    _probe(out)


def _probe(out) -> None:
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".report-probe-", dir=out))
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None


def staged(out, force: bool, draw) -> tuple[list, signal.Signals | None]:
    """``draw(folder)`` into a hidden folder inside ``out``, then each file into ``out``
    through the one writer (temporary file, rename; a link at a final name is never
    followed): a failure or Ctrl-C while drawing leaves nothing (a folder made here is
    removed). Returns the final paths, and the signal (SIGINT or SIGTERM) that came while
    they were moved in, if one did (the move itself is not interrupted: the report is
    whole)."""
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        _probe(out)
        stage = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    except BaseException as exc:
        if made:
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(exc, OSError):
            why = exc.strerror or exc
            raise UsageError(f"--out {out}: cannot write there: {why}") from None
        raise
    done = False
    try:
        mark = terminations()
        with sigterm_as_sigint():  # kill, timeout: as Ctrl-C (nothing half-written left)
            files = draw(stage)
            if (exc := interrupted_since(mark)) is not None:  # one a __del__ swallowed: M-H6
                raise exc
        finals = [out / f.name for f in files]
        for f in finals:  # all checked before the first is moved
            check_output(f, "--out", force)
        # Ctrl-C or SIGTERM while the files are moved in is noted, not raised: the report
        # is whole. A Python handler (run in the main thread whichever thread the signal
        # lands on), not a signal mask (per thread: a BLAS or plotting thread would take it)
        with _held() as late:
            for f, final in zip(files, finals, strict=True):
                write_output(final, f.read_bytes(), "--out", force)
            done = True
        return finals, (signal.Signals(late[0]) if late else None)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if made and not done:
            shutil.rmtree(out, ignore_errors=True)


@contextlib.contextmanager
def _held():
    """SIGINT and SIGTERM noted (in the list yielded), not raised, until the block ends
    (the main thread only: elsewhere no handler can be set)."""
    late: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield late
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.signal(s, lambda signum, frame: late.append(signum)) for s in sigs}
    try:
        yield late
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
