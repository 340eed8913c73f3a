"""``dist-logreg bench``: the allreduce micro-benchmark, on MPI.

=============  ============================================================================
``sweep``      barrier, warm-up, timed calls per algorithm and size; the checked result
``cost``       what bench records for the cost model (placement, local reduction time),
               its predicted columns (``--model``) and ``--fit``
=============  ============================================================================
"""
