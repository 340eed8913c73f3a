"""The tables and goals of ``bench_peers.py`` (pure arithmetic on its JSON document).

Two statistics over the rounds: the **median** (the primary one), and the **best** round
(the fastest step of each contender, and the highest bandwidth), which estimates the
uncontended machine when other jobs load it: compare the two to judge the noise.
"""

from __future__ import annotations

import numpy as np


def _median(values) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def _stat(values, stat: str, fastest=min) -> float:
    return _median(values) if stat == "median" else float(fastest(values))


def one_pass_limit_s(
    shape: dict, ranks: int, bandwidth: list[dict], stat: str = "median"
) -> tuple[float, float]:
    """(seconds, GB/s): one read of the rank's batch bytes at the best concurrent read rate."""
    itemsize = 8 if shape["dtype"] == "float64" else 4
    rank_bytes = -(-shape["batch"] // ranks) * shape["d"] * itemsize
    rates = [max(b["sum"], b["gemv64"], b["gemv32"]) for b in bandwidth]
    read = _stat(rates, stat, fastest=max)
    return rank_bytes / (read * 1e9), read


def goals(doc: dict, stat: str = "median") -> list[tuple[str, float, str, bool]]:
    """(what, measured, goal, met) for each goal of the issue that this run measured."""
    med = {s: {k: _stat(v, stat) for k, v in per.items()} for s, per in doc["steps_s"].items()}
    out = []

    def add(what, value, op, target):
        met = value <= target if op == "<=" else value >= target
        out.append((what, value, f"{op} {target}", bool(met)))

    if "narrow" in med:
        n = med["narrow"]
        add("narrow: trainer rows / numpy", n["trainer rows"] / n["numpy"], "<=", 0.45)
        add("narrow: trainer blocks / numpy", n["trainer blocks"] / n["numpy"], "<=", 0.25)
        if "ddp" in n:
            add("narrow: ddp / trainer rows", n["ddp"] / n["trainer rows"], ">=", 2.2)
    if "wide" in med:
        w = med["wide"]
        limit, _ = one_pass_limit_s(
            doc["shapes"]["wide"], doc["ranks"], doc["bandwidth_GBps"], stat
        )
        add("wide: trainer blocks / one-pass limit", w["trainer blocks"] / limit, "<=", 1.5)
        if "ddp" in w:
            add("wide: ddp / trainer rows", w["ddp"] / w["trainer rows"], ">=", 1.3)
    rss = doc["rss"]
    worst = max(rss["peak_rss_bytes_per_rank"]["sharded"])
    add("sharded: peak RSS per rank / data bytes", worst / rss["data_bytes"], "<=", 0.65)
    return out


def report(doc: dict) -> str:
    lines = [
        f"bench_peers ({doc['size']} size): {doc['rounds']} interleaved round(s), "
        f"{doc['ranks']} ranks, one BLAS thread per process; medians over rounds of the "
        "slowest rank's time per step",
        f"load average before {_loads(doc['load_average_before'])}, after "
        f"{_loads(doc['load_average_after'])}; {doc['wall_s']:.0f} s",
    ]
    if doc["ddp_skipped"]:
        lines.append(f"PyTorch DDP skipped: {doc['ddp_skipped']}")
    bw = doc["bandwidth_GBps"]
    lines.append(
        "memory bandwidth per rank, all ranks streaming at once (GB/s, median): "
        + ", ".join(f"{k} {_median([b[k] for b in bw]):.1f}" for k in bw[0])
        + " (copy counts read + write)"
    )
    for name, per in doc["steps_s"].items():
        shape = doc["shapes"][name]
        base = _median(per["numpy"])
        limit, read = one_pass_limit_s(shape, doc["ranks"], bw)
        best_limit, best_read = one_pass_limit_s(shape, doc["ranks"], bw, "best")
        lines.append("")
        lines.append(
            f"{name}: {shape['n']:,} x {shape['d']:,} {shape['dtype']}, global batch "
            f"{shape['batch']}; one-pass limit {limit * 1e3:.3f} ms (the rank's batch bytes at "
            f"{read:.1f} GB/s; best round {best_limit * 1e3:.3f} ms at {best_read:.1f} GB/s)"
        )
        lines.append(
            f"  {'contender':<16} {'step ms':>9} {'[min..max]':>19} {'x numpy':>8} {'x limit':>8}"
        )
        for label, values in per.items():
            m, lo, hi = _median(values) * 1e3, min(values) * 1e3, max(values) * 1e3
            lines.append(
                f"  {label:<16} {m:>9.3f} [{lo:>8.3f}..{hi:>8.3f}] {m / 1e3 / base:>8.3f} "
                f"{m / 1e3 / limit:>8.2f}"
            )
        for label, rounds in doc["trainer_details"].get(name, {}).items():
            phases = {
                k: _median([r[0]["phases_ms"][k] for r in rounds])
                for k in rounds[0][0]["phases_ms"]
            }
            lines.append(
                f"  {label}: rank 0 per step "
                + ", ".join(f"{k} {v:.3f} ms" for k, v in phases.items())
            )
    rss = doc["rss"]
    lines.append("")
    lines.append(
        f"peak RSS per rank, synthetic {rss['rows']:,} x {rss['features']} float64 "
        f"({rss['data_bytes'] / 1e6:.0f} MB): "
        + "; ".join(
            f"{s} {', '.join(f'{b / 1e6:.0f}' for b in v)} MB"
            for s, v in rss["peak_rss_bytes_per_rank"].items()
        )
    )
    lines.append("")
    lines.append("goals (ratios from this run):     median round   best round")
    both = zip(goals(doc, "median"), goals(doc, "best"), strict=True)
    for (what, value, goal, met), (_, best, _, best_met) in both:
        lines.append(
            f"  {what:<42} {value:>7.3f} {'met' if met else 'MISSED':<6} "
            f"{best:>7.3f} {'met' if best_met else 'MISSED':<6} goal {goal}"
        )
    return "\n".join(lines)


def _loads(values) -> str:
    return " ".join(f"{v:.2f}" for v in values)
