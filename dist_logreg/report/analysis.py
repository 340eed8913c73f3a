"""The numbers behind the report's plots and tables, from loaded runs (pure numpy, no MPI).

Every function takes a :class:`~dist_logreg.report.runs.TrainRun` or
:class:`~dist_logreg.report.runs.BenchRun` and returns arrays or rows; none draws.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from dist_logreg.errors import UsageError
from dist_logreg.units import rate_bits

PHASES = ("data", "compute", "comm", "update")


def _grid(col: dict[str, np.ndarray], value: np.ndarray, how: str = "sum"):
    """``(steps, ranks, matrix)``: ``value`` per rank (rows) and step (columns).

    Several entries for one step and rank (buckets) are summed, or their minimum taken.
    Cells with no entry are NaN.
    """
    steps, si = np.unique(col["step"], return_inverse=True)
    ranks, ri = np.unique(col["rank"], return_inverse=True)
    if how == "sum":
        m = np.zeros((ranks.size, steps.size))
        np.add.at(m, (ri, si), np.nan_to_num(value))
        seen = np.zeros_like(m, dtype=bool)
        seen[ri, si] = True
        m[~seen] = np.nan
    else:  # "min" or "max"
        sign = 1.0 if how == "min" else -1.0
        m = np.full((ranks.size, steps.size), np.inf)
        np.minimum.at(m, (ri, si), sign * np.asarray(value, dtype=float))
        m[np.isinf(m)] = np.nan
        m *= sign
    return steps.astype(int), ranks.astype(int), m


def step_phases(run) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, phases)``: per step, the phase times (s) of the slowest rank, shape (n, 4).

    The stack's height is the step time's maximum over ranks: the step everyone waited for.
    """
    s = run.steps
    per = [_grid(s, s[f"{ph}_s"]) for ph in PHASES]
    steps = per[0][0]
    cube = np.stack([m for _, _, m in per], axis=2)  # ranks x steps x phases
    slowest = np.nanargmax(np.nansum(cube, axis=2), axis=0)
    return steps, cube[slowest, np.arange(steps.size), :]


def loss_curve(run) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, global batch loss)``: the same on every rank, so taken from the first."""
    s = run.steps
    first = s["rank"] == s["rank"].min()
    return s["step"][first].astype(int), s["batch_loss"][first]


def latency_by_rank(run) -> dict[int, np.ndarray]:
    """Each rank's allreduce call durations (s), sorted (for a CDF)."""
    c = run.calls
    return {int(r): np.sort(c["seconds"][c["rank"] == r]) for r in np.unique(c["rank"])}


@dataclass
class Lateness:
    """How long each rank arrived at each step's allreduce after the first rank (s)."""

    steps: np.ndarray  # (n,)
    ranks: np.ndarray  # (p,)
    matrix: np.ndarray  # (p, n) seconds, >= 0
    method: str  # how arrival was measured

    def table(self, hosts: dict[int, str] | None = None) -> list[dict]:
        """One row per rank, the latest first: mean, p99, max lateness, its step, times last."""
        m = self.matrix
        last = np.nanargmax(m, axis=0) if m.size else np.array([], dtype=int)
        rows = []
        for i, rank in enumerate(self.ranks.tolist()):
            row_vals = m[i]
            k = int(np.nanargmax(row_vals)) if row_vals.size else 0
            rows.append(
                {
                    "rank": rank,
                    "host": (hosts or {}).get(rank, ""),
                    "mean_s": float(np.nanmean(row_vals)) if row_vals.size else 0.0,
                    "p99_s": float(np.nanpercentile(row_vals, 99)) if row_vals.size else 0.0,
                    "max_s": float(row_vals[k]) if row_vals.size else 0.0,
                    "max_step": int(self.steps[k]) if row_vals.size else -1,
                    "last_count": int(np.count_nonzero(last == i)),
                }
            )
        return sorted(rows, key=lambda r: (-r["max_s"], -r["mean_s"]))


