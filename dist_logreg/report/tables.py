"""The report's tables: where each run came from, headline numbers side by side with ratios
against the first run, stragglers, bench records. Every number says its unit."""

from __future__ import annotations

import json

import numpy as np

from dist_logreg.record.provenance import MPI_KEY
from dist_logreg.report import analysis
from dist_logreg.report.document import Table
from dist_logreg.report.plots import human_bytes
from dist_logreg.units import format_seconds


def fmt_s(x) -> str:
    """Seconds in a readable unit: ``"171 µs"``; ``"n/a"`` for None or NaN."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return format_seconds(x, ".4g", micro="µs")


def _fmt(name: str, x) -> str:
    if x is None:
        return "n/a"
    if "(s)" in name:
        return fmt_s(x)
    if "fraction" in name:
        return f"{100 * x:.1f}%"
    return f"{x:.4g}" + (" GB/s" if "GB/s" in name else "")


def _ratio(x, first) -> str:
    return f" ({x / first:.2f}x)" if x is not None and first else ""


def _provenance_column(run) -> dict[str, str]:
    info = run.run
    if not info:
        return {"kind": run.kind, "path": str(run.path)}
    hosts = "; ".join(
        f"{h['name']}: {','.join(map(str, h['ranks']))}" for h in info.get("hosts") or []
    )
    blas = "; ".join(
        f"{b.get('internal_api')} {b.get('version')}, {b.get('num_threads', '?')} thread(s)"
        for b in (info.get("blas") or {}).get("libraries", [])
    )
    cluster = info.get("cluster")
    return {
        "kind": run.kind,
        "path": str(run.path),
        "started (UTC)": info.get("started_utc"),
        "dist_logreg version": info.get("dist_logreg_version"),
        "world size": str(info.get("world_size")),
        "hosts: ranks": hosts,
        "MPI library": (info.get(MPI_KEY) or {}).get("library", "").split(",")[0],
        "numpy": info.get("numpy"),
        "BLAS": blas,
        "command line": " ".join(info.get("command_line", [])),
        "emulated cluster": json.dumps(cluster, sort_keys=True) if cluster else "none",
    }


def provenance(runs: list) -> Table:
    """One column per run: when, what, where, with which MPI, numpy and BLAS."""
    columns = [_provenance_column(r) for r in runs]
    names = list(_provenance_column(next((r for r in runs if r.run), runs[0])))
    rows = [[name] + [c.get(name) or "n/a" for c in columns] for name in names]
    missing = [r.tag for r in runs if not r.run]
    note = f"n/a for {', '.join(missing)}: made before runs recorded where they came from"
    return Table(
        "Where each run came from", [""] + [r.tag for r in runs], rows, note * bool(missing)
    )


def training_comparison(runs: list) -> Table:
    heads = [analysis.train_headline(r) for r in runs]
    rows = []
    for name in heads[0]:
        first = heads[0][name]
        label = name.replace(" (s)", "").replace(" (GB/s)", "")  # the values carry the unit
        rows.append([label] + [_fmt(name, h[name]) + _ratio(h[name], first) for h in heads])
    note = f"ratios against the first run ({runs[0].tag}); step time and latency: lower is better"
    sizes = sorted({r.summary["world_size"] for r in runs})
    if len(sizes) > 1:
        note += (
            f". NOTE: these runs have different world sizes ({', '.join(map(str, sizes))} "
            "ranks): per-rank bytes, step and allreduce times are not like for like (the "
            "allreduce grows with the ranks, each rank's share of the batch shrinks); "
            "`dist-logreg scale` compares world sizes with speedup and efficiency"
        )
    return Table("Headline numbers", ["metric"] + [r.tag for r in runs], rows, note)


def run_headline(run) -> Table:
    """One training run's numbers at the top of its report: how well it learned, and what
    the communication cost (median over calls; comm fraction: median over ranks)."""
    s, a = run.summary, run.summary.get("allreduce") or {}
    acc = s.get("final_accuracy")
    loss = s.get("final_loss")
    frac = (s.get("comm_fraction") or {}).get("median")
    lat = (a.get("latency_s") or {}).get("p50")
    bw = (a.get("busbw_GBps") or {}).get("p50")
    rows = [
        ["final loss", "n/a" if loss is None else f"{loss:.6g}"],
        ["final accuracy (training set)", "n/a" if acc is None else f"{100 * acc:.2f}%"],
        ["allreduce latency p50", fmt_s(lat)],
        ["allreduce busbw p50", "n/a" if bw is None else f"{bw:.4g} GB/s"],
        ["comm fraction of step time", "n/a" if frac is None else f"{100 * frac:.1f}%"],
    ]
    note = f"{s['world_size']} rank(s), allreduce {a.get('algorithm', '?')}"
    return Table(f"Headline: {run.tag}", ["metric", "value"], rows, note)


def stragglers(run, lat: analysis.Lateness) -> Table:
    """One row per rank, the latest first (the heatmap's rows summarised)."""
    rows = [
        [
            str(row["rank"]),
            row["host"] or "n/a",
            fmt_s(row["mean_s"]),
            fmt_s(row["p99_s"]),
            fmt_s(row["max_s"]),
            str(row["max_step"]),
            str(row["last_count"]),
        ]
        for row in lat.table(analysis.hosts_of(run))
    ]
    header = ["rank", "host", "mean lateness", "p99", "max", "at step", "steps it was last"]
    return Table(f"Stragglers: {run.tag} (latest first)", header, rows, f"lateness: {lat.method}")


def bench_headline(runs: list) -> Table:
    """Per run and algorithm: small-message latency and large-message busbw, with ratios."""
    first = {h["algorithm"]: h for h in analysis.bench_headline(runs[0])}
    rows = []
    for r in runs:
        for h in analysis.bench_headline(r):
            f = first.get(h["algorithm"], {})
            rows.append(
                [
                    r.tag,
                    h["algorithm"],
                    f"{fmt_s(h['small_time_s'])} at {human_bytes(h['small_bytes'])}"
                    + _ratio(h["small_time_s"], f.get("small_time_s")),
                    f"{h['large_busbw']:.4g} GB/s at {human_bytes(h['large_bytes'])}"
                    + _ratio(h["large_busbw"], f.get("large_busbw")),
                    f"{h['peak_busbw']:.4g} GB/s at {human_bytes(h['peak_bytes'])}",
                ]
            )
    header = ["run", "algorithm", "latency, smallest size", "busbw, largest size", "peak busbw"]
    note = f"ratios against the first bench run ({runs[0].tag}), same algorithm"
    return Table("Bench headline numbers", header, rows, note * (len(runs) > 1))


def bench_records(run) -> Table:
    rows = [
        [
            rec["algorithm"],
            str(rec["bytes"]),
            fmt_s(rec["time_s"]),
            f"{rec['busbw']:.4g}",
            fmt_s(rec.get("predicted_s")),
            str(rec.get("wrong", "n/a")),
        ]
        for rec in run.records
    ]
    header = ["algorithm", "bytes", "time per call", "busbw (GB/s)", "predicted", "wrong"]
    return Table(f"Bench records: {run.tag}", header, rows)
