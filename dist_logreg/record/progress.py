"""Live progress on rank 0: a progress bar (tqdm) when the output is a terminal.

When it is not (a pipe, a file, a batch job's log), nothing here draws anything and the
callers print their plain lines, as they always did: a log must stay readable line by line.
Under ``mpirun`` a rank's output is ALWAYS a pseudo-terminal (Open MPI forwards it through
one, also when mpirun's own output goes to a pipe or a file), so a rank started by a launcher
also asks whether the launcher's output is a terminal (its parent's standard output, on the
same host). ``DIST_LOGREG_PROGRESS=bar|lines`` overrides the guess.
"""

from __future__ import annotations

import os
import sys

PROGRESS_VAR = "DIST_LOGREG_PROGRESS"
#: Set in every rank by Open MPI / PMIx launchers (mpirun, srun with PMIx).
_LAUNCHER_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal a person watches (False for anything without ``isatty``)."""
    forced = os.environ.get(PROGRESS_VAR, "").strip().lower()
    if forced in ("bar", "lines"):
        return forced == "bar"
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    if any(v in os.environ for v in _LAUNCHER_VARS):
        return _launcher_output_is_terminal()
    return True


def _launcher_output_is_terminal() -> bool:
    """Whether the parent process (mpirun, or its daemon) writes to a terminal."""
    try:
        target = os.readlink(f"/proc/{os.getppid()}/fd/1")
    except OSError:  # no /proc (not Linux), or not allowed: assume a log, keep it readable
        return False
    return target.startswith(("/dev/pts/", "/dev/tty"))


def _columns(stream) -> int:
    """The terminal's width in columns, 0 when it does not say."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class Bar:
    """A progress bar on ``stream`` with text lines above it; all methods are cheap."""

    def __init__(self, stream, total: int, unit: str, desc: str | None = None):
        from tqdm import tqdm

        self.stream = stream
        width = _columns(stream)
        self._bar = tqdm(
            total=total,
            unit=unit,
            desc=desc,
            file=stream,
            # A terminal of unknown size (0 x 0: under mpirun, ranks get a fresh
            # pseudo-terminal) would make tqdm draw nothing: then 80 x 24.
            ncols=None if width else 80,
            nrows=None if width else 24,
            dynamic_ncols=bool(width),
            mininterval=0.2,  # redraw at most 5 times a second, however often it advances
            leave=True,
        )

    def write(self, text: str, stream=None) -> None:
        """A line above the bar (the bar is redrawn below it)."""
        self._bar.write(text, file=stream or self.stream)

    def advance_to(self, done: int, postfix: str | None = None) -> None:
        if postfix is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def bar_for(rank: int, stream, total: int, unit: str, desc: str | None = None) -> Bar | None:
    """A :class:`Bar` on rank 0 when ``stream`` is a terminal, else None (plain lines)."""
    if rank != 0 or not is_terminal(stream):
        return None
    return Bar(stream, total, unit, desc)


def status_line(stream, text: str, last: bool = False) -> None:
    """One progress line on ``stream``: on a terminal redrawn in place (``\\r``, the last one
    ends the line); anywhere else (a pipe, a log) a whole line each time, never run together."""
    if is_terminal(stream):
        stream.write(f"\r{text}" + ("\n" if last else ""))
    else:
        stream.write(f"{text}\n")
    stream.flush()


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
