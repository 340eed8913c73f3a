"""``train --sync``: which gradient synchronisation, and what ``sharded`` can run with (pure:
no MPI, read by validation and the supervisor). The step itself: :mod:`dist_logreg.train.sharded`.
"""

from __future__ import annotations

from dist_logreg.collective import algorithms as table

SYNCS = ("allreduce", "sharded")
#: The collectives of a sharded step, in order; ``records()["collective"]`` indexes it.
SHARDED_COLLECTIVES = ("reduce-scatter", "allgather")
#: ``--allreduce`` name -> (reduce-scatter, allgather) implementations: the allreduce's
#: own two halves (the MPI library's, the ring's, Rabenseifner's).
HALVES = {
    table.MPI.name: (table.MPI.name, table.MPI.name),
    table.RING.name: (table.RING.name, table.RING.name),
    table.RABENSEIFNER.name: (table.RECURSIVE_HALVING, table.RECURSIVE_DOUBLING.name),
}


def refusal(cfg) -> str | None:
    """Why ``cfg`` cannot run with ``--sync sharded`` (None: it can)."""
    if cfg.allreduce not in HALVES:
        return (
            f"--allreduce {cfg.allreduce}: --sync sharded runs an allreduce's two halves, "
            f"expected one of {', '.join(HALVES)} (recursive doubling has no reduce-scatter "
            "half; hierarchical's halves are not written)"
        )
    if cfg.bucket_bytes:
        return (
            "--bucket-bytes: not with --sync sharded: a bucket would need its own "
            "reduce-scatter and allgather, and the allgather of step s must finish before "
            "step s+1's forward pass (FSDP's per-unit prefetch; not written here)"
        )
    if cfg.compress != "none":
        return (
            f"--compress {cfg.compress}: not with --sync sharded: the fp16 wrapper compresses "
            "an allreduce; a half-precision reduce-scatter + allgather is not written"
        )
    if cfg.checkpoint_every or cfg.resume:
        return (
            "--checkpoint-every/--resume: not with --sync sharded yet: a checkpoint holds "
            "the whole momentum, which sharded mode keeps in 1/p slices"
        )
    return None
