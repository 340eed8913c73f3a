"""The report's figures for training runs (matplotlib, Agg canvas, no pyplot state).

Each function takes numbers from :mod:`dist_logreg.report.analysis` and returns a titled
``Figure`` with units on both axes; :func:`save` writes it as PNG. Nothing here loads MPI.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from dist_logreg.units import format_bytes

PHASE_COLOURS = {"data": "#8c8c8c", "compute": "#4c72b0", "comm": "#dd8452", "update": "#55a868"}
#: Above this many steps, step series are drawn as means of equal bins (heatmap: maxima).
MAX_POINTS = 1000
#: Above this many ranks, the traffic matrix carries no per-cell labels (they would not fit).
LABELLED_RANKS = 12


def figure(title: str, width: float = 8.0, height: float = 4.5):
    """A new figure with one axes and its title; ``(fig, ax)``."""
    fig = Figure(figsize=(width, height), dpi=100, layout="tight")
    FigureCanvasAgg(fig)  # the headless raster canvas: no display, no global backend
    ax = fig.subplots()
    ax.set_title(title)
    return fig, ax


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG. Where the tight layout cannot make room for every label (a
    figure of hundreds of series, names or ticks) matplotlib draws it as laid out and warns
    on stderr; the plot stands, so that warning is not printed (no raw warning reaches the
    report's one-line contract)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tight layout not applied", category=UserWarning)
        fig.savefig(path, format="png")
    return path


def time_unit(values) -> tuple[float, str]:
    """A scale and unit that make ``values`` (seconds) readable: ``(1e3, "ms")``."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    top = float(np.max(np.abs(finite))) if finite.size else 0.0
    if top >= 1:
        return 1.0, "s"
    if top >= 1e-3:
        return 1e3, "ms"
    return 1e6, "µs"


def human_bytes(n: float) -> str:
    return format_bytes(n, ".3g")


BYTES_AXIS = FuncFormatter(lambda x, _pos: human_bytes(x))


def bytes_ticks(axis, top: float) -> None:
    """Ticks at multiples of a power of two (8 KiB, 1 MiB, ...), about 5 to 10 of them."""
    if top > 0:
        axis.set_major_locator(MultipleLocator(2 ** max(0, int(np.log2(top / 5)))))
    axis.set_major_formatter(BYTES_AXIS)


