"""The command line: the parser, one module per sub-command, and dispatch (thin).

==================  ========================================================================
``main``            parse ``dist-logreg COMMAND ...`` and dispatch (reads ``MPI.COMM_WORLD``)
``guard``           how a sub-command ends: one line and a meaningful exit status, never a hang
``train``           ``train``: its flags (generated from the config) and its entry
``predict``         ``predict``: classes and probabilities of a trained model
``bench``           ``bench``: its flags and its entry
``cost_model``      ``model fit|predict``: the cost model (a plain process)
``model_bounds``    ``model fit|predict``: option bounds (the simulator's), ASCII digits
``scale``           ``scale``: one training command at several world sizes
``supervise``       ``supervise``: restart a training job from its newest checkpoint
``report``          ``report``: its flags and its entry
``cluster``         ``cluster up|run|set|status|down``: the emulated cluster
``simulate``        ``simulate``: its flags
``simulate_run``    what ``simulate`` does once parsed: read the files, sweep, print, write
``simulate_train``  ``simulate --run RUN``: a run's measured compute, simulated communication
``simulate_sweep``  ``simulate --sweep FILE``: a TOML grid, serial or spread over MPI ranks
==================  ========================================================================
"""

import os
import signal

#: Set in every rank by mpirun (Open MPI, PMIx, MPICH) before MPI starts.
LAUNCHER_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")


def launched() -> bool:
    """Whether this process is a rank that a launcher (mpirun) started."""
    return any(v in os.environ for v in LAUNCHER_RANK_VARS)


def _interrupted_while_loading(signum, frame) -> None:  # pragma: no cover - a signal
    """Ctrl-C or SIGTERM while the command line loads (numpy, the parsers: the first 0.3 s
    or more): one line and 128 + the signal, as any sub-command's own handler gives, never
    an import traceback nor a silent death."""
    name = b"SIGTERM" if signum == signal.SIGTERM else b"SIGINT"
    os.write(2, b"dist-logreg: interrupted (" + name + b") while starting; nothing done\n")
    os._exit(128 + signum)


# SIGTERM too, except in a rank of mpirun: mpirun ends the other ranks with SIGTERM when
# one fails, and they leave the line to that rank (cli/guard.py takes it in a sub-command)
_SIGNALS = (signal.SIGINT,) if launched() else (signal.SIGINT, signal.SIGTERM)
_before = {}
for _signum in _SIGNALS:
    try:  # the main thread of a process (a thread importing the package cannot set handlers)
        _before[_signum] = signal.signal(_signum, _interrupted_while_loading)
    except ValueError:
        break
try:
    from dist_logreg.cli.main import entry, main
finally:
    for _signum, _handler in _before.items():
        if _handler is not None:  # None: a handler set outside Python, which cannot be restored
            signal.signal(_signum, _handler)

__all__ = ["LAUNCHER_RANK_VARS", "entry", "launched", "main"]
