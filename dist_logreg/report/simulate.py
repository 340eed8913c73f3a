"""``simulate.json`` in the report: time against ranks per algorithm (median and the spread
over seeds), and link utilisation per tier."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dist_logreg import schema
from dist_logreg.errors import UsageError
from dist_logreg.report import neighbour, packetplots, plots, simfloor
from dist_logreg.report.document import Section, Table
from dist_logreg.report.neighbour import _SECONDS, MAX_SECONDS
from dist_logreg.report.packetplots import PACKET as _PACKET
from dist_logreg.report.simcheck import STEP, relations
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


_RATE = schema.number(0.0, 1e18, "a finite number of B/s")
#: Busy time over the collective's time: no link is busier than all the time (every engine
#: divides a link's bytes by its rate and the time; checked up to :data:`RTOL`).
_FRACTION = schema.number(0.0, 1.0 + 1e-6, "a utilisation (busy time / time)")
_UTIL = schema.table({"max_util": _FRACTION, "mean_util": _FRACTION})


RESULT = schema.table(
    {
        "algorithm": schema.text(),
        "bytes": schema.count(0, 1 << 50, "a whole number of bytes"),  # 0: latency only
        "ranks": schema.count(1, 10**7, "a number of ranks"),
        "time_s": _SECONDS,
        "time_s_worst": _SECONDS,
        "time_s_seeds": schema.items(_SECONDS, 1, 10**7, "a list of seconds (one per seed)"),
        "ideal_s": _SECONDS,
        "busbw": _RATE,
        "bottleneck": schema.text(),
        "links": schema.mapping(_UTIL, "an object of link classes"),
    },
    {
        "algbw": _RATE,
        "ratio_to_ideal": schema.number(),
        "phase_sync_s": _SECONDS,
        # not drawn, but no engine writes them negative or fractional (Q-M2)
        "cross_leaf_bytes": schema.number(0.0, 1e21, "a finite number of bytes"),
        # flows a link carries, from 0 (sprayed flows count in parts: 0.5 is genuine, R-H2)
        "max_flows_per_uplink": schema.number(0.0, 1e9, "a number of flows"),
        "collisions": schema.number(0.0, 1e9, "a number of collisions"),  # NaN taken (T-M5)
        "packet": _PACKET,
        # a sweep's tags of a row (the report groups rows by them)
        "point": schema.count(0, 100_000, "a grid point's index"),  # -1 or 0.5 taken (R-M3)
        "fabric": schema.text(),
        "workload": schema.text(),
        "scenario": schema.text(),
        **neighbour.KEYS,
    },
    "a result (an object)",
)
#: ``simulate.json``: what :func:`dist_logreg.sim.runner.sweep` writes, as the report reads it.
SCHEMA = schema.table(
    {
        "format": schema.text(FORMAT),
        "engine": schema.text(),
        "mode": schema.text(),
        "fabric": schema.table(
            {"spec": schema.text(), "hosts": schema.count(1)},
            {"pinned_paths": schema.count(0, 10**8, "a number of pinned flows")},  # (T-M5)
        ),
        "placement": schema.table(
            {"mode": schema.text(), "seeds": schema.count(1)},
            {"placement_seed": schema.count(0, 2**62, "a seed")},  # -1, 0.5 taken (T-M5)
        ),
        "results": schema.items(RESULT, 1, 10**6, "a list of results"),
    },
    {"step": STEP, "wall_s": schema.optional(_SECONDS), "sweep": schema.SWEEP}
    | {"fabrics": schema.items(schema.table({"spec": schema.text()}), 1, 10**5)}  # (V-H8)
    | {"cost_model": schema.COST_MODEL, "cost_models": schema.items(schema.COST_MODEL, 2)},
)


def read(path: Path) -> dict:
    """The checked ``simulate.json`` at ``path`` (a regular file, never a FIFO)."""
    return check(path, schema.read(path, "simulate.json"))


def check(path: Path, doc, job_bound=None, name: str | None = None) -> dict:
    """``doc`` if it is a ``simulate.json`` every key of which the report can show, and
    whose numbers keep to physics (:func:`physics`; ``job_bound(doc)``: the simulator's own
    bound on each row, its fabric rebuilt, which ``cli/`` passes in); ``name`` begins the
    error's line (default ``simulate.json PATH``)."""
    name = name or f"simulate.json {path}"
    schema.check(doc, SCHEMA, name)
    try:
        physics(doc)
        relations(doc)
        for i, r in enumerate(doc["results"]):  # after the rows' own numbers (R-H4)
            simfloor.check_seeds(doc, r, i)
        if job_bound is not None:
            job_bound(doc)
    except schema.Invalid as exc:
        raise UsageError(f"{name}: {exc}") from None
    return doc


