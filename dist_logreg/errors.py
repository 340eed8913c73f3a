"""Errors that end a run, their exit statuses, and how ranks agree on them.

Exit statuses (docs/design.md; scripts and ``dist-logreg supervise`` depend on them):

====  ======================================================  ===========================
code  meaning                                                 supervise
====  ======================================================  ===========================
0     success
1     anything unexpected (a bug, a full disk, wrong results)  restarts
2     bad input or usage                                      never restarts
3     a communication timeout or stall (``--comm-timeout``)   restarts
4     numerical divergence                                    never restarts (it would
                                                              diverge again)
5     replicas disagree                                       restarts from the last
                                                              checkpoint
====  ======================================================  ===========================

Errors raised on *all* ranks together (every rank computes the same verdict from the same
inputs, or ranks first exchange verdicts with :func:`raise_together`) are printed once by
rank 0 and end every rank with their status. Anything else, raised on some ranks only, is
printed with the rank and ends the job through ``MPI_Abort`` (docs/design.md invariant 5).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_COMM_TIMEOUT = 3
EXIT_DIVERGED = 4
EXIT_REPLICAS = 5

#: One line per status, for ``--help`` and the README.
EXIT_MEANINGS = {
    EXIT_OK: "success",
    EXIT_UNEXPECTED: "unexpected error (a bug, a full disk, wrong benchmark results)",
    EXIT_USAGE: "bad input or usage (supervise never restarts it)",
    EXIT_COMM_TIMEOUT: "communication timeout or stall (--comm-timeout)",
    EXIT_DIVERGED: "numerical divergence (supervise never restarts it: it would diverge again)",
    EXIT_REPLICAS: "replicas disagree (supervise restarts from the last checkpoint)",
}
#: Statuses after which running the same job again cannot help.
NEVER_RESTART = (EXIT_USAGE, EXIT_DIVERGED)


def exit_status_help() -> str:
    """The exit-status table as ``--help`` epilog lines."""
    return "exit status:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_MEANINGS.items())


class RunError(Exception):
    """An error that ends the run with :attr:`exit_status`; the message is one line."""

    exit_status = EXIT_UNEXPECTED


class UsageError(RunError):
    """Bad input: the message says what was expected and what was received."""

    exit_status = EXIT_USAGE


class CommTimeout(RunError):
    """A collective did not complete in time."""

    exit_status = EXIT_COMM_TIMEOUT


class Diverged(RunError):
    """The loss or gradient became non-finite."""

    exit_status = EXIT_DIVERGED


class ReplicasDisagree(RunError):
    """Ranks hold different parameters."""

    exit_status = EXIT_REPLICAS


_KINDS = {
    cls.__name__: cls for cls in (RunError, UsageError, CommTimeout, Diverged, ReplicasDisagree)
}


def raise_together(comm, error: Exception | None, extra=None, *, others=None) -> list:
    """Collective: raise on every rank if any rank has an error.

    Each rank passes the error it found (or ``None``). The lowest failing rank's error is
    raised everywhere, of the same kind (so with the same exit status), prefixed with that
    rank, so the user sees which rank could not, say, open a file that others could. One
    small pickled control message: never on the hot path. ``extra`` (small, picklable)
    travels in the same message: without errors, every rank's ``extra``, by rank.

    ``others`` is for a library caller that raises Python's own exceptions (the
    scikit-learn estimator): a rank that found an error re-raises it unchanged, and the
    others raise ``others`` (e.g. ``ValueError``) naming the first failing rank and its error.
    """
    mine = None if error is None else (type(error).__name__, str(error))
    gathered = comm.allgather((mine, extra))
    verdicts = [v for v, _ in gathered]
    for rank, verdict in enumerate(verdicts):
        if verdict is not None:
            kind, message = verdict
            if others is not None:
                if error is not None:
                    raise error
                raise others(f"rank {rank} of {comm.Get_size()}: {kind}: {message}")
            # Naming a rank helps only where ranks saw different things.
            alike = all(v == verdict for v in verdicts)
            where = f"rank {rank}: " if comm.Get_size() > 1 and not alike else ""
            raise _KINDS.get(kind, RunError)(f"{where}{message}")
    return [x for _, x in gathered]
