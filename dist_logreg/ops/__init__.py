"""Operations around a job: processes that start and watch MPI jobs but never are one.

Nothing under this package imports ``mpi4py`` (directly or through another module): the
supervisor must not initialise MPI, which on a Slurm/PMI system can break the very launch
it supervises. A test imports these modules in a fresh interpreter and checks.

=============  ============================================================================
``supervise``  restart a training job from its newest checkpoint when it fails
``scale``      one training command at several world sizes: speedup, efficiency
``cluster``    an emulated multi-host network in network namespaces
=============  ============================================================================
"""