#: Relative slack of :func:`physics`: the engines' own (``sim.bounds.BOUND_RTOL``) and JSON's
#: 17 significant digits leave far less.
RTOL = 1e-6


def _get(d, key, default=None):
    return d.get(key, default) if isinstance(d, dict) else default


def _synchronous(doc, row) -> bool:
    """Whether ``row`` ran phase-synchronous (a sweep's row may name its own engine)."""
    return (
        doc["mode"] == "phase-synchronous"
        and not row.get("exact")
        and row.get("engine", "flow") == "flow"
    )


def within_bounds(doc: dict) -> None:
    """``simulate``'s check before it writes: no time the report refuses (over 10^12 s: 1 TiB
    at 8 bit/s was written, then refused by report: fifteenth attack, Q-H7)."""
    rows = [("results", r.get("time_s_worst", 0.0)) for r in doc["results"]]
    rows += [("step", r["step_s"]) for r in (doc.get("step") or {}).get("rows", [])]
    for what, t in rows:
        if t > MAX_SECONDS:
            raise UsageError(
                f"simulate: a {'collective' if what == 'results' else 'training step'} of "
                f"{t:.3g} s, over the {MAX_SECONDS:g} s (31,700 years) a result may take; "
                "expected faster links (rate=), fewer --bytes, or shorter passes"
            )


def physics(doc) -> None:
    """:class:`schema.Invalid` for a row no engine could give (``sim.bounds.check_result``
    holds every engine to this): the median seed outside its seeds' range; in
    phase-synchronous mode a time below the non-blocking ideal (each phase waits for its
    slowest flow, which the ideal only speeds up; event by event a rank may run ahead of
    the ideal's phases, so there it is not a bound); a busbw above what a rank's links can
    carry (:func:`host_push`); a neighbour row's (:func:`neighbour.physics`)."""
    neighbour.physics(doc)
    for i, r in enumerate(doc["results"]):
        push = simfloor.host_push(doc, r)
        simfloor.check_ideal(r, i)
        t, seeds = r["time_s"], r["time_s_seeds"]
        if not min(seeds) * (1 - RTOL) <= t <= r["time_s_worst"] * (1 + RTOL):
            raise schema.Invalid(
                f"results[{i}].time_s",
                f"expected the median seed's time, between the fastest seed's {min(seeds):g} s "
                f"and time_s_worst {r['time_s_worst']:g} s, got {t:g} (a file that breaks "
                "physics)",
            )
        if _synchronous(doc, r) and t < r["ideal_s"] * (1 - RTOL):
            raise schema.Invalid(
                f"results[{i}].time_s",
                f"expected at least ideal_s {r['ideal_s']:g} s (the non-blocking fabric's "
                f"time; phase-synchronous), got {t:g} (a file that breaks physics)",
            )
        if push is not None and r["busbw"] > push * (1 + RTOL):
            raise schema.Invalid(
                f"results[{i}].busbw",
                f"expected at most {push:g} B/s (the host link's rate, plus host-rate to each "
                f"other rank of a host), got {r['busbw']:g} (a file that breaks physics)",
            )


def load(path: Path, doc, job_bound=None) -> SimRun:
    check(path, doc, job_bound)
    tag = path.parent.name if path.name == "simulate.json" else path.stem
    return SimRun(path, tag, doc)


