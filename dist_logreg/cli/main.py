"""Command line: ``dist-logreg COMMAND ...`` (and ``python -m dist_logreg``): parse, dispatch.

The only module that reads ``MPI.COMM_WORLD``. mpi4py is imported inside :func:`main`
(through :func:`~dist_logreg.comm.mpi_start.init_mpi`), after the MPI parameters are set.
numpy loads earlier, with the parsers (the algorithm table behind ``--allreduce`` is numpy),
so the BLAS thread counts :func:`main` sets reach a BLAS already started through
:func:`limit_blas_threads`. Each sub-command's flags and entry live in a module of their
own (``cli/train.py``, ``cli/bench.py``, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import time

from dist_logreg import __version__
from dist_logreg.cli import (
    LAUNCHER_RANK_VARS,
    bench,
    cluster,
    cost_model,
    launched,
    predict,
    report,
    scale,
    simulate,
    supervise,
    train,
)
from dist_logreg.cli.guard import (
    broken_pipe,
    hold_signals,
    interrupt_name,
    interrupt_status,
    run_guarded,
    sigterm_as_sigint,
    too_long,
)
from dist_logreg.comm.mpi_start import finalize_mpi, init_mpi
from dist_logreg.comm.mpilib import force_mpi_algorithm
from dist_logreg.errors import exit_status_help
from dist_logreg.train.faults import start_watchdog
from dist_logreg.train.options import peek

#: One BLAS thread per rank unless the user says otherwise: data-parallel ranks already
#: fill the cores, and ranks x threads > cores made steps 8x slower here.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: The sub-commands, in the order ``--help`` lists them.
COMMANDS = (train, predict, bench, cost_model, report, scale, simulate, supervise, cluster)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dist-logreg",
        description="Instrumented data-parallel logistic regression on numpy + mpi4py. "
        "Launch under mpirun; every rank runs the same command.",
        epilog=exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def limit_blas_threads() -> None:
    """Apply the thread variables to a BLAS that already started: numpy is loaded with the
    package, before :func:`main` sets them, and OpenBLAS reads them only when it loads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the provenance block then reports the variables, not the threads
        return
    value = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or ""
    if value.isdigit() and int(value) > 0:
        threadpool_limits(limits=int(value), user_api="blas")  # stays for the process


def entry() -> None:
    """The ``dist-logreg`` command and ``python -m dist_logreg``: :func:`main`, then exit.
    Once the sub-command is done, a SIGINT or SIGTERM is held and dropped at exit: its work
    is complete (a ``model fit`` sent SIGTERM just after it wrote its file ended with 143
    and no line, mpirun's default, since the handlers were put back before the exit: K-L1)."""
    sys.exit(main(hold_at_end=True))


def main(argv: list[str] | None = None, hold_at_end: bool = False) -> int:
    """Every sub-command; a reader of stdout that went away (``| head``) ends it quietly.
    ``hold_at_end``: block SIGINT and SIGTERM once it is done, for a process that then
    exits (:func:`entry`; never in a process that goes on: its children inherit the mask)."""
    try:
        status = _main(argv, hold_at_end)
        if sys.stdout is not None:  # None: started with stdout closed (``>&-``)
            sys.stdout.flush()  # here, where a BrokenPipeError can still be caught
    except BrokenPipeError:
        return broken_pipe()
    except OSError as exc:  # a path part of 255+ bytes: any command's, one line (V-H4)
        if exc.errno != errno.ENAMETOOLONG:
            raise
        print(f"dist-logreg: error: {too_long(exc)}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM past a sub-command's own handler
        print(
            f"dist-logreg: interrupted ({interrupt_name(exc)}); nothing done",
            file=sys.stderr,
            flush=True,
        )
        return interrupt_status(exc)
    return status


#: How long a rank other than 0 waits before exiting on a command-line error.
QUIET_RANK_EXIT_DELAY_S = 2.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The parsed command line; under mpirun a command-line error is printed by rank 0
    only (every rank parses it before MPI starts, and every rank exits 2)."""
    rank = next((os.environ[v] for v in LAUNCHER_RANK_VARS if v in os.environ), "0")
    if rank.strip() in ("", "0"):
        return build_parser().parse_args(argv)
    saved = sys.stderr
    try:
        with open(os.devnull, "w") as sys.stderr:
            return build_parser().parse_args(argv)
    except SystemExit:
        # the first rank to exit non-zero makes mpirun kill the others: leave rank 0 the
        # time to print the line (a fresh clone's test saw it killed before it did)
        time.sleep(QUIET_RANK_EXIT_DELAY_S)
        raise
    finally:
        sys.stderr = saved


def _main(argv: list[str] | None, hold_at_end: bool) -> int:
    # SIGTERM: the one line and exit 143, as Ctrl-C's 130, from the start (a serial bench
    # or train in MPI_Init died of it with no line); a rank of mpirun takes it in its
    # sub-command only: mpirun ends the other ranks with SIGTERM when one fails (rank 0's
    # bad flag, say), and they leave the line to that rank (see dist_logreg.cli)
    with contextlib.nullcontext() if launched() else sigterm_as_sigint():
        args = _parse(argv)
        if not args.mpi:  # model, report, scale, supervise, cluster: not MPI processes
            with sigterm_as_sigint():  # SIGTERM: the one line and exit 143, as Ctrl-C's 130
                status = args.func(args)
                if hold_at_end:
                    hold_signals()
                return status
        MPI, dog = _start_mpi(args)
        comm = MPI.COMM_WORLD
        dog.attach(comm)
        # the sub-command arms the watchdog around its own collectives; SIGTERM (mpirun's
        # forward of a Ctrl-C, a batch system) ends the ranks with rank 0's one line
        with sigterm_as_sigint():
            status = run_guarded(comm, lambda: args.func(comm, args, dog))
    dog.attach(None)  # no communicator to abort through once finalizing
    with dog.phase("MPI shutdown (MPI_Finalize)"):
        finalize_mpi(MPI)
    dog.close()
    if hold_at_end:
        hold_signals()
    return status


def _start_mpi(args: argparse.Namespace):
    """The MPI environment (threads, algorithm), the watchdog, MPI_Init: ``(MPI, dog)``."""
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    limit_blas_threads()
    force_mpi_algorithm(peek(args, "mpi_algorithm"))
    # --comm-timeout covers the whole run, MPI_Init and MPI_Finalize included: both wait
    # for every rank, so one rank stopped there would otherwise hang the others forever.
    dog = start_watchdog(peek(args, "comm_timeout"))
    with dog.phase("MPI start-up (MPI_Init)"):
        return init_mpi(), dog  # starts MPI: after the environment is final
