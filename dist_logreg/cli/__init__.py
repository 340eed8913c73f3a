"""The command line: the parser, one module per sub-command, and dispatch (thin).

==================  ========================================================================
``main``            parse ``dist-logreg COMMAND ...`` and dispatch (reads ``MPI.COMM_WORLD``)
``guard``           how a sub-command ends: one line and a meaningful exit status, never a hang
``train``           ``train``: its flags (generated from the config) and its entry
``predict``         ``predict``: classes and probabilities of a trained model
``bench``           ``bench``: its flags and its entry
``cost_model``      ``model fit|predict``: the cost model (a plain process)
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

from dist_logreg.cli.main import main

__all__ = ["main"]