def arrivals_within(where, calls, summary: dict, earlier: int, twice: bool) -> None:
    """``UsageError`` for a step whose ranks arrived further apart than its calls lasted: the
    first rank's call cannot end before the last rank's starts, so the spread of a step's
    first arrivals is at most its longest call, plus both clocks' alignment error, 1 ms and
    100 ppm of drift (one ``start_aligned_s`` of -1 drew a rank 1 s late in an 11.7 ms run:
    nineteenth attack, X-H9). Only the summary's own attempt's rows (not where a resume
    left two runs' rows of a step)."""
    if calls is None or twice or np.isnan(calls["start_aligned_s"]).all():
        return
    own = calls["step"] >= earlier
    c = {k: v[own] for k, v in calls.items()}
    if not c["step"].size:
        return
    errors = (summary.get("clock_sync") or {}).get("error_ns")
    ok = isinstance(errors, list) and all(isinstance(e, int | float) for e in errors)
    err = min(max((abs(e) for e in errors), default=0) * 1e-9, 1.0) if ok else 1.0
    steps, ranks, arrival = _grid(c, c["start_aligned_s"], how="min")
    longest = _grid(c, c["seconds"], how="max")[2]
    with warnings.catch_warnings():  # a step of no aligned start: NaN, never refused
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(arrival, axis=0) - np.nanmin(arrival, axis=0)
        drift = 1e-4 * np.nanmax(np.abs(arrival), axis=0)
        bound = np.nanmax(longest, axis=0) + 2 * err + 1e-3 + drift
    if (bad := np.flatnonzero(spread > bound)).size:
        k = int(bad[0])
        late = int(ranks[np.nanargmax(arrival[:, k])])
        raise UsageError(
            f"{where}: start_aligned_s: expected step {int(steps[k])}'s ranks to arrive within "
            f"{bound[k]:.3g} s of each other (its longest call, the clocks' error, 1 ms), got "
            f"rank {late} {spread[k]:.3g} s after the first"
        )


def lateness(run) -> Lateness:
    """Per-rank lateness at each step's (first) allreduce.

    With ``start_aligned_s`` in metrics.jsonl (clocks aligned at start-up): arrival time
    minus the earliest rank's. Without it (runs from before it was recorded): estimated from
    waiting, since all ranks leave an allreduce at about the same time, the first to arrive
    waits longest: lateness = (longest wait) - (this rank's wait).
    """
    c = run.calls
    if not np.isnan(c["start_aligned_s"]).all():
        steps, ranks, arrival = _grid(c, c["start_aligned_s"], how="min")
        m = arrival - np.nanmin(arrival, axis=0)
        method = "arrival at the allreduce, clocks aligned to rank 0 at start-up"
    else:
        steps, ranks, wait = _grid(c, c["seconds"])
        m = np.nanmax(wait, axis=0) - wait
        method = "ESTIMATED from waiting time (no start_aligned_s in metrics.jsonl)"
    return Lateness(steps, ranks, m, method)


def hosts_of(run) -> dict[int, str]:
    """rank -> host name, from the run block (empty for runs without one)."""
    return {r: h["name"] for h in run.run.get("hosts") or [] for r in h.get("ranks", [])}


def comm_per_step(run) -> dict[str, np.ndarray]:
    """Per step: allreduce time, max and min over ranks (s), and the prediction if any.

    The prediction is the per-call ``predicted_s`` of metrics.jsonl (summed over a step's
    calls, first rank), else ``summary.allreduce.predicted_s`` (one number per call).
    """
    c = run.calls
    steps, _, t = _grid(c, c["seconds"])
    out = {"steps": steps, "max": np.nanmax(t, axis=0), "min": np.nanmin(t, axis=0)}
    if not np.isnan(c["predicted_s"]).all():
        first = c["rank"] == c["rank"].min()
        sub = {k: v[first] for k, v in c.items()}
        out["predicted"] = _grid(sub, sub["predicted_s"])[2][0]
    else:
        value = (run.summary.get("allreduce") or {}).get("predicted_s")
        if isinstance(value, int | float):
            calls_per_step = (run.summary.get("allreduce") or {}).get("calls_per_step", 1)
            out["predicted"] = np.full(steps.size, float(value) * calls_per_step)
    return out


