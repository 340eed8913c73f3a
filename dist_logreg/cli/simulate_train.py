"""``simulate --run RUN``: a train run's measured compute with simulated communication."""

from __future__ import annotations

from pathlib import Path

from dist_logreg import schema
from dist_logreg.collective.algorithms import MPI
from dist_logreg.errors import UsageError
from dist_logreg.sim.workload import MAX_BUCKETS

#: The keys of a train run's ``summary.json`` that ``simulate --run`` reads, with bounds.
SUMMARY = schema.table(
    {
        "steps": schema.count(1, 10**12, "a whole number of steps"),
        "world_size": schema.count(1, 10**6, "a number of ranks"),
        "allreduce": schema.table(
            {
                "calls": schema.count(1, 10**15, "a whole number of calls"),
                "bytes": schema.number(0.0, 1e18, "a finite number of bytes", above=True),
            },
            {"algorithm": schema.optional(schema.text())},
        ),
        "time_s": schema.table({"compute": schema.number(0.0, 1e9, "a finite number of s")}),
    }
)
#: One allreduce of more than this is not a logistic regression's gradient (1 TiB).
MAX_BYTES_PER_CALL = 1 << 40


def read_run(path) -> dict:
    """World size, steps, allreduce calls and bytes, compute time, from ``summary.json``."""
    p = Path(path)
    f = p if p.name == "summary.json" else p / "summary.json"
    if not f.exists() and not f.is_symlink():
        raise UsageError(
            f"--run {path}: expected a train --out directory with summary.json, found none"
        )
    s = schema.check(schema.read(f, "--run"), SUMMARY, f"--run {f}")
    steps, world = s["steps"], s["world_size"]
    calls, nbytes = s["allreduce"]["calls"], s["allreduce"]["bytes"]
    per_call = int(round(nbytes / calls))
    if not 1 <= per_call <= MAX_BYTES_PER_CALL:
        raise UsageError(
            f"--run {f}: allreduce.bytes / allreduce.calls: expected 1 to "
            f"{MAX_BYTES_PER_CALL} bytes per call, got {nbytes!r} / {calls} = {per_call}"
        )
    if round(calls / steps) > MAX_BUCKETS:  # a step's buckets, built one by one (L-H1, L-H2)
        raise UsageError(
            f"--run {f}: allreduce.calls / steps: expected at most {MAX_BUCKETS:,} allreduce "
            f"calls a step (the buckets a workload may have), got {calls} / {steps}"
        )
    return {
        "path": str(path),
        "world_size": world,
        "steps": steps,
        "calls_per_step": calls / steps,
        "bytes_per_call": per_call,
        "compute_s_per_step": s["time_s"]["compute"] / steps,
        # only MPI's own Iallreduce overlaps; the project's algorithms run each bucket's
        # allreduce to the end when it is posted (comm/base.py: istart is blocking)
        "overlapped": s["allreduce"].get("algorithm") == MPI.name,
    }


def predict_steps(run: dict, results: list) -> dict:
    """Per result: step = compute x world/P (the global batch split over P ranks) + comm."""
    preds = []
    for r in results:
        compute = run["compute_s_per_step"] * run["world_size"] / r["ranks"]
        comm = run["calls_per_step"] * r["time_s"]
        preds.append(
            {
                "algorithm": r["algorithm"],
                "ranks": r["ranks"],
                "compute_s": compute,
                "comm_s": comm,
                "step_s": compute + comm,
                "comm_fraction": comm / (compute + comm) if compute + comm else 0.0,
            }
        )
    return {
        **run,
        "predictions": preds,
        "assumption": "compute per step scales as world_size / P (the same global batch)",
    }


def run_workload(run: dict):
    """The run as a workload: its buckets (``calls_per_step`` of ``bytes_per_call``) and its
    measured compute, split evenly between the forward pass (the margins, X w) and the
    backward pass (the gradient, r X, block by block: the buckets), on one global batch
    (``strong``: the compute scales as world_size / P)."""
    from dist_logreg.sim.workload import Workload

    calls = max(1, int(round(run["calls_per_step"])))
    half = run["compute_s_per_step"] / 2
    sizes = (run["bytes_per_call"],) * calls
    return Workload(
        params=float(sum(sizes)),
        dtype_bytes=1,
        bucket_bytes=run["bytes_per_call"],
        forward_s=half,
        backward_s=half,
        # the trainer posts each bucket's allreduce as soon as it is made; it overlaps the next
        # block's compute only with --allreduce mpi (a non-blocking Iallreduce)
        overlap=calls > 1 and run.get("overlapped", False),
        strong=run["world_size"],
        bucket_sizes=sizes,
        spec=f"--run {run['path']}",
    )
