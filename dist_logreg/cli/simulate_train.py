"""``simulate --run RUN``: a train run's measured compute with simulated communication."""

from __future__ import annotations

from pathlib import Path

from dist_logreg import schema
from dist_logreg.collective.algorithms import MPI
from dist_logreg.collective.whatif import allreduce_steps
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
    },
    {"steps_run": schema.optional(schema.count(0, 10**12, "a whole number of steps"))},
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
    allreduce_steps(s, f)
    # the calls and compute are this attempt's: a resumed run's over the steps it ran
    # (over all its steps: "0.333 allreduce(s) per step", fifteenth attack, Q-H1)
    if s.get("steps_run") == 0:  # taken as all its steps: Q-H1's numbers again (T-M6)
        raise UsageError(
            f"--run {f}: steps_run: expected a whole number of steps >= 1 (its last attempt's "
            "measurements), got 0"
        )
    steps, world = s.get("steps_run") or s["steps"], s["world_size"]
    calls, nbytes = s["allreduce"]["calls"], s["allreduce"]["bytes"]
    if calls % steps:  # each step makes its buckets' allreduces: a whole number of them
        raise UsageError(
            f"--run {f}: allreduce.calls / steps_run: expected a whole number of allreduce "
            f"calls a step, got {calls} / {steps}"
        )
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
