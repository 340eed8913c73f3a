"""dist_logreg: an instrumented data-parallel logistic-regression trainer (numpy + mpi4py).

Importing the package loads neither numpy nor MPI: the command line sets thread and MPI
environment variables first (see ``dist_logreg.cli``).
"""

__version__ = "0.1.0"
