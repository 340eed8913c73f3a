"""Live progress on rank 0: a progress bar (tqdm) when the output is a terminal.

When it is not (a pipe, a file, a batch job's log), nothing here draws anything and the
callers print their plain lines, as they always did: a log must stay readable line by line.
Under ``mpirun`` a rank's output is a terminal when mpirun's is (Open MPI forwards it
through a pseudo-terminal), so the bar shows where a person is watching.
"""

from __future__ import annotations

import os


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (False for anything without ``isatty``)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


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
