"""``dist-logreg model predict``: tables of what the fitted model predicts (pure, no MPI).

For a placement (ranks, ranks per host, topology) and a link rate: per algorithm and size,
the predicted time, algbw, busbw and the shares of latency (alpha), bandwidth (beta) and
reduction (gamma); the fastest algorithm per size and the crossovers; and, given a run's
``summary.json``, the communication fraction that run would have at another scale.
"""

from __future__ import annotations

import json
from pathlib import Path

from dist_logreg.collective import algorithms, costfile
from dist_logreg.collective.schedule import Placement
from dist_logreg.errors import UsageError
from dist_logreg.units import format_link_rate


def table(model: dict, names: list[str], sizes: list[int], place: Placement, link_rate=None):
    """Predictions per algorithm and size (dicts, see :func:`costfile.predict`)."""
    rows = []
    for name in names:
        for n in sizes:
            r = costfile.predict(model, name, n, place, link_rate)
            t = r["time_s"]
            algbw = n / t / 1e9 if t > 0 else 0.0
            rows.append(
                {
                    **r,
                    "algbw_GBps": algbw,
                    "busbw_GBps": algbw * _factor(name, place.ranks),
                    "share": {
                        k: (r[f"{k}_s"] / t if t > 0 else 0.0) for k in ("alpha", "beta", "gamma")
                    },
                }
            )
    return rows


def _factor(name: str, p: int) -> float:
    """nccl-tests' busbw factor of the collective ``name`` implements (p >= 2)."""
    return algorithms.BUSBW_FACTORS[algorithms.get(name).collective](p) if p > 1 else 0.0


def _same_collective(names) -> list[str]:
    """The names of the first name's collective: fastest and crossovers compare only those
    (an allgather is no alternative to an allreduce)."""
    first = algorithms.get(names[0]).collective
    return [n for n in names if algorithms.get(n).collective == first]


def describe(place: Placement, link_rate: float | None) -> str:
    k = place.ranks // place.hosts
    text = f"{place.ranks} ranks, {k} per host ({place.hosts} hosts)"
    if place.leaf_of is not None:
        leaves = len(set(place.leaf_of))
        text += f", two-tier: {leaves} leaves, uplinks {place.uplink_factor:g}x slower per byte"
    else:
        text += ", flat"
    return text + (f", link {format_link_rate(link_rate)}" if link_rate else ", fitted links")


