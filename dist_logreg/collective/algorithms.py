"""The names of the allreduce algorithms and compressors (pure: no MPI, no numpy).

The registry's keys live here so that configuration, the command line and the supervisor
can name an algorithm without loading the algorithms (and with them MPI).
"""

ALGORITHMS = ("mpi", "ring", "recursive-doubling", "rabenseifner", "hierarchical")
#: The algorithms written on point-to-point calls in :mod:`dist_logreg.comm.p2p`.
OURS = ALGORITHMS[1:]
COMPRESSORS = ("none", "fp16")
#: The MPI library's own allreduce algorithms that --mpi-algorithm can force, with their
#: settings: Open MPI's coll_tuned algorithm number, MPICH's CVAR value (None: not offered).
MPI_ALGORITHMS = {
    "linear": (1, None),
    "reduce-bcast": (2, None),
    "recursive-doubling": (3, "recursive_doubling"),
    "ring": (4, "ring"),
    "segmented-ring": (5, None),
    "rabenseifner": (6, "reduce_scatter_allgather"),
}
