"""``simulate.json`` in the report: time against ranks per algorithm (median and the spread
over seeds), and link utilisation per tier."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dist_logreg import schema
from dist_logreg.report import plots
from dist_logreg.report.document import Section, Table
from dist_logreg.units import format_byte_rate, format_bytes, format_seconds

FORMAT = "dist-logreg simulate"


@dataclass
class SimRun:
    path: Path
    tag: str
    doc: dict
    kind: str = field(default="simulate", init=False)

    @property
    def run(self) -> dict:
        return {}


#: A duration beyond this is not a simulated allreduce (eleven days).
MAX_SECONDS = 1e6
_SECONDS = schema.number(0.0, MAX_SECONDS, "a finite number of seconds")
_RATE = schema.number(0.0, 1e18, "a finite number of B/s")
_UTIL = schema.table({"max_util": schema.number(), "mean_util": schema.number()})
_PACKET = schema.table(
    {
        "queue": schema.table(
            {"t_s": schema.items(_SECONDS), "links": schema.mapping(schema.items(schema.number()))}
        ),
        "message_done_s": schema.items(schema.number(-1.0, MAX_SECONDS)),
    }
)
RESULT = schema.table(
    {
        "algorithm": schema.text(),
        "bytes": schema.count(1, 1 << 50, "a whole number of bytes"),
        "ranks": schema.count(1, 10**7, "a number of ranks"),
        "time_s": _SECONDS,
        "time_s_worst": _SECONDS,
        "time_s_seeds": schema.items(_SECONDS, 1, 10**7, "a list of seconds (one per seed)"),
        "ideal_s": _SECONDS,
        "busbw": _RATE,
        "bottleneck": schema.text(),
        "links": schema.mapping(_UTIL, "an object of link classes"),
    },
    {"algbw": _RATE, "ratio_to_ideal": schema.number(), "packet": _PACKET},
    "a result (an object)",
)
#: ``simulate.json``: what :func:`dist_logreg.sim.runner.sweep` writes, as the report reads it.
SCHEMA = schema.table(
    {
        "format": schema.text(FORMAT),
        "engine": schema.text(),
        "mode": schema.text(),
        "fabric": schema.table({"spec": schema.text(), "hosts": schema.count(1)}),
        "placement": schema.table({"mode": schema.text(), "seeds": schema.count(1)}),
        "results": schema.items(RESULT, 1, 10**6, "a list of results"),
    }
)


def read(path: Path) -> dict:
    """The checked ``simulate.json`` at ``path`` (a regular file, never a FIFO)."""
    return check(path, schema.read(path, "simulate.json"))


def check(path: Path, doc) -> dict:
    """``doc`` if it is a ``simulate.json`` every key of which the report can show."""
    return schema.check(doc, SCHEMA, f"simulate.json {path}")


def load(path: Path, doc) -> SimRun:
    check(path, doc)
    tag = path.parent.name if path.name == "simulate.json" else path.stem
    return SimRun(path, tag, doc)


def is_simulate(doc) -> bool:
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def _time_vs_ranks(run: SimRun):
    fig, ax = plots.figure(f"Simulated allreduce time: {run.tag}")
    for i, ((alg, n), rows) in enumerate(_series(run).items()):
        rows.sort(key=lambda r: r["ranks"])
        x = [r["ranks"] for r in rows]
        seeds = [np.asarray(r["time_s_seeds"]) * 1e3 for r in rows]
        ax.plot(
            x,
            [r["time_s"] * 1e3 for r in rows],  # the median seed's (the row's own)
            "o-",
            color=f"C{i % 10}",
            label=f"{alg}, {n / 2**20:g} MiB",
        )
        ax.fill_between(
            x, [s.min() for s in seeds], [s.max() for s in seeds], color=f"C{i % 10}", alpha=0.2
        )
    ax.set_xscale("log", base=2), ax.set_yscale("log")
    ax.set_xlabel("ranks"), ax.set_ylabel("time (ms): median, band = min..max over seeds")
    ax.legend(fontsize=7)
    return fig


def _series(run: SimRun) -> dict:
    out: dict = {}
    for r in run.doc["results"]:
        out.setdefault((r["algorithm"], r["bytes"]), []).append(r)
    return out


def _utilisation(run: SimRun):
    fig, ax = plots.figure(f"Link utilisation per tier (largest job of each): {run.tag}")
    rows = [
        r for r in run.doc["results"] if r["ranks"] == max(x["ranks"] for x in run.doc["results"])
    ]
    classes = sorted(
        {c for r in rows for c in r["links"]},
        key=lambda c: list(rows[0]["links"]).index(c) if c in rows[0]["links"] else 99,
    )
    width = 0.8 / max(len(rows), 1)
    for i, r in enumerate(rows):
        x = np.arange(len(classes)) + i * width
        ax.bar(
            x,
            [r["links"].get(c, {}).get("max_util", 0) for c in classes],
            width,
            alpha=0.35,
            color=f"C{i % 10}",
        )
        ax.bar(
            x,
            [r["links"].get(c, {}).get("mean_util", 0) for c in classes],
            width,
            color=f"C{i % 10}",
            label=f"{r['algorithm']} {r['bytes'] / 2**20:g} MiB",
        )
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes)
    ax.set_ylabel("utilisation: solid mean, light max")
    ax.legend(fontsize=7)
    return fig


def section(b, run: SimRun, prefix: str) -> Section:
    d = run.doc
    sec = Section(f"Simulation: {run.tag}")
    sec.notes.append(
        f"fabric {d['fabric']['spec']} ({d['fabric']['hosts']} hosts); placement "
        f"{d['placement']['mode']}, {d['placement']['seeds']} seed(s); "
        f"engine {d['engine']}, {d['mode']}"
    )
    sec.items.append(
        b.image(
            _time_vs_ranks(run),
            f"{prefix}sim-time.png",
            "Time against ranks",
            "median over seeds; the band spans the fastest to the slowest seed",
        )
    )
    sec.items.append(
        b.image(
            _utilisation(run),
            f"{prefix}sim-links.png",
            "Link utilisation per tier",
            "busy time / allreduce time, per link class, median seed",
        )
    )
    rows = [
        [
            r["algorithm"],
            str(r["ranks"]),
            format_bytes(r["bytes"], "g"),
            format_seconds(r["time_s"], ".3f"),
            format_seconds(r["time_s_worst"], ".3f"),
            format_seconds(r["ideal_s"], ".3f"),
            format_byte_rate(r["busbw"]),
            r["bottleneck"],
        ]
        for r in d["results"]
    ]
    sec.items.append(
        Table(
            "Simulated allreduce",
            [
                "algorithm",
                "ranks",
                "bytes",
                "time (median)",
                "worst seed",
                "ideal",
                "busbw",
                "bottleneck",
            ],
            rows,
        )
    )
    return sec
