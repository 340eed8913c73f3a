"""``dist-logreg supervise``: its flags and its entry (a plain process, never MPI)."""

from __future__ import annotations

import argparse

from dist_logreg.cli.guard import run_plain, say
from dist_logreg.errors import UsageError, exit_status_help
from dist_logreg.units import parse_timeout, whole_arg

SUPERVISE_EPILOG = """\
example:
  dist-logreg supervise --restarts 2 --min-ranks 2 -- \\
      mpirun -n 3 --oversubscribe dist-logreg train --steps 400 --checkpoint-every 50 \\
      --out runs/sup --inject-fault kill:rank=2:step=120

The train command needs --out or --checkpoint-dir (restarts look for checkpoints there) and
should have --checkpoint-every. Injected faults fire on the first attempt only. An attempt
that started no rank (a launch failure: a wrong command, too few slots) is not restarted.
Each attempt's measurements stay in <out>/partial/, marked with the attempt number, and the
final summary.json lists the attempts and what each lost. SIGTERM or SIGINT to the
supervisor stops the whole job (after --grace seconds, by SIGKILL) and exits 128+signal.
"""


def add_parser(sub) -> None:
    sup = sub.add_parser(
        "supervise",
        help="run a training job and restart it from its newest checkpoint when it fails",
        description="Runs COMMAND (an mpirun ... dist-logreg train ... line). When it fails "
        "(a rank killed, a node gone), runs it again with --resume, optionally on fewer "
        "ranks, until it completes or the restarts are spent. Reports each failure, each "
        "restart and the work lost. A job that rejects its input (exit status 2) is not "
        "restarted.",
        epilog=SUPERVISE_EPILOG + "\n" + exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sup.add_argument(
        "--restarts", type=whole_arg, default=3, metavar="K", help="restarts at most (default: 3)"
    )
    sup.add_argument(
        "--min-ranks",
        type=whole_arg,
        metavar="M",
        help="restart on one rank fewer each time, but not below M (default: same ranks)",
    )
    sup.add_argument(
        "--attempt-timeout",
        metavar="TIME",
        help="kill an attempt that runs longer than this and count it as failed",
    )
    sup.add_argument(
        "--grace",
        default="10",
        metavar="TIME",
        help="when the supervisor gets SIGTERM or SIGINT (or an attempt times out), the job "
        "gets the signal and this long to end before every process of it is killed "
        "(default: 10)",
    )
    sup.add_argument(
        "command", nargs=argparse.REMAINDER, help="-- mpirun -n P dist-logreg train ..."
    )
    sup.set_defaults(func=cmd, mpi=False)


def cmd(args: argparse.Namespace) -> int:
    """The ``supervise`` sub-command: a plain process that (re)starts the MPI job."""
    from dist_logreg.ops import supervise

    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    def body() -> int:
        if args.restarts < 0:
            raise UsageError(f"--restarts: expected an integer >= 0, got {args.restarts}")
        grace = parse_timeout(args.grace, "--grace")
        limit = args.attempt_timeout
        if limit is not None:
            limit = parse_timeout(limit, "--attempt-timeout")
        return supervise.run(
            command,
            args.restarts,
            args.min_ranks,
            limit,
            say=say,
            grace=grace,
        )

    return run_plain(body)
