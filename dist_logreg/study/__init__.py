"""Studying the communication: statistics, the files of a run, the console, the timeline,
and the allreduce micro-benchmark.

================  ==========================================================================
``stats``         gather every rank's records; the summary (latency, bandwidth, skew, traffic)
``outputs``       the output directory, the final files, partial flushes, rescue
``console``       progress lines and the end-of-run block (rank 0)
``trace``         clock alignment across ranks and the Chrome trace file
``bench``         ``dist-logreg bench``: the allreduce micro-benchmark
``benchmodel``    what bench records for the cost model; its predicted columns; ``--fit``
``modelfit``      bench records to ``model.json``, with provenance (pure)
``whatif``        ``dist-logreg model predict``: tables, crossovers, a run's comm fraction (pure)
``modelrun``      the model of a train run: ``--model FILE`` or ``auto``
``stragglers``    arrival order, flagged steps, predicted vs measured, the explanation (pure)
================  ==========================================================================
"""
