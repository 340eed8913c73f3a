"""Communication on MPI: reduce a flat numpy buffer in place, whatever algorithm implements it.

Knows nothing of models or of training. Importing this package loads nothing; the modules
that talk to MPI (``base``, ``links``, ``p2p``, ``wrappers``, ``registry``) import
``mpi4py`` themselves.
The pure arithmetic about collectives (names, schedules, costs, the cost model) is in
:mod:`dist_logreg.collective`.

============================  ==================================================================
``base``                      the interface every allreduce has, and the MPI library's own
``links``                     the point-to-point link the algorithms run on (traffic counted),
                              the chunking
``p2p``                       ring, recursive doubling, Rabenseifner (both orders),
                              hierarchical on point-to-point calls
``hierarchical_2d``           the 2-D allreduce: reduce-scatter inside nodes, one allreduce
                              per rail across, allgather inside
``reduce_scatter_allgather``  reduce-scatter and allgather on point-to-point calls: the ring's
                              and Rabenseifner's two halves
``collectives``               reduce-scatter, allgather, broadcast, alltoall: the MPI library's
                              and ours
``wrappers``                  instrumentation and fp16 compression, with the same interface
``registry``                  ``make_allreduce``: a name to an allreduce object
``mpilib``                    forcing and recording the MPI library's own algorithm (pure)
``mpi_start``                 ``MPI_Init`` / ``MPI_Finalize`` with the GIL released (mpi4py
                              loaded inside)
============================  ==================================================================
"""
