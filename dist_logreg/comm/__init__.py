"""Communication: reduce a flat numpy buffer in place, whatever algorithm implements it.

Knows nothing of models or of training. Importing this package loads nothing; the modules
that talk to MPI (``base``, ``p2p``, ``wrappers``, ``registry``) import ``mpi4py`` themselves,
while ``names``, ``costs``, ``schedule``, ``costmodel``, ``costfit`` and ``mpilib`` are pure,
usable by processes that must not start MPI (the supervisor, the cluster tools).

=============  ============================================================================
``names``      the algorithm and compressor names (the registry's keys), pure
``base``       the interface every allreduce has, and the MPI library's own
``p2p``        ring, recursive doubling, Rabenseifner, hierarchical on point-to-point calls
``wrappers``   instrumentation and fp16 compression, with the same interface
``registry``   ``make_allreduce``: a name to an allreduce object
``costs``      the cost-model formulas (closed forms, bytes on the wire, Hockney time), pure
``schedule``   each algorithm step by step, and its load on a placement of hosts, pure
``costmodel``  a fitted model (``model.json``) and its predictions, pure
``costfit``    fitting the model to measurements (NNLS, relative error, segments), pure
``mpilib``     forcing and recording the MPI library's own algorithm
``lifecycle``  ``MPI_Init`` / ``MPI_Finalize`` with the GIL released (mpi4py loaded inside)
=============  ============================================================================
"""
