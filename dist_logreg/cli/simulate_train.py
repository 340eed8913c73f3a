"""``simulate --run RUN``: a train run's measured compute with simulated communication."""

from __future__ import annotations

import json
import math
from pathlib import Path

from dist_logreg.errors import UsageError


def read_run(path) -> dict:
    """World size, steps, allreduce calls and bytes, compute time, from ``summary.json``."""
    p = Path(path)
    f = p if p.name == "summary.json" else p / "summary.json"
    try:
        s = json.loads(f.read_text())
        steps = int(s["steps"])
        calls = int(s["allreduce"]["calls"])
        nbytes = float(s["allreduce"]["bytes"])
        compute = float(s["time_s"]["compute"])
        world = int(s["world_size"])
    except FileNotFoundError:
        raise UsageError(
            f"--run {path}: expected a train --out directory with summary.json, found none"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"--run {f}: expected steps, world_size, allreduce.calls/bytes and "
            f"time_s.compute, got an error reading {exc}"
        ) from None
    bad = [
        f"{key} = {value!r} (expected {want})"
        for key, value, ok, want in (
            ("steps", steps, steps >= 1, ">= 1"),
            ("world_size", world, world >= 1, ">= 1"),
            ("allreduce.calls", calls, calls >= 1, ">= 1"),
            ("allreduce.bytes", nbytes, math.isfinite(nbytes) and nbytes > 0, "finite, > 0"),
            ("time_s.compute", compute, math.isfinite(compute) and compute >= 0, "finite, >= 0"),
        )
        if not ok
    ]
    if bad:
        raise UsageError(f"--run {f}: {'; '.join(bad)}")
    return {
        "path": str(path),
        "world_size": world,
        "steps": steps,
        "calls_per_step": calls / steps,
        "bytes_per_call": int(round(nbytes / calls)),
        "compute_s_per_step": compute / steps,
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
