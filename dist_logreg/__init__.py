"""dist_logreg: an instrumented data-parallel logistic-regression trainer (numpy + mpi4py).

Importing the package alone loads neither numpy nor MPI (a test holds it); its modules
load what they use. The command line loads numpy with its parsers and MPI only inside
``main``, after the MPI environment is set (``dist_logreg.cli.main``).
``DistLogisticRegression``, the scikit-learn estimator, is loaded on first use
(``from dist_logreg import DistLogisticRegression``).
"""

__version__ = "0.1.0"
__all__ = ["DistLogisticRegression", "__version__"]


def __getattr__(name: str):
    if name == "DistLogisticRegression":
        from dist_logreg.estimator import DistLogisticRegression

        return DistLogisticRegression
    raise AttributeError(f"module 'dist_logreg' has no attribute {name!r}")
