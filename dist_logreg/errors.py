"""Errors that end a run, and how ranks agree on them so none is left waiting.

Two kinds of failure, handled differently (DESIGN.md invariant 5):

* ``UsageError``: bad input (flags, config, data). Raised on *all* ranks together,
  either because every rank computes the same verdict from the same inputs, or
  because ranks that may disagree (each opened the file itself) first exchange
  their verdicts with :func:`raise_together`. The CLI prints one line and exits 2.
* Anything else, raised on some ranks only: the CLI prints it with the rank and
  calls ``MPI_Abort``, which ends every rank, including those blocked in a collective.
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad input: the message says what was expected and what was received."""


def raise_together(comm, error: UsageError | None) -> None:
    """Collective: raise on every rank if any rank has an error.

    Each rank passes the error it found (or ``None``). The lowest failing rank's message is
    raised everywhere, prefixed with that rank, so the user sees which rank could not, say,
    open a file that others could. One small pickled control message: never on the hot path.
    """
    verdicts = comm.allgather(None if error is None else str(error))
    for rank, message in enumerate(verdicts):
        if message is not None:
            where = f"rank {rank}: " if comm.Get_size() > 1 else ""
            raise UsageError(f"{where}{message}")
