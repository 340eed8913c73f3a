"""``dist-logreg report``: the offline report of finished runs (a plain process, no MPI).

================  ==========================================================================
``runs``          read what runs left behind: a training output directory or a bench JSON
``benchfile``     a bench JSON's schema (every key the report reads) and its records' relations
``trainfile``     a training run's summary.json, config.json, traffic.json: schema, relations
``analysis``      the numbers behind the plots and tables (pure numpy)
``plots``         the figures of training runs (matplotlib, Agg)
``netplots``      the figures of bench sweeps and of the fabric
``simulate``      ``simulate.json``: time against ranks per algorithm, link utilisation per tier
``neighbour``     a ``simulate.json`` with a neighbouring job: each job alone, together, slowdown
``simcheck``      a ``simulate.json``'s packet rows, and the relations between its numbers
``simfloor``      a ``simulate.json``'s fabric block, each row's least time, a rank's most push
``packetplots``   a packet-engine ``simulate.json``: queues, QP rates, pauses, message CDF
``tables``        the tables: provenance, headline numbers, stragglers, bench records
``document``      the report as ``report.html`` (self-contained) and ``report.md``
``build``         the whole report: load, compute, draw, write
================  ==========================================================================
"""