def is_simulate(doc) -> bool:
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def _time_vs_ranks(run: SimRun):
    fig, ax = plots.figure(f"Simulated allreduce time: {run.tag}")
    for i, ((alg, n, *tags), rows) in enumerate(_series(run).items()):
        rows.sort(key=lambda r: r["ranks"])
        x = [r["ranks"] for r in rows]
        seeds = [np.asarray(r["time_s_seeds"]) * 1e3 for r in rows]
        ax.plot(
            x,
            [r["time_s"] * 1e3 for r in rows],  # the median seed's (the row's own)
            "o-",
            color=f"C{i % 10}",
            label=", ".join([*map(str, filter(None, tags)), alg, f"{n / 2**20:g} MiB"]),
        )
        ax.fill_between(
            x, [s.min() for s in seeds], [s.max() for s in seeds], color=f"C{i % 10}", alpha=0.2
        )
    ax.set_xscale("log", base=2), ax.set_yscale("log")
    ax.set_xlabel("ranks"), ax.set_ylabel("time (ms): median, band = min..max over seeds")
    ax.legend(fontsize=7)
    return fig


#: What else a sweep's rows may differ in (``simulate --sweep``): one line each.
SWEEP_TAGS = ("fabric", "workload", "scenario")


def swept(doc: dict) -> list[str]:
    """A sweep's keys that vary besides ranks, algorithm and bytes: a column each in the
    tables (rows of two workloads were shown under the first's name: P-M6, Q-M6)."""
    axes = (doc.get("sweep") or {}).get("axes") or {}
    return [k for k, v in axes.items() if len(v) > 1 and k not in ("ranks", "algorithm", "bytes")]


def _series(run: SimRun) -> dict:
    """Rows by (algorithm, bytes, and a sweep's fabric, workload and scenario)."""
    out: dict = {}
    varied = [k for k in SWEEP_TAGS if len({str(r.get(k)) for r in run.doc["results"]}) > 1]
    for r in run.doc["results"]:
        key = (r["algorithm"], r["bytes"], *(r.get(k) for k in varied))
        out.setdefault(key, []).append(r)
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
        + "".join(f"; fabric {f['spec']} ({f['hosts']} hosts)" for f in d.get("fabrics", [])[1:])
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
    if "step" in d:
        _step_items(b, run, prefix, sec)
    tags = swept(d)
    rows = [
        [
            *(str(r.get(k, "")) for k in tags),
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
                *tags,
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
    # --engine packet: queues, messages; the first run's under the names docs/packet.md gives
    sec.items += packetplots.items(b, d, "" if prefix == "1-" else prefix)
    sec.items += neighbour.items(b, run, prefix)  # --scenario neighbour: each job's slowdown
    return sec


def _step_items(b, run: SimRun, prefix: str, sec: Section) -> None:
    """The step's timeline and its table (``simulate --workload``)."""
    step = run.doc["step"]
    sec.items.append(
        b.image(
            plots.step_timeline(run.doc["step"]),
            f"{prefix}sim-step.png",
            "One training step, bucket by bucket",
            "grey: compute; a line: a bucket's collective from start to end; tick: ready",
        )
    )
    tags = swept(run.doc)
    rows = [
        [
            *(str(r.get(k, "")) for k in tags),
            r["algorithm"],
            str(r["ranks"]),
            format_seconds(r["step_s"], ".3f"),
            format_seconds(r["compute_s"], ".3f"),
            format_seconds(r["comm_s"], ".3f"),
            format_seconds(r["exposed_s"], ".3f"),
            f"{100 * r['comm_fraction']:.1f}%",
            f"{r['efficiency']:.2f}",
        ]
        for r in step["rows"]
    ]
    head = [*tags, "algorithm", "ranks", "step", "compute", "comm", "exposed", "comm %"]
    title = "Training step: " + (
        "each row's (the columns)" if {"workload", "run"} & set(tags) else step["workload"]["spec"]
    )
    sec.items.append(Table(title, [*head, "efficiency"], rows))
