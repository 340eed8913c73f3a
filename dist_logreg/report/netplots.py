"""The report's figures for bench sweeps and the fabric (matplotlib, Agg, no MPI).

Bench: time per call and busbw against message size, one line per run and algorithm, the
model's prediction dashed where the bench JSON has one, the link ceiling where known.
Fabric (``links.json`` / ``flows.json`` of a run on an emulated fabric): bytes per link,
and which spine carried each rank pair's flows.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from dist_logreg.report.plots import BYTES_AXIS, bytes_ticks, figure, human_bytes, time_unit

MARKERS = "os^Dv<>p*h"


def _size_axis(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(BYTES_AXIS)
    ax.set_xlabel("message size (payload bytes, log scale)")
    ax.grid(alpha=0.3, which="both")


def _lines(ax, runs: dict[str, dict], key: str, scale: float = 1.0) -> None:
    """One line per (run, algorithm): colour per algorithm, marker per run; predictions dashed."""
    algorithms = sorted({a for series in runs.values() for a in series})
    for k, (tag, series) in enumerate(runs.items()):
        for alg, d in series.items():
            colour = f"C{algorithms.index(alg) % 10}"
            label = alg if len(runs) == 1 else f"{tag}: {alg}"
            ax.plot(
                d["bytes"],
                d[key] * scale,
                color=colour,
                marker=MARKERS[k % len(MARKERS)],
                markersize=4,
                linewidth=1.2,
                label=label,
            )
            if key == "time_s":
                _error_bars(ax, d, scale, colour)
            pred = d["predicted_s"]
            if key in ("time_s", "busbw") and np.isfinite(pred).any():
                value = pred if key == "time_s" else d["busbw"] * d["time_s"] / pred
                ax.plot(
                    d["bytes"],
                    value * scale,
                    color=colour,
                    linestyle="--",
                    linewidth=1.0,
                    label=f"{label} (predicted)",
                )


def _error_bars(ax, d: dict, scale: float, colour: str) -> None:
    """The 95% interval of the mean (``--repeats``), else the p50..p99 range, as bars."""
    ci, p50, p99 = (d.get(k) for k in ("time_s_ci95", "time_s_p50", "time_s_p99"))
    if ci is not None and np.isfinite(ci).any():
        yerr = np.nan_to_num(ci) * scale
    elif p50 is not None and np.isfinite(p99).any():
        low = np.clip(d["time_s"] - np.nan_to_num(p50, nan=d["time_s"]), 0, None)
        high = np.clip(np.nan_to_num(p99, nan=d["time_s"]) - d["time_s"], 0, None)
        yerr = np.vstack([np.minimum(low, d["time_s"] * 0.999), high]) * scale
    else:
        return
    ax.errorbar(
        d["bytes"],
        d["time_s"] * scale,
        yerr=yerr,
        fmt="none",
        ecolor=colour,
        elinewidth=0.8,
        capsize=2,
        alpha=0.7,
    )


def bench_latency(runs: dict[str, dict], title: str):
    """Mean time per call against size, log-log; ``runs`` is ``{tag: bench_series(run)}``."""
    every = np.concatenate([d["time_s"] for s in runs.values() for d in s.values()])
    scale, unit = time_unit(every)
    fig, ax = figure(title)
    _lines(ax, runs, "time_s", scale)
    _size_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel(f"time per call ({unit}, avg; bars: 95% CI or p50..p99; log scale)")
    ax.legend(fontsize="small", ncols=2 if sum(map(len, runs.values())) > 6 else 1)
    return fig


def bench_busbw(runs: dict[str, dict], ceilings: list[tuple[str, float]], title: str):
    """busbw against size; each known link ceiling as a horizontal dotted line."""
    fig, ax = figure(title)
    _lines(ax, runs, "busbw")
    for i, (label, gbps) in enumerate(ceilings):
        ax.axhline(gbps, color="black", linestyle=":", linewidth=1.2 - 0.3 * i, label=label)
    _size_axis(ax)
    ax.set_ylabel("busbw (GB/s) = algbw x 2(p-1)/p")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", ncols=2 if sum(map(len, runs.values())) > 6 else 1)
    return fig


def link_bytes(links: list[dict], title: str):
    """Bars: bytes that crossed each link, side by side per direction where given."""
    names = list(dict.fromkeys(str(link["name"]) for link in links))
    directions = list(dict.fromkeys(str(link.get("direction", "")) for link in links))
    width = 0.8 / len(directions)
    fig, ax = figure(title, width=max(6.0, min(14.0, 2 + 0.5 * len(names))))
    for k, direction in enumerate(directions):
        heights = np.zeros(len(names))
        for link in links:
            if str(link.get("direction", "")) == direction:
                heights[names.index(str(link["name"]))] += float(link["bytes"])
        x = np.arange(len(names)) + (k - (len(directions) - 1) / 2) * width
        ax.bar(x, heights, width=width, label=direction or None, color=f"C{k % 10}")
    rotate = len(names) > 6
    ax.set_xticks(
        range(len(names)), names, rotation=30 * rotate, ha="right" if rotate else "center"
    )
    ax.set_xlabel("link")
    ax.set_ylabel("bytes carried")
    bytes_ticks(ax.yaxis, max(float(link["bytes"]) for link in links))
    if any(directions):
        ax.legend(title="direction", fontsize="small")
    ax.grid(alpha=0.3, axis="y")
    return fig


def flow_spine_map(flows: list[dict], title: str):
    """Source host x destination host, coloured by the spine that carried the most bytes.

    ``flows``: one flow map of ``flows.json`` (:mod:`dist_logreg.ops.cluster.fabricfiles`);
    flows under one leaf are ``(same leaf)``.
    """

    def key(host: str):
        return (len(host), host)  # h2 before h10

    hosts = sorted({str(f[k]) for f in flows for k in ("src", "dst")}, key=key)
    spines = sorted({str(f["spine"] or "(same leaf)") for f in flows})
    per_pair: dict[tuple[int, int], dict[str, float]] = {}
    for f in flows:
        pair = per_pair.setdefault((hosts.index(str(f["src"])), hosts.index(str(f["dst"]))), {})
        spine = str(f["spine"] or "(same leaf)")
        pair[spine] = pair.get(spine, 0.0) + float(f["bytes"])
    p = len(hosts)
    grid = np.full((p, p), np.nan)
    for (i, j), by_spine in per_pair.items():
        grid[i, j] = spines.index(max(by_spine, key=by_spine.get))
    fig, ax = figure(title, width=max(5.0, min(10.0, 2 + 0.6 * p)), height=max(4.0, 1.5 + 0.6 * p))
    cmap = ListedColormap([f"C{k % 10}" for k in range(len(spines))])
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(spines) - 0.5, interpolation="nearest")
    if p <= 12:
        for (i, j), by_spine in per_pair.items():
            text = "\n".join(f"{s} {human_bytes(b)}" for s, b in sorted(by_spine.items()))
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    handles = [Patch(color=f"C{k % 10}", label=spine) for k, spine in enumerate(spines)]
    ax.legend(
        handles=handles, title="spine", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1)
    )
    ax.set_xlabel("destination host")
    ax.set_ylabel("source host")
    ax.set_xticks(range(p), hosts)
    ax.set_yticks(range(p), hosts)
    return fig