def binned(steps: np.ndarray, values: np.ndarray, how=np.nanmean, limit: int = MAX_POINTS):
    """At most ``limit`` points: ``values`` (last axis = steps) reduced over equal step bins."""
    if steps.size <= limit:
        return steps, values, 1
    width = -(-steps.size // limit)
    edges = np.arange(0, steps.size, width)
    reduced = np.stack([how(values[..., i : i + width], axis=-1) for i in edges], axis=-1)
    return steps[edges], reduced, width


def step_time_stack(steps: np.ndarray, phases: np.ndarray, title: str):
    """Stacked data / compute / comm / update time per step (the slowest rank's phases)."""
    x, y, width = binned(steps, phases.T)
    scale, unit = time_unit(y.sum(axis=0))
    fig, ax = figure(title)
    ax.stackplot(
        x,
        y * scale,
        labels=list(PHASE_COLOURS),
        colors=list(PHASE_COLOURS.values()),
        step="post" if x.size < 100 else None,
    )
    ax.set_xlabel("step" + (f" (mean of {width}-step bins)" if width > 1 else ""))
    ax.set_ylabel(f"time per step ({unit})")
    ax.margins(x=0)
    ax.legend(loc="upper right", ncols=4, fontsize="small")
    return fig


def lines(series: dict[str, tuple], title: str, ylabel: str, seconds: bool = False, log=False):
    """One line per label: ``{label: (steps, values)}``, time-scaled when ``seconds``."""
    scale, unit = time_unit(np.concatenate([v for _, v in series.values()])) if seconds else (1, "")
    fig, ax = figure(title)
    widest = 1
    for label, (x, v) in series.items():
        x, v, width = binned(np.asarray(x), np.asarray(v, dtype=np.float64))
        widest = max(widest, width)
        ax.plot(x, v * scale, label=label, linewidth=1.2)
    ax.set_xlabel("step" + (f" (mean of {widest}-step bins)" if widest > 1 else ""))
    ax.set_ylabel(ylabel.format(unit=unit + (", log scale" if log else "")))
    if log:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def latency_cdf(series: dict[str, np.ndarray], title: str):
    """Empirical CDF of allreduce durations, one line per label, log x axis."""
    scale, unit = time_unit(np.concatenate(list(series.values())))
    fig, ax = figure(title)
    for label, values in series.items():
        v = np.sort(values) * scale
        ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", label=label, linewidth=1.2)
    ax.set_xscale("log")
    ax.set_xlabel(f"allreduce call duration ({unit}, log scale)")
    ax.set_ylabel("fraction of calls ≤ x")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", ncols=1 + len(series) // 9)
    return fig


def lateness_heatmap(lat, title: str):
    """Ranks x steps: how long after the first rank each rank reached the allreduce."""
    x, m, width = binned(lat.steps, lat.matrix, how=np.nanmax)
    scale, unit = time_unit(m)
    fig, ax = figure(title, height=max(2.5, min(8.0, 1.5 + 0.3 * lat.ranks.size)))
    extent = (x[0] - 0.5, x[-1] + width - 0.5, lat.ranks.size - 0.5, -0.5) if x.size else None
    im = ax.imshow(m * scale, aspect="auto", interpolation="nearest", cmap="magma", extent=extent)
    ax.set_yticks(
        range(lat.ranks.size), [str(r) for r in lat.ranks] if lat.ranks.size <= 32 else None
    )
    ax.set_xlabel("step" + (f" (max of {width}-step bins)" if width > 1 else ""))
    ax.set_ylabel("rank")
    fig.colorbar(im, ax=ax, label=f"lateness ({unit})")
    return fig


def traffic_heatmap(matrix, title: str):
    """Bytes rank i sent to rank j (from traffic.json), labelled per cell where they fit."""
    m = np.asarray(matrix, dtype=np.float64)
    p = m.shape[0]
    fig, ax = figure(
        title, width=max(5.0, min(10.0, 2 + 0.6 * p)), height=max(4.0, min(9.0, 1.5 + 0.6 * p))
    )
    im = ax.imshow(m, cmap="Blues", interpolation="nearest")
    if p <= LABELLED_RANKS:
        top = m.max() or 1.0
        for i in range(p):
            for j in range(p):
                colour = "white" if m[i, j] > 0.6 * top else "black"
                ax.text(
                    j, i, human_bytes(m[i, j]), ha="center", va="center", fontsize=8, color=colour
                )
    ticks = range(p) if p <= 32 else range(0, p, max(1, p // 16))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("to rank")
    ax.set_ylabel("from rank")
    bar = fig.colorbar(im, ax=ax, label="bytes sent (payload)")
    bytes_ticks(bar.ax.yaxis, m.max())
    return fig


def predicted_vs_measured(series: dict[str, dict], title: str):
    """Per run: measured allreduce time per step (max and min over ranks) and the prediction."""
    every = [v for d in series.values() for k, v in d.items() if k != "steps"]
    scale, unit = time_unit(np.concatenate(every))
    fig, ax = figure(title)
    for i, (label, d) in enumerate(series.items()):
        colour = f"C{i % 10}"  # one colour per run: measured solid, predicted dashed
        x, top, _ = binned(d["steps"], d["max"])
        ax.plot(
            x, top * scale, color=colour, linewidth=1.2, label=f"{label}: measured, max over ranks"
        )
        x, low, _ = binned(d["steps"], d["min"])
        ax.plot(
            x,
            low * scale,
            color=colour,
            linewidth=0.8,
            alpha=0.6,
            label=f"{label}: measured, min over ranks",
        )
        if "predicted" in d:
            x, pred, _ = binned(d["steps"], d["predicted"])
            ax.plot(
                x,
                pred * scale,
                color=colour,
                linestyle="--",
                linewidth=1.5,
                label=f"{label}: predicted",
            )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"allreduce time per step ({unit}, log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


SPAN_KEYS = ("ready_s", "start_s", "end_s")


def step_timeline(step: dict):
    """One step: the compute, each bucket's collective from its start to its end (a tick
    where it was ready), one row per bucket, the first ready at the top."""
    tl, w = step["timeline"], step["workload"]
    spans = tl["buckets"]
    fig, ax = figure(f"One step, {tl['ranks']} ranks, {tl.get('algorithm', '')}: {w['spec']}"[:110])
    step = max(x["end_s"] for x in spans)
    fwd, bwd = w.get("forward_s", 0.0), w.get("backward_s", 0.0)
    ax.axvspan(0, fwd * 1e3, color="0.85", label="forward")
    ax.axvspan(fwd * 1e3, (fwd + bwd) * 1e3, color="0.7", label="backward")
    from matplotlib.collections import LineCollection

    names = list(dict.fromkeys(x["collective"] for x in spans))
    # one artist per collective and one for the ticks, not two per bucket: 65,536 buckets
    # took a minute and 1.8 GB as 131,072 lines (twelfth attack, L-H25)
    row = np.arange(len(spans), dtype=float)
    ms = {k: np.array([x[k] for x in spans], dtype=float) * 1e3 for k in SPAN_KEYS}
    which = np.array([names.index(x["collective"]) for x in spans])
    for j, n in enumerate(names):
        mine = which == j
        segs = np.stack([ms["start_s"][mine], row[mine], ms["end_s"][mine], row[mine]], axis=1)
        ax.add_collection(LineCollection(segs.reshape(-1, 2, 2), colors=f"C{j % 10}", lw=2))
        ax.plot([], [], color=f"C{j % 10}", lw=2, label=n)
    ax.plot(ms["ready_s"], row, "|", color="k", ms=3, linestyle="none")
    ax.set_ylim(len(spans) - 0.5, -0.5)
    ax.set_xlim(0, max(step, fwd + bwd) * 1e3 * 1.02)
    ax.set_xlabel("time in the step (ms)"), ax.set_ylabel("bucket (first ready on top)")
    ax.legend(fontsize=7, loc="upper right")
    return fig
