"""Training: where the rows come from, the model math, the loop, and what keeps a run alive.

=============  ============================================================================
``config``     the one frozen configuration object, its defaults and validation
``options``    the configuration as command-line flags and TOML files
``startup``    load config and data, estimate memory, agreement of all ranks
``data``       the synthetic set, data files, the global batch order
``model``      binary logistic-regression math, pure numpy
``loop``       the training loop: the only place that knows the order of a step
``checkpoint`` atomic, checksummed checkpoints; run identity; the last good state
``faults``     injected faults and the communication watchdog
``run``        one whole ``train`` run: config, data, resume, loop, outputs
=============  ============================================================================
"""
