"""Figures of a packet-engine simulate.json: queues and QP rates over time, pauses, messages.

``draw(doc, out) -> [Path]`` reads the ``packet`` block of every result row
(``simulate --engine packet --out DIR``) and writes ``packet-queues.png`` (the busiest
ports' queue in KiB against time, one panel per row) and ``packet-messages.png`` (the CDF
of message completion times, one curve per row), and where a row has them
``packet-pauses.png`` (PFC: the time each link's sender stood paused, the most paused
links) and ``packet-rates.png`` (the rate of a few queue pairs against time: RoCE with
DCQCN, one panel per row). Rows without a ``packet`` block are
skipped; nothing is written when no row has one.

Example::

    >>> draw(json.loads(Path("sim/simulate.json").read_text()), Path("report"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dist_logreg.units import format_bytes

MAX_PANELS = 6
MAX_LINES = 4


def packet_rows(doc: dict) -> list:
    return [r for r in doc.get("results", []) if isinstance(r.get("packet"), dict)]


def _label(r: dict) -> str:
    o = r["packet"].get("options", {})
    ecn = f" ecn {o['ecn'] // 1024}K" if o.get("ecn") else ""
    # the transport's own name for itself (TCP: its congestion control); documents written
    # before transports were a table have none, and were all TCP's
    name = r["packet"].get("transport_label") or o.get("tcp", "?")
    return f"{r['algorithm']} {format_bytes(r['bytes'], 'g')}, {name}{ecn}"


#: Each figure's title and caption in the report.
TITLES = {
    "packet-queues.png": ("Packet engine: queues", "the busiest ports' queue against time"),
    "packet-messages.png": ("Packet engine: messages", "CDF of message completion times"),
    "packet-pauses.png": ("Packet engine: PFC pauses", "time each link's sender stood paused"),
    "packet-rates.png": ("Packet engine: queue-pair rates", "a few QPs' rate against time"),
}


def items(b, doc: dict, prefix: str = "") -> list:
    """The report's images of the packet rows (drawn into ``b.out``, linked in report.md
    and report.html), then a note of each row's counts; [] without packet rows."""
    from dist_logreg.report.document import Image, Table

    out = []
    for path in draw(doc, b.out, prefix):
        b.files.append(path)
        title, caption = TITLES[path.name[len(prefix) :]]
        out.append(Image(path.name, title, caption))
    if out:
        keys = ("drops", "lost", "retransmissions", "pause_frames", "peak_queue_bytes")
        rows = [
            [_label(r), str(r["ranks"])] + [str(_count(r["packet"], k)) for k in keys]
            for r in packet_rows(doc)
        ]
        head = [
            "row",
            "ranks",
            "drops",
            "lost",
            "retransmitted packets",
            "PAUSEs",
            "peak queue (B)",
        ]
        out.append(Table("Packet engine: counts per row", head, rows))
    return out


def _count(packet: dict, key: str):
    """A row's count; retransmissions are TCP's segments or RoCE's packets (a RoCE row
    showed "-", read as none, beside 3 retransmitted packets: twelfth attack, L-M3)."""
    if key == "retransmissions" and key not in packet:
        key = "retransmitted_packets"
    return packet.get(key, "-")


def draw(doc: dict, out: Path, prefix: str = "") -> list:
    """Write the two figures into ``out``; returns their paths (empty without packet rows)."""
    rows = packet_rows(doc)
    if not rows:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    shown = rows[:MAX_PANELS]
    fig, axes = plt.subplots(len(shown), 1, figsize=(7, 2.2 * len(shown)), squeeze=False)
    for ax, r in zip(axes[:, 0], shown, strict=True):
        q = r["packet"]["queue"]
        t = np.asarray(q["t_s"]) * 1e3
        for name, series in list(q["links"].items())[:MAX_LINES]:
            ax.plot(t, np.asarray(series) / 1024, label=name, lw=1)
        ax.set_title(_label(r), fontsize=9)
        ax.set_ylabel("queue (KiB)")
        if q["links"]:
            ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("simulated time (ms)")
    fig.tight_layout()
    paths = [out / f"{prefix}packet-queues.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        done = np.sort(np.asarray(r["packet"]["message_done_s"])) * 1e3
        ax.step(
            done, np.arange(1, done.size + 1) / max(done.size, 1), where="post", label=_label(r)
        )
    ax.set_xlabel("message completion time (ms from the collective's start)")
    ax.set_ylabel("fraction of messages")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / f"{prefix}packet-messages.png")
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths + _pauses(rows, out, plt, prefix) + _rates(rows, out, plt, prefix)


def _pauses(rows: list, out: Path, plt, prefix: str = "") -> list:
    """PFC: time paused per link (the most paused), one bar group per row; [] if none."""
    rows = [r for r in rows if r["packet"].get("pause_frames")][:MAX_PANELS]
    if not rows:
        return []
    fig, axes = plt.subplots(len(rows), 1, figsize=(7, 2.2 * len(rows)), squeeze=False)
    for ax, r in zip(axes[:, 0], rows, strict=True):
        links = [d for d in r["packet"]["links_detail"] if d.get("paused_s")]
        links = sorted(links, key=lambda d: -d["paused_s"])[:12]
        ax.bar([d["link"] for d in links], [d["paused_s"] * 1e3 for d in links])
        ax.set_title(_label(r) + f", {r['packet']['pause_frames']} PAUSEs", fontsize=9)
        ax.set_ylabel("sender paused (ms)")
        ax.tick_params(axis="x", labelsize=6, rotation=45)
    fig.tight_layout()
    path = out / f"{prefix}packet-pauses.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def _rates(rows: list, out: Path, plt, prefix: str = "") -> list:
    """Queue-pair rates (e.g. DCQCN's) against time, a few QPs per row; [] if none."""
    rows = [r for r in rows if r["packet"].get("rates")][:MAX_PANELS]
    if not rows:
        return []
    fig, axes = plt.subplots(len(rows), 1, figsize=(7, 2.2 * len(rows)), squeeze=False)
    for ax, r in zip(axes[:, 0], rows, strict=True):
        for qp, series in list(r["packet"]["rates"].items())[:MAX_LINES]:
            t = np.asarray(series["t_s"]) * 1e3
            ax.step(t, np.asarray(series["bytes_per_s"]) * 8 / 1e9, where="post", label=qp)
        ax.set_title(_label(r), fontsize=9)
        ax.set_ylabel("QP rate (Gbit/s)")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("simulated time (ms)")
    fig.tight_layout()
    path = out / f"{prefix}packet-rates.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