def _b(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError


def report(model: dict, names, sizes, place: Placement, link_rate=None) -> dict:
    """Everything ``model predict`` prints (and ``--json`` writes)."""
    rows = table(model, names, sizes, place, link_rate)
    group = _same_collective(list(names))
    fastest = []
    for n in sizes:
        here = (r for r in rows if r["bytes"] == n and r["algorithm"] in group)
        best = min(here, key=lambda r: r["time_s"])
        fastest.append({"bytes": n, "algorithm": best["algorithm"], "time_s": best["time_s"]})
    cross = costfile.crossovers(model, group, place, min(sizes), max(sizes), link_rate)
    notes = sorted({note for r in rows for note in r.pop("notes")})
    return {
        "placement": describe(place, link_rate),
        "ranks": place.ranks,
        "hosts": place.hosts,
        "link_rate_bits": link_rate,
        "predictions": rows,
        "fastest": fastest,
        "crossovers": [{"bytes": b, "from": a, "to": c} for b, a, c in cross],
        "notes": notes,
    }


def format_report(rep: dict, model_path: str) -> str:
    lines = [f"# dist-logreg model predict: {rep['placement']}; model {model_path}"]
    names = list(dict.fromkeys(r["algorithm"] for r in rep["predictions"]))
    head = (
        f"{'bytes':>12} {'time(us)':>12} {'algbw(GB/s)':>12} {'busbw(GB/s)':>12} "
        f"{'latency':>8} {'bandwidth':>10} {'reduction':>10}"
    )
    for name in names:
        lines += ["", name, head]
        for r in rep["predictions"]:
            if r["algorithm"] == name:
                s = r["share"]
                lines.append(
                    f"{r['bytes']:>12} {r['time_s'] * 1e6:>12.2f} {r['algbw_GBps']:>12.3f} "
                    f"{r['busbw_GBps']:>12.3f} {100 * s['alpha']:>7.0f}% {100 * s['beta']:>9.0f}% "
                    f"{100 * s['gamma']:>9.0f}%"
                )
    lines += [
        "",
        "fastest: " + ", ".join(f"{_b(f['bytes'])} {f['algorithm']}" for f in rep["fastest"]),
    ]
    if len(names) > 1:
        lines.append(
            "crossovers: "
            + (
                "; ".join(
                    f"{c['to']} overtakes {c['from']} at {_b(c['bytes'])}"
                    for c in rep["crossovers"]
                )
                or "none in this size range"
            )
        )
    lines += [f"note: {n}" for n in rep["notes"]]
    return "\n".join(lines)


def read_summary(run_dir: str) -> dict:
    path = Path(run_dir) / "summary.json"
    try:
        s = json.loads(path.read_text())
        for need in (s["allreduce"]["bytes_per_call"], s["time_s"]["compute"], s["steps_run"]):
            float(need)
    except FileNotFoundError:
        raise UsageError(
            f"--run {run_dir}: no summary.json there (a finished train --out DIR)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--run {path}: not a readable train summary ({exc!r})") from None
    return s


def run_fraction(
    model: dict, summary: dict, place: Placement, link_rate=None, scaling: str = "strong", name=None
) -> dict:
    """The comm fraction a run (its ``summary.json``) would have on ``place``.

    Compute per step: the run's data + compute time per step (median rank), scaled by
    ``p0 / P`` under strong scaling (the global batch is fixed, each rank gets fewer rows) or
    kept under weak scaling; the update does not scale. Communication per step: the calls per
    step times the predicted allreduce of the run's buffer.
    """
    a, t = summary["allreduce"], summary["time_s"]
    steps = max(summary["steps_run"], 1)
    p0 = summary["world_size"]
    name = name or a["algorithm"]
    rows = t["data"] / steps + t["compute"] / steps
    update = t["update"] / steps
    factor = p0 / place.ranks if scaling == "strong" else 1.0
    local = rows * factor + update
    per_call = costfile.predict(model, name, a["bytes_per_call"], place, link_rate)
    comm = per_call["time_s"] * a.get("calls_per_step", 1)
    host_of = (summary.get("placement") or {}).get("host_of_rank") or [0] * p0
    at_p0 = costfile.predict(model, name, a["bytes_per_call"], Placement(tuple(host_of)))
    return {
        "algorithm": name,
        "placement": describe(place, link_rate),
        "scaling": scaling,
        "bytes_per_call": a["bytes_per_call"],
        "calls_per_step": a.get("calls_per_step", 1),
        "predicted_comm_s_per_step": comm,
        "local_s_per_step": local,
        "predicted_comm_fraction": comm / (comm + local) if comm + local > 0 else 0.0,
        "measured": {
            "world_size": p0,
            "comm_fraction": summary.get("comm_fraction", {}).get("median"),
            "latency_p50_s": a["latency_s"]["p50"],
            "predicted_s_same_placement": at_p0["time_s"],
        },
        "notes": per_call["notes"],
    }


def format_run_fraction(r: dict) -> str:
    m = r["measured"]
    lines = [
        f"# dist-logreg model predict --run: {r['placement']}, {r['scaling']} scaling",
        f"  allreduce [{r['algorithm']}] of {_b(r['bytes_per_call'])} x {r['calls_per_step']:g} "
        f"per step: predicted {r['predicted_comm_s_per_step'] * 1e6:.1f} us per step",
        f"  data + compute + update per step: {r['local_s_per_step'] * 1e6:.1f} us",
        f"  predicted comm fraction: {100 * r['predicted_comm_fraction']:.1f}%",
        f"  the run itself: {m['world_size']} ranks, comm fraction "
        + (f"{100 * m['comm_fraction']:.1f}%" if m["comm_fraction"] is not None else "?")
        + f", allreduce latency p50 {m['latency_p50_s'] * 1e6:.1f} us (model at its placement: "
        f"{m['predicted_s_same_placement'] * 1e6:.1f} us)",
    ]
    lines += [f"note: {n}" for n in r["notes"]]
    return "\n".join(lines)
