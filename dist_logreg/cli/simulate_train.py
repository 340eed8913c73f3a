"""``simulate --run RUN``: a train run's measured compute with simulated communication."""

from __future__ import annotations

import math
from pathlib import Path

from dist_logreg import schema
from dist_logreg.collective.algorithms import MPI
from dist_logreg.errors import UsageError
from dist_logreg.files import read_json
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


# --- model predict --run RUN: the run's compute with predicted communication ---------------

_SECONDS = schema.number(0.0, 1e9, "a finite number of seconds")
#: What ``model predict --run`` reads of a train run's ``summary.json``, with bounds: before,
#: three values had only to convert with ``float()``, and a compute of -1 s, NaN, a message
#: of -88 B or 1e300 B, 0 ranks were predicted from, exit 0 (twelfth attack, L-H20).
RUN_SUMMARY = schema.table(
    {
        "world_size": schema.count(1, 10**6, "a number of ranks"),
        "steps_run": schema.count(0, 10**12, "a whole number of steps"),
        "allreduce": schema.table(
            {
                "algorithm": schema.text(),
                "bytes_per_call": schema.count(1, 1 << 40, "a whole number of bytes"),
                "latency_s": schema.table({"p50": _SECONDS}),
            },
            {
                # each step makes at least one (1e-300 printed 290 digits, 0 "0.0 s": U-H19)
                "calls_per_step": schema.number(1.0, 1 << 21, "a number of calls a step"),
                "bytes_per_step": schema.number(0.0, 1e18, "a number of bytes a step"),
                "calls": schema.count(1, 10**15, "a whole number of calls"),
                "bytes": schema.number(0.0, 1e18, "a finite number of bytes"),
            },
        ),
        "time_s": schema.table(
            {k: _SECONDS for k in ("data", "compute", "update")}, {"total": _SECONDS}
        ),
    },
    {
        "comm_fraction": schema.table({}, {"median": schema.number(0.0, 1.0, "a fraction")}),
        "placement": schema.table(
            {}, {"host_of_rank": schema.items(schema.count(0, 10**6, "a host index"))}
        ),
    },
    "a train run's summary (an object)",
)


def allreduce_steps(s: dict, path) -> None:
    """``UsageError`` for a run whose steps were not allreduces: ``--sync sharded`` makes a
    reduce-scatter and an allgather a step, which its summary counts as two calls (they
    were predicted as two allreduces, twice its comm: fifteenth attack, Q-H8)."""
    mode = (s.get("sync") or {}).get("mode") if isinstance(s.get("sync"), dict) else None
    if mode == "sharded":
        raise UsageError(
            f"--run {path}: sync.mode: sharded (a reduce-scatter and an allgather a step, not "
            "allreduces); expected an allreduce run, or simulate its step with --workload "
            "...,sync=sharded"
        )


def read_summary(run_dir: str) -> dict:
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        raise UsageError(f"--run {run_dir}: no summary.json there (a finished train --out DIR)")
    s = schema.check(read_json(path, "--run"), RUN_SUMMARY, f"--run {path}")
    allreduce_steps(s, path)
    consistent(s, path)
    hosts = (s.get("placement") or {}).get("host_of_rank")
    if hosts is not None and len(hosts) != s["world_size"]:
        raise UsageError(
            f"--run {path}: placement.host_of_rank: expected {s['world_size']} hosts (one per "
            f"rank of world_size), got {len(hosts)}"
        )
    return s


def consistent(s: dict, path) -> None:
    """``UsageError`` for a summary whose numbers contradict each other: a step's calls and
    bytes are the run's over ``steps_run``, each phase within the total, the p50 within the
    run (its whole time taken as one step, 954 MiB calls of an 11-element model, a p50 of
    1000 s in a 6 ms run were predicted from: nineteenth attack, X-H11, X-H12)."""
    a, t, steps = s["allreduce"], s["time_s"], s["steps_run"]
    if steps < 1:  # its whole time was taken as one step's (as simulate --run: T-M6)
        raise UsageError(
            f"--run {path}: steps_run: expected a whole number of steps >= 1 (its last "
            "attempt's measurements), got 0"
        )
    pairs = [("calls_per_step", "calls", steps), ("bytes_per_step", "bytes", steps)]
    for key, whole, over in pairs:
        if key in a and whole in a and over:
            want = a[whole] / over
            if not math.isclose(a[key], want, rel_tol=1e-6, abs_tol=1e-9):
                raise UsageError(
                    f"--run {path}: allreduce.{key}: expected allreduce.{whole} / "
                    "steps_run = "
                    f"{want:g}, got {a[key]:g}"
                )
    total = t.get("total")
    for k in ("data", "compute", "update"):
        if total is not None and t[k] > total * (1 + 1e-6) + 1e-9:
            raise UsageError(
                f"--run {path}: time_s.{k}: expected at most time_s.total {total:g} s (a "
                f"phase of the run), got {t[k]:g}"
            )
    if total is not None and a["latency_s"]["p50"] > total + 1e-9:
        raise UsageError(
            f"--run {path}: allreduce.latency_s.p50: expected at most time_s.total "
            f"{total:g} s (a call within the run), got {a['latency_s']['p50']:g}"
        )
