"""How a sub-command ends: one line and a meaningful exit status, never a hang.

MPI sub-commands run under :func:`run_guarded`; the plain ones (supervise, cluster) under
:func:`run_plain`. Exit statuses are listed in :mod:`dist_logreg.errors`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
import traceback

from dist_logreg.errors import EXIT_UNEXPECTED, RunError, UsageError


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on (escape sequences, control
    characters, a bare carriage return) shown as its ``\\x..`` escape: error lines echo user
    data (a LIBSVM line, a label, a path), and that must not clear or recolour a screen."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


#: A reader that went away (``dist-logreg simulate | head``): the shell's status for a
#: process ended by SIGPIPE, 128 + 13, as ``yes | head`` gives.
EXIT_BROKEN_PIPE = 141


def broken_pipe() -> int:
    """After a ``BrokenPipeError`` on stdout: no traceback, no error line (nobody reads it),
    and no second error when Python flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def interrupt_name(exc: KeyboardInterrupt) -> str:
    """Which signal raised ``exc``: ``SIGTERM`` (raised by :func:`sigterm_as_sigint`'s
    handler, which names it) or ``SIGINT`` (Ctrl-C: Python's own ``KeyboardInterrupt``)."""
    return "SIGTERM" if exc.args[:1] == ("SIGTERM",) else "SIGINT"


def interrupt_status(exc: KeyboardInterrupt) -> int:
    """The exit status of a command ``exc`` interrupted: 128 + the signal's number, as a
    shell reports a process the signal ended (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signal.Signals[interrupt_name(exc)].value


#: SIGTERMs taken by :func:`_terminated`: one raised inside a ``__del__`` or a weakref
#: callback (matplotlib makes many) is printed as "ignored" and lost, so a block that must
#: not finish after one compares this count (:func:`terminations`; thirteenth attack, M-H6).
_TERMINATIONS = [0]
#: The signal of the last one counted: ``("SIGTERM",)``, or ``()`` for SIGINT.
_LAST: list[tuple] = [()]


def terminations() -> int:
    return _TERMINATIONS[0]


def interrupted_since(mark: int) -> KeyboardInterrupt | None:
    """The interrupt to raise if a signal was counted since ``terminations()`` was ``mark``
    (one a ``__del__`` swallowed), else None."""
    return KeyboardInterrupt(*_LAST[0]) if _TERMINATIONS[0] > mark else None


def _terminated(signum, frame):
    _TERMINATIONS[0] += 1
    _LAST[0] = ("SIGTERM",)
    raise KeyboardInterrupt("SIGTERM")


def _unraisable(unraisable) -> None:
    """``sys.unraisablehook`` inside :func:`sigterm_as_sigint`: an interrupt raised in a
    ``__del__`` or weakref callback is not printed ("Exception ignored in ... Traceback ...
    KeyboardInterrupt: SIGTERM" came before the one line: fourteenth attack, P-H4) but
    counted, so the block stops where it checks (:func:`interrupted_since`)."""
    exc = unraisable.exc_value
    if not isinstance(exc, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)
    elif interrupt_name(exc) == "SIGINT":  # SIGTERM's handler counted it already
        _TERMINATIONS[0] += 1
        _LAST[0] = ()


@contextlib.contextmanager
def sigterm_as_sigint():
    """SIGTERM (``kill``, ``timeout``, a batch system, mpirun's forward of a Ctrl-C) unwinds
    the block as Ctrl-C does, as ``KeyboardInterrupt("SIGTERM")``, so every handler of
    Ctrl-C prints its one line with the signal's name (:func:`interrupt_name`) and exits
    with its status (:func:`interrupt_status`). Only the main thread can set a handler:
    elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous, hook = signal.signal(signal.SIGTERM, _terminated), sys.unraisablehook
    sys.unraisablehook = _unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = hook


def hold_signals() -> None:
    """Block SIGINT and SIGTERM for the rest of the process (the main thread: a command that
    is done and exits; blocked signals still pending at exit are dropped)."""
    if threading.current_thread() is threading.main_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def say(text: str) -> None:
    print(text, flush=True)


def run_plain(body) -> int:
    """For the sub-commands that are not MPI processes: a ``UsageError`` is one line, exit 2."""
    try:
        return body()
    except UsageError as exc:
        print(f"dist-logreg: error: {printable(exc)}", file=sys.stderr, flush=True)
        return exc.exit_status


def too_long(exc: OSError) -> str:
    """The line for a path the file system refuses as too long."""
    name = str(exc.filename)
    shown = name if len(name) <= 80 else f"{name[:40]}...{name[-20:]} ({len(name)} characters)"
    return (
        f"{shown}: a path the file system refuses as too long (at most 255 bytes a part); "
        "expected a shorter one"
    )


def run_guarded(comm, body) -> int:
    """Run ``body`` so that no rank is ever left waiting (docs/design.md invariant 5).

    A ``RunError`` is raised on all ranks together: rank 0 prints one line, everyone
    exits with its status (2 bad input, 4 divergence, 5 replicas disagree, ...).
    Anything else may have hit one rank only while the others sit in a collective: that
    rank prints what happened and aborts the whole job.
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    try:
        return body() or 0
    except RunError as exc:
        if rank == 0:
            print(f"dist-logreg: error: {printable(exc)}", file=sys.stderr, flush=True)
        return exc.exit_status
    except BaseException as exc:  # noqa: BLE001 - includes KeyboardInterrupt: abort all ranks
        if isinstance(exc, SystemExit) and not exc.code:
            raise
        if isinstance(exc, BrokenPipeError):  # rank 0's reader went away: end every rank
            if size > 1:
                comm.Abort(EXIT_BROKEN_PIPE)
            return broken_pipe()
        status = EXIT_UNEXPECTED
        if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # bad input (V-H4)
            what, status = too_long(exc), 2
        elif isinstance(exc, KeyboardInterrupt):  # Ctrl-C is not a bug: one line
            # named, and 128 + its number, as every command (a Ctrl-C was exit 1, which
            # supervise takes for a crash to restart: seventeenth attack, S-M6)
            what, status = f"interrupted ({interrupt_name(exc)})", interrupt_status(exc)
            if interrupt_name(exc) == "SIGTERM":  # mpirun's forward, a batch system
                with contextlib.suppress(ValueError):  # a second one (the abort's) ends it
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
        else:
            traceback.print_exc(file=sys.stderr)
            what = printable(f"{type(exc).__name__}: {exc}")
        print(
            f"dist-logreg: error on rank {rank} of {size}: {what}; aborting all ranks",
            file=sys.stderr,
            flush=True,
        )
        if size > 1:
            comm.Abort(status)
        return status
