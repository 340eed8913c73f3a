"""Reasoning about collectives: schedules, closed forms, the cost model, ECMP (pure).

Nothing here loads MPI (a test imports each module in a fresh interpreter and checks), so
the supervisor, ``scale``, ``report``, ``model fit|predict`` and the simulators
(:mod:`dist_logreg.sim`) can use it.
What runs on MPI is in :mod:`dist_logreg.comm`.

================  ==========================================================================
``algorithms``    the algorithm table: one record per algorithm (runner, phases, closed form)
``steps``         the step-by-step schedules the records point at (flows between ranks)
``halves``        reduce-scatter, allgather, broadcast, alltoall: schedules and closed forms
``closed_form``   the cost-model formulas (closed forms, bytes on the wire, Hockney time)
``schedule``      each algorithm step by step, and its load on a placement of hosts
``costfile``      a fitted cost model (``model.json``) and its predictions
``costfit``       fitting the cost model to measurements (NNLS, relative error, segments)
``benchfit``      bench records to a fitted ``model.json``, with provenance
``whatif``        ``dist-logreg model predict``: tables, crossovers, a run's comm fraction
``ecmp``          balls into bins: what ECMP hashing does to an allreduce on a leaf-spine
================  ==========================================================================
"""