def train_headline(run) -> dict[str, float | None]:
    """The numbers runs are compared by (seconds, fractions, GB/s, loss)."""
    s, a = run.summary, run.summary.get("allreduce") or {}
    return {
        "step time p50 (s)": (s.get("step_time_s") or {}).get("p50"),
        "comm fraction (median over ranks)": (s.get("comm_fraction") or {}).get("median"),
        "allreduce latency p50 (s)": (a.get("latency_s") or {}).get("p50"),
        "allreduce latency p99 (s)": (a.get("latency_s") or {}).get("p99"),
        "busbw p50 (GB/s)": (a.get("busbw_GBps") or {}).get("p50"),
        "final loss": s.get("final_loss"),
    }


def bench_series(run) -> dict[str, dict[str, np.ndarray]]:
    """Per series (the algorithm; ``collective algorithm`` beyond allreduce): ``bytes``,
    ``time_s``, ``busbw`` (GB/s), ``predicted_s``, and the spread ``time_s_ci95``,
    ``time_s_p50``, ``time_s_p99`` (NaN where a record has none: older bench files)."""
    out: dict[str, dict[str, list]] = {}
    spread = ("predicted_s", "time_s_ci95", "time_s_p50", "time_s_p99")
    for rec in run.records:
        collective = rec.get("collective", "allreduce")
        label = (
            rec["algorithm"] if collective == "allreduce" else f"{collective} {rec['algorithm']}"
        )
        d = out.setdefault(label, {k: [] for k in ("bytes", "time_s", "busbw", *spread)})
        d["bytes"].append(rec["bytes"])
        d["time_s"].append(rec["time_s"])
        d["busbw"].append(rec["busbw"])
        for k in spread:
            d[k].append(np.nan if rec.get(k) is None else rec[k])
    return {a: {k: np.asarray(v, dtype=np.float64) for k, v in d.items()} for a, d in out.items()}


def bench_headline(run) -> list[dict]:
    """Per algorithm: latency at the smallest size, busbw at the largest, and the peak."""
    rows = []
    for alg, d in bench_series(run).items():
        lo, hi, peak = np.argmin(d["bytes"]), np.argmax(d["bytes"]), np.argmax(d["busbw"])
        rows.append(
            {
                "algorithm": alg,
                "small_bytes": int(d["bytes"][lo]),
                "small_time_s": float(d["time_s"][lo]),
                "large_bytes": int(d["bytes"][hi]),
                "large_busbw": float(d["busbw"][hi]),
                "peak_busbw": float(d["busbw"][peak]),
                "peak_bytes": int(d["bytes"][peak]),
            }
        )
    return rows


def link_ceilings(run, link_rate: float | None = None) -> list[tuple[str, float]]:
    """``(label, GB/s)`` of the links a bench's busbw can be held against, where known.

    From ``--link-rate`` of the report, else the bench JSON's ``link_rate`` (``1gbit``) or
    ``link_rate_bps``, else the emulated cluster's ``rate`` and ``uplink_rate`` in the run
    block.
    """
    cluster = run.run.get("cluster") or {}
    found: list[tuple[str, str | float]] = []
    if link_rate:
        found.append(("--link-rate", link_rate))
    elif run.doc.get("link_rate") or run.doc.get("link_rate_bps"):
        found.append(("link", run.doc.get("link_rate") or float(run.doc["link_rate_bps"])))
    else:
        for key in ("rate", "uplink_rate"):
            if isinstance(cluster.get(key), str | int | float):
                found.append((f"cluster {key.replace('_', ' ')}", cluster[key]))
    out = []
    for label, value in found:
        try:
            bits = float(value) if isinstance(value, int | float) else rate_bits(value)
        except (ValueError, UsageError):
            continue  # a rate we cannot read: no line rather than a wrong one
        out.append((f"{label} {bits / 1e9:g} Gbit/s", bits / 8 / 1e9))
    return out
