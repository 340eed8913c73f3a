"""What a run records and prints: its statistics, its files, the console, the timeline.

Imports nothing from ``train``, ``report`` or ``bench``: the loop and the commands call in.

================  ==========================================================================
``result``        what one rank ends a training run with (``TrainResult``, the step phases)
``stats``         gather every rank's records; the summary (latency, bandwidth, skew, traffic)
``outputs``       the output directory, the final files, partial flushes, rescue
``console``       progress lines and the end-of-run block (rank 0)
``progress``      the progress bar when the output is a terminal, plain lines otherwise
``trace``         clock alignment across ranks and the Chrome trace file
``provenance``    where a run came from: the ``run`` block of the summary and the bench JSON
``sync``          the summary's ``sync`` block: per collective, optimizer state per rank
``stragglers``    arrival order, flagged steps, predicted vs measured, the explanation (pure)
================  ==========================================================================
"""
