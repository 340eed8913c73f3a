"""``dist-logreg report``: plots and tables of one or more runs, as PNG files, one
self-contained ``report.html``, ``report.md`` and ``report.json`` (the tables' numbers).

A plain process: reads files (:mod:`~dist_logreg.report.runs`), computes
(:mod:`~dist_logreg.report.analysis`), draws (:mod:`~dist_logreg.report.plots`,
:mod:`~dist_logreg.report.netplots`) and writes (:mod:`~dist_logreg.report.document`).
"""

from __future__ import annotations

import json
from pathlib import Path

from dist_logreg.report import analysis, netplots, plots, simulate, tables
from dist_logreg.report.document import Image, Section, Table, write_html, write_markdown
from dist_logreg.report.runs import BenchRun, TrainRun, load, slug, unique_tags


class Builder:
    """Draws each figure into ``out`` and collects the sections of the report."""

    def __init__(self, out: Path):
        self.out = out
        self.files: list[Path] = []

    def image(self, fig, name: str, title: str, caption: str = "") -> Image:
        self.files.append(plots.save(fig, self.out / name))
        return Image(name, title, caption)


def train_section(b: Builder, run: TrainRun, prefix: str) -> Section:
    sec = Section(f"Training run: {run.tag}")
    s = run.summary
    sec.notes.append(
        f"{s['world_size']} rank(s), {s.get('steps', s.get('steps_run'))} steps"
        + (  # a resumed run's steps, not its last attempt's alone (U-M7)
            f" ({s['steps_run']} of them in its last attempt, from step {s['resumed_from_step']})"
            if s.get("resumed_from_step") and s.get("steps_run") is not None
            else ""
        )
        + ", allreduce "
        f"{(s.get('allreduce') or {}).get('algorithm', '?')}, output directory {run.path}"
    )
    if len(run.attempts) > 1:
        sec.notes.append(
            f"{len(run.attempts)} attempts (resumed from checkpoints): "
            + "; ".join(
                f"attempt {a['attempt']}: steps {a['first']}..{a['last']}"
                + (
                    ""
                    if a["completed"]
                    else " (died; a later attempt ran its steps again)"
                    if a.get("superseded")
                    else " (died; its rows saved up to its last flush)"
                )
                for a in run.attempts
            )
        )
    if run.steps is not None and run.steps["step"].size:
        steps, phases = analysis.step_phases(run)
        fig = plots.step_time_stack(steps, phases, f"Step time by phase: {run.tag}")
        cap = "per step, the phases of the slowest rank (the stack's height is the max over ranks)"
        sec.items.append(b.image(fig, f"{prefix}step-time.png", "Step time by phase", cap))
        x, loss = analysis.loss_curve(run)
        fig = plots.lines({run.tag: (x, loss)}, f"Loss: {run.tag}", "global batch loss (log-loss)")
        sec.items.append(b.image(fig, f"{prefix}loss.png", "Loss over steps"))
    else:
        sec.notes.append("no steps.jsonl: step-time and loss plots not drawn")
    if run.calls is not None and run.calls["step"].size:
        cdf = {f"rank {r}": v for r, v in analysis.latency_by_rank(run).items()}
        fig = plots.latency_cdf(cdf, f"Allreduce latency distribution per rank: {run.tag}")
        sec.items.append(b.image(fig, f"{prefix}latency-cdf.png", "Allreduce latency CDF"))
        lat = analysis.lateness(run)
        fig = plots.lateness_heatmap(lat, f"Per-rank lateness at the allreduce: {run.tag}")
        cap = f"how long after the first rank each rank arrived ({lat.method})"
        sec.items.append(b.image(fig, f"{prefix}lateness.png", "Per-rank lateness", cap))
        sec.items.append(tables.stragglers(run, lat))
        comm = analysis.comm_per_step(run)
        if "predicted" in comm:
            fig = plots.predicted_vs_measured(
                {run.tag: comm}, f"Allreduce: model vs measured: {run.tag}"
            )
            sec.items.append(
                b.image(fig, f"{prefix}predicted.png", "Predicted vs measured allreduce time")
            )
    else:
        sec.notes.append("no metrics.jsonl: latency, lateness and prediction plots not drawn")
    t = run.traffic or {}
    if t.get("observed") and t.get("bytes"):
        fig = plots.traffic_heatmap(t["bytes"], f"Traffic matrix ({t.get('algorithm')}): {run.tag}")
        cap = "payload bytes rank i sent to rank j over the run (no MPI or TCP/IP headers)"
        sec.items.append(b.image(fig, f"{prefix}traffic.png", "Traffic matrix", cap))
    else:
        sec.notes.append(
            "traffic matrix not drawn: "
            + (t.get("note") or "no traffic.json")
            + " (the allreduce algorithms written here count their traffic; --allreduce ring)"
        )
    if run.links:
        fig = netplots.link_bytes(run.links, f"Bytes per link: {run.tag}")
        sec.items.append(b.image(fig, f"{prefix}links.png", "Bytes per link (links.json)"))
    for k, fmap in enumerate(run.flows or []):
        if not fmap["flows"]:
            continue
        label = fmap["label"]
        fig = netplots.flow_spine_map(fmap["flows"], f"Flow-to-spine map ({label}): {run.tag}")
        cap = "colour: the spine that carried most of the pair's bytes; labels: bytes per spine"
        name = f"{prefix}flows.png" if k == 0 else f"{prefix}flows-{k}.png"
        sec.items.append(b.image(fig, name, f"Flow-to-spine map, {label} (flows.json)", cap))
    return sec


