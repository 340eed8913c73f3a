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


def _interrupted_while_loading(signum, frame) -> None:  # pragma: no cover - a signal
    """Ctrl-C while the command line loads (numpy, the parsers: the first 0.3 s or more):
    one line and 130, as any sub-command's own handler gives, never an import traceback."""
    os.write(2, b"dist-logreg: interrupted (SIGINT) while starting; nothing done\n")
    os._exit(130)


try:  # the main thread of a process (a thread importing the package cannot set handlers)
    _before = signal.signal(signal.SIGINT, _interrupted_while_loading)
except ValueError:
    _before = None
try:
    from dist_logreg.cli.main import main
finally:
    if _before is not None:
        signal.signal(signal.SIGINT, _before)

__all__ = ["main"]
