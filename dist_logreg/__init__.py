"""dist_logreg: an instrumented data-parallel logistic-regression trainer (numpy + mpi4py).

Importing the package alone loads neither numpy nor MPI (a test holds it); its modules
load what they use. The command line loads numpy with its parsers and MPI only inside
``main``, after the MPI environment is set (``dist_logreg.cli.main``).
``DistLogisticRegression``, the scikit-learn estimator, is loaded on first use
(``from dist_logreg import DistLogisticRegression``).

The layers (``docs/design.md``):

================  ========================================================================
``cli``           the command line: one module per sub-command (``dist-logreg COMMAND``)
``train``         the rows, the model math, the loop and its step, start-up, checkpoints
``comm``          what runs on MPI: the allreduce algorithms, wrappers, MPI start-up
``collective``    reasoning about collectives: the algorithm table, schedules, cost model
``sim``           simulating a fabric: topologies, engines (flow, exact, packet), transports
``record``        what a run records and prints
``report``        the offline ``dist-logreg report``
``bench``         ``dist-logreg bench``: the sweep
``ops``           processes around a job: ``supervise``, ``scale``, the emulated ``cluster``
``estimator``     ``DistLogisticRegression``, the scikit-learn estimator
``errors``        the errors every layer raises, and raising them on all ranks together
``units``         the one grammar of sizes, rates and times, and their formatters
``files``         reading and writing files: one reader, one writer (never through a link)
``schema``        one checked schema per file kind the tool reads
``protocol``      what a job and the tools that start it tell each other
``__main__``      ``python -m dist_logreg``
================  ========================================================================
"""

__version__ = "0.1.0"
__all__ = ["DistLogisticRegression", "__version__"]


def __getattr__(name: str):
    if name == "DistLogisticRegression":
        from dist_logreg.estimator import DistLogisticRegression

        return DistLogisticRegression
    raise AttributeError(f"module 'dist_logreg' has no attribute {name!r}")
