"""Studying the communication: statistics, the files of a run, the console, the timeline,
and the allreduce micro-benchmark.

=============  ============================================================================
``stats``      gather every rank's records; the summary (latency, bandwidth, skew, traffic)
``outputs``    the output directory, the final files, partial flushes, rescue
``console``    progress lines and the end-of-run block (rank 0)
``trace``      clock alignment across ranks and the Chrome trace file
``bench``      ``dist-logreg bench``: the allreduce micro-benchmark
=============  ============================================================================
"""
