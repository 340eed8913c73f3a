"""The statistics ``bench`` prints per size, and its closing "best per size" line (pure).

One iteration's time is the slowest rank's (OSU's convention: a collective is over when the
last rank is done): the ranks' per-iteration times are reduced with MAX before anything else.
Over those iterations: avg, p50, p99, min, max. With ``--repeats R`` (R independent timed
loops of the same size, each after a barrier) the 95% confidence interval of the mean is
Student's t over the R loop means (the iterations inside one loop are not independent:
they share the cache, the neighbours' load and the clock frequency).
"""

from __future__ import annotations

import numpy as np

from dist_logreg.units import format_bytes

#: Student's t, two-sided 95%, by degrees of freedom (1..30); 1.96 beyond.
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t95(dof: int) -> float:
    """Two-sided 95% quantile of Student's t with ``dof`` degrees of freedom (>= 1)."""
    return _T95[dof - 1] if dof <= len(_T95) else 1.96


def summarize(ns: np.ndarray) -> dict:
    """Columns of one size from ``ns``, shape ``(repeats, iters)``: the slowest rank's ns.

    Returns seconds: ``time_s`` (the mean), ``time_s_p50``, ``time_s_p99``, ``time_s_min``,
    ``time_s_max``, ``time_s_ci95`` (half-width of the 95% interval of the mean; None
    with one repeat), and ``iters`` (per repeat) and ``repeats``.
    """
    ns = np.asarray(ns, dtype=np.float64)
    if ns.ndim != 2 or ns.size == 0:
        raise ValueError(f"expected a (repeats, iters) array of times, got shape {ns.shape}")
    s = ns.ravel() * 1e-9
    repeats, iters = ns.shape
    ci = None
    if repeats > 1:
        means = ns.mean(axis=1) * 1e-9
        ci = float(t95(repeats - 1) * means.std(ddof=1) / np.sqrt(repeats))
    p50, p99 = np.percentile(s, [50, 99])
    return {
        "time_s": float(s.mean()),
        "time_s_p50": float(p50),
        "time_s_p99": float(p99),
        "time_s_min": float(s.min()),
        "time_s_max": float(s.max()),
        "time_s_ci95": ci,
        "iters": int(iters),
        "repeats": int(repeats),
    }


def best_per_size(records: list[dict]) -> list[str]:
    """One line per collective with more than one implementation: the fastest (by median:
    robust to a preempted iteration) at each size, then where the fastest changes."""
    lines = []
    for collective in dict.fromkeys(r.get("collective", "allreduce") for r in records):
        rows = [r for r in records if r.get("collective", "allreduce") == collective]
        names = list(dict.fromkeys(r["algorithm"] for r in rows))
        if len(names) < 2:
            continue
        best = []
        for nbytes in sorted({r["bytes"] for r in rows}):
            here = [r for r in rows if r["bytes"] == nbytes]
            if len(here) == len(names):  # every implementation measured this size
                best.append((nbytes, min(here, key=lambda r: r["time_s_p50"])["algorithm"]))
        cross = [
            f"{b} overtakes {a} at {format_bytes(n)}"
            for (_, a), (n, b) in zip(best, best[1:], strict=False)
            if a != b
        ]
        lines.append(
            f"# best per size ({collective}, by p50): "
            + ", ".join(f"{format_bytes(n)} {a}" for n, a in best)
        )
        lines.append(
            f"# crossovers ({collective}): " + ("; ".join(cross) or "none in this size range")
        )
    return lines
