"""Who arrived last, and was it slow? Arrival order and predicted vs measured, for the summary.

Pure arithmetic on rank 0, after the records are gathered. Arrival: the time each rank
entered a step's allreduce, on rank 0's clock (each rank's clock offset from the ping-pong
at start-up, :mod:`dist_logreg.record.trace`). The rank that arrives last is the one every
other rank waits for; *late by* is how long after the next-latest rank it came, the time the
job lost to it alone. With a cost model, a step whose allreduce (the longest any rank spent
in it, i.e. as the first to arrive saw it) took more than ``slow_factor`` times the
prediction is flagged.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dist_logreg.collective import costfile
from dist_logreg.collective.schedule import Placement
from dist_logreg.units import format_seconds


def _t(s: float) -> str:
    return format_seconds(s, ".1f")


#: Flagged steps kept in summary.json (the count says how many there were).
KEEP_FLAGGED = 200


def predictor(model: dict, name: str, host_of: list[int]):
    """``bytes -> predicted seconds`` of one allreduce on this run's placement (cached)."""
    place = Placement(tuple(host_of))

    @lru_cache(maxsize=256)
    def predict(nbytes: int) -> float:
        return costfile.predict(model, name, nbytes, place)["time_s"]

    return predict


def step_predictions(calls: dict, first_step: int, n_steps: int, predict) -> np.ndarray:
    """Predicted seconds of each step (the sum over its calls)."""
    pred = np.array([predict(int(b)) for b in calls["bytes"].tolist()])
    idx = calls["step"] - first_step
    ok = (idx >= 0) & (idx < n_steps)
    return np.bincount(idx[ok], weights=pred[ok], minlength=n_steps)


def arrivals(per_rank: list[dict]) -> np.ndarray:
    """(ranks, steps) ns: when each rank entered each step's allreduce, rank 0's clock."""
    return np.stack([r["marks"][:, 2] + r["clock_offset_ns"] for r in per_rank])


def straggler_table(per_rank: list[dict], hosts: list[str], host_of: list[int]) -> dict:
    """Per rank: in how many steps it arrived last, and the median time it came late."""
    arrive = arrivals(per_rank)
    p, steps = arrive.shape
    order = np.argsort(arrive, axis=0, kind="stable")
    cols = np.arange(steps)
    last = order[-1]
    late = (arrive[last, cols] - arrive[order[-2], cols]) * 1e-9
    rows = []
    first = per_rank[0]["first_step"]
    for r in range(p):
        where = np.flatnonzero(last == r)
        mine = late[where]
        worst = int(where[np.argmax(mine)]) if mine.size else None
        rows.append(
            {
                "rank": r,
                "host": hosts[host_of[r]],
                "last_steps": int(mine.size),
                "share": mine.size / steps if steps else 0.0,
                "median_late_s": float(np.median(mine)) if mine.size else 0.0,
                "worst_step": None if worst is None else first + worst,
                "worst_late_s": float(late[worst]) if mine.size else 0.0,
            }
        )
    rows.sort(key=lambda x: (-x["last_steps"], x["rank"]))
    error = max(r["clock_error_ns"] for r in per_rank) * 1e-9
    return {
        "method": "per step, the rank with the latest clock-aligned entry into the allreduce; "
        "late by = its entry minus the next-latest rank's",
        "clock_error_s": error,
        "table": rows,
        "_last": last,
        "_late": late,
    }


def annotate(summary: dict, per_rank, hosts, host_of, model=None, source=None, slow=2.0):
    """Add ``placement``, ``stragglers`` and (with a model) ``model`` to the summary.

    Returns the predictor (``bytes -> seconds``) for the per-call files, or None.
    """
    summary["placement"] = {"hosts": hosts, "host_of_rank": host_of}
    if len(per_rank) < 2 or per_rank[0]["marks"].shape[0] == 0:
        return None
    table = straggler_table(per_rank, hosts, host_of)
    last, late = table.pop("_last"), table.pop("_late")
    summary["stragglers"] = table
    if model is None:
        return None
    a = summary["allreduce"]
    predict = predictor(model, a["algorithm"], host_of)
    first, steps = per_rank[0]["first_step"], per_rank[0]["marks"].shape[0]
    pred_step = step_predictions(per_rank[0]["calls"], first, steps, predict)
    measured = np.stack([r["comm_ns"] for r in per_rank]).max(axis=0) * 1e-9
    flagged = np.flatnonzero(measured > slow * pred_step)
    table["slow_factor"] = slow
    table["flagged_total"] = int(flagged.size)
    table["flagged_steps"] = [
        {
            "step": int(first + i),
            "measured_s": float(measured[i]),
            "predicted_s": float(pred_step[i]),
            "ratio": float(measured[i] / pred_step[i]) if pred_step[i] > 0 else None,
            "late_rank": int(last[i]),
            "late_host": hosts[host_of[int(last[i])]],
            "late_by_s": float(late[i]),
        }
        for i in flagged[:KEEP_FLAGGED]
    ]
    summary["cost_model"] = compare(model, source, a, host_of)
    return predict


def compare(model: dict, source: str | None, a: dict, host_of) -> dict:
    """Measured p50 against the prediction, and why they differ when they do."""
    nbytes = a["bytes_per_call"]
    pred = costfile.predict(model, a["algorithm"], nbytes, Placement(tuple(host_of)))
    measured = a["latency_s"]["p50"]
    ratio = measured / pred["time_s"] if pred["time_s"] > 0 else None
    return {
        "source": source,
        "algorithm": a["algorithm"],
        "bytes_per_call": nbytes,
        "predicted_s": pred["time_s"],
        "predicted_parts_s": {k: pred[f"{k}_s"] for k in ("alpha", "beta", "gamma")},
        "measured_p50_s": measured,
        "ratio": ratio,
        "residuals": model["algorithms"][a["algorithm"]]["residuals"],
        "fitted_from": (model.get("source") or {}).get("created"),
        "notes": pred["notes"],
        "explanation": explain(pred, measured, a["transfer_s"]["p50"], a["skew_s"]["p50"]),
    }


def explain(pred: dict, measured: float, transfer: float, skew: float) -> str | None:
    """Why measured exceeds predicted by more than 1.5x: skew, latency, bandwidth or reduction."""
    t = pred["time_s"]
    if t <= 0 or measured <= 1.5 * t:
        return None
    excess = measured - t
    if skew >= 0.5 * excess:
        return (
            f"skew: ranks reach the allreduce at different times (skew p50 {_t(skew)} "
            f"of the {_t(excess)} excess); the straggler table names who is late"
        )
    part = max(("alpha", "beta", "gamma"), key=lambda k: pred[f"{k}_s"])
    share = 100 * pred[f"{part}_s"] / t
    n = int(pred["bytes"])
    what = {
        "alpha": f"latency: at {n} bytes the prediction is {share:.0f}% per-message cost "
        "(alpha); each message costs more than fitted (busy or oversubscribed cores, a "
        "longer path, interrupts)",
        "beta": f"bandwidth: at {n} bytes the prediction is {share:.0f}% transfer (beta); "
        "the links deliver less than fitted (contention, shaping, another job's traffic)",
        "gamma": f"reduction: at {n} bytes the prediction is {share:.0f}% local reduction "
        "(gamma); memory bandwidth is lower than measured (other work on the cores)",
    }[part]
    return f"{what}; transfer p50 {_t(transfer)}, skew p50 {_t(skew)}"