def comparison_section(b: Builder, runs: list[TrainRun]) -> Section:
    sec = Section("Training runs compared", items=[tables.training_comparison(runs)])
    with_steps = [r for r in runs if r.steps is not None and r.steps["step"].size]
    if with_steps:
        total = {
            r.tag: (analysis.step_phases(r)[0], analysis.step_phases(r)[1].sum(axis=1))
            for r in with_steps
        }
        fig = plots.lines(
            total, "Step time (max over ranks)", "step time ({unit})", seconds=True, log=True
        )
        sec.items.append(b.image(fig, "compare-step-time.png", "Step time, runs overlaid"))
        loss = {r.tag: analysis.loss_curve(r) for r in with_steps}
        fig = plots.lines(loss, "Loss over steps", "global batch loss (log-loss)")
        sec.items.append(b.image(fig, "compare-loss.png", "Loss, runs overlaid"))
    with_calls = [r for r in runs if r.calls is not None and r.calls["step"].size]
    if with_calls:
        cdf = {r.tag: r.calls["seconds"] for r in with_calls}
        fig = plots.latency_cdf(cdf, "Allreduce latency distribution (all ranks)")
        sec.items.append(b.image(fig, "compare-latency-cdf.png", "Latency CDF, runs overlaid"))
        comm = {r.tag: analysis.comm_per_step(r) for r in with_calls}
        if any("predicted" in c for c in comm.values()):
            fig = plots.predicted_vs_measured(comm, "Allreduce time per step: model vs measured")
            sec.items.append(
                b.image(fig, "compare-predicted.png", "Predicted vs measured, runs overlaid")
            )
    return sec


def bench_section(b: Builder, runs: list, link_rate: float | None) -> Section:
    sec = Section("Allreduce benchmark" + (" runs compared" if len(runs) > 1 else ""))
    series = {r.tag: analysis.bench_series(r) for r in runs}
    fig = netplots.bench_latency(series, "Allreduce time per call vs message size")
    sec.items.append(b.image(fig, "bench-latency.png", "Latency vs size", "predictions dashed"))
    ceilings = analysis.link_ceilings(runs[0], link_rate)
    fig = netplots.bench_busbw(series, ceilings, "Allreduce bus bandwidth vs message size")
    cap = "dotted: the link rate" if ceilings else "link rate unknown (give --link-rate to draw it)"
    sec.items.append(b.image(fig, "bench-busbw.png", "busbw vs size", cap))
    sec.items.append(tables.bench_headline(runs))
    sec.items += [tables.bench_records(r) for r in runs]
    return sec


def build(runs: list, out: Path, link_rate: float | None = None) -> list[Path]:
    """Write the report of ``runs`` (loaded runs, or their paths) into ``out``.

    Returns every file written.
    """
    runs = [r if isinstance(r, TrainRun | BenchRun | simulate.SimRun) else load(r) for r in runs]
    unique_tags(runs)
    out.mkdir(parents=True, exist_ok=True)
    b = Builder(out)
    train = [r for r in runs if r.kind == "train"]
    bench = [r for r in runs if r.kind == "bench"]
    sections = [Section("Runs", items=[tables.provenance(runs)])]
    if len(runs) == 1 and train:  # one run: its headline first, before where it came from
        sections.insert(0, Section("Headline", items=[tables.run_headline(train[0])]))
    if len(train) > 1:
        sections.append(comparison_section(b, train))
    if bench:
        sections.append(bench_section(b, bench, link_rate))
    for i, r in enumerate(r for r in runs if r.kind == "simulate"):
        sections.append(simulate.section(b, r, f"{i + 1}-"))
    for i, r in enumerate(train):
        prefix = f"{i + 1}-{slug(r.tag)}-" if len(train) > 1 else ""
        sections.append(train_section(b, r, prefix))
    title = "dist-logreg report: " + ", ".join(r.tag for r in runs)
    intro = [f"{len(runs)} run(s): " + "; ".join(f"{r.tag} ({r.kind}, {r.path})" for r in runs)]
    b.files.append(write_html(out / "report.html", title, intro, sections))
    b.files.append(write_markdown(out / "report.md", title, intro, sections))
    b.files.append(_write_numbers(out / "report.json", runs, sections))
    return b.files


def _write_numbers(path: Path, runs: list, sections: list[Section]) -> Path:
    """``report.json``: every table's rows and the images, for scripts."""
    doc = {
        "runs": [{"tag": r.tag, "kind": r.kind, "path": str(r.path)} for r in runs],
        "lateness": {  # the heatmap's data summarised per rank, latest first (seconds)
            r.tag: analysis.lateness(r).table(analysis.hosts_of(r))
            for r in runs
            if r.kind == "train" and r.calls is not None and r.calls["step"].size
        },
        "tables": [
            {"section": s.title, "title": t.title, "header": t.header, "rows": t.rows}
            for s in sections
            for t in s.items
            if isinstance(t, Table)
        ],
        "images": [i.file for s in sections for i in s.items if isinstance(i, Image)],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
