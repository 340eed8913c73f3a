"""dist_logreg: an instrumented data-parallel logistic-regression trainer (numpy + mpi4py).

Importing the package loads neither numpy nor MPI: the command line sets thread and MPI
environment variables first (see ``dist_logreg.cli``). ``DistLogisticRegression``, the
scikit-learn estimator, is loaded on first use (``from dist_logreg import
DistLogisticRegression``).
"""

__version__ = "0.1.0"
__all__ = ["DistLogisticRegression", "__version__"]


def __getattr__(name: str):
    if name == "DistLogisticRegression":
        from dist_logreg.estimator import DistLogisticRegression

        return DistLogisticRegression
    raise AttributeError(f"module 'dist_logreg' has no attribute {name!r}")
