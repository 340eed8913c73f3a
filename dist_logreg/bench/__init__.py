"""``dist-logreg bench``: the collective and point-to-point micro-benchmarks, on MPI.

=============  ============================================================================
``sweep``      warm-up, timed loops per collective, implementation and size; the table,
               ``--out``, ``--csv``
``cases``      each collective's buffers, its timed call and its exact check
``summary``    avg/p50/p99/min/max, the 95% interval over repeats, best per size (pure)
``pairs``      ``--p2p latency|bw|bibw`` between ``--pairs`` of ranks
``cost``       what bench records for the cost model (placement, local reduction time),
               its predicted columns (``--model``) and ``--fit``
``memory``     the buffers a run may hold: the machine's memory over its ranks, and the
               address-space limit
=============  ============================================================================
"""
