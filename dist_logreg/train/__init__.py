"""Training: where the rows come from, the model math, the loop, and what keeps a run alive.

================  =========================================================================
``config``        the one frozen configuration object and its commented defaults
``validation``    every setting in range and in agreement (static, then with world and data)
``options``       the configuration as command-line flags and TOML files
``startup``       load config and data, estimate memory, agreement of all ranks
``data``          the synthetic set, the check of the values (re-exports the readers)
``dataset``       the ``Dataset``: features, labels, where they came from, its shard
``readers``       the table of data readers: each ``--data`` form and what reads it
``sparse``        LIBSVM files read in byte-range parts, scipy sparse ``.npz``
``shards``        each rank's shard of the data (``--sampling sharded``)
``sampling``      which rows each step reads: ``--shuffle`` and ``--sampling`` modes
``labels``        which model the labels ask for (0/1, -1/+1, 0..K-1)
``binary``        binary logistic-regression math, pure numpy
``softmax``       multinomial (softmax) math, pure numpy
``models``        the model objects the loop uses (binary or softmax, dense or sparse rows)
``evaluate``      collective evaluation, the held-out split
``prepare``       a run's data, labels, model and held-out rows
``predict``       ``dist-logreg predict``
``loop``          the training loop: the only place that knows the order of a step
``step``          one step: gradient sums, one allreduce, the same update (and buckets)
``syncmode``      ``--sync allreduce|sharded``: the names and what sharded refuses (pure)
``sharded``       ``--sync sharded``: reduce-scatter, the 1/p slice's update, allgather
``checkpoint``    atomic, checksummed checkpoints; run identity; the last good state
``faults``        injected faults and the communication watchdog
``cost_model``    the cost model of a run: ``--cost-model FILE`` or ``auto`` (a short sweep)
``run``           one whole ``train`` run: config, data, resume, loop, outputs
================  =========================================================================
"""
