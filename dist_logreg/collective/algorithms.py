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

#: The collectives ``bench --collective`` measures; the gradient path is the first.
COLLECTIVES = ("allreduce", "reduce-scatter", "allgather", "broadcast", "alltoall")
#: Recursive halving: the reduce-scatter half of Rabenseifner's allreduce.
RECURSIVE_HALVING = "recursive-halving"
#: The implementations of each collective besides allreduce: the MPI library's own, and
#: the two halves of the ring and of Rabenseifner's allreduce (:mod:`dist_logreg.comm.halves`).
IMPLEMENTATIONS = {
    "reduce-scatter": (ALGORITHMS[0], ALGORITHMS[1], RECURSIVE_HALVING),
    "allgather": (ALGORITHMS[0], ALGORITHMS[1], ALGORITHMS[2]),
    "broadcast": (ALGORITHMS[0],),
    "alltoall": (ALGORITHMS[0],),
}
#: nccl-tests' bus-bandwidth factor of each collective (busbw = algbw * factor; S = the
#: total size: the allreduce buffer, the reduce-scatter input, the allgather output, the
#: alltoall send buffer, the broadcast buffer).
BUSBW_FACTORS = {
    "allreduce": lambda p: 2.0 * (p - 1) / p,
    "reduce-scatter": lambda p: (p - 1) / p,
    "allgather": lambda p: (p - 1) / p,
    "alltoall": lambda p: (p - 1) / p,
    "broadcast": lambda p: 1.0,
}
