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

from dist_logreg import schema
from dist_logreg.units import format_bytes

#: The bounds of :mod:`~dist_logreg.report.simulate` (``MAX_SECONDS``, B/s).
_SECONDS = schema.number(0.0, 1e6, "a finite number of seconds")
_RATE = schema.number(0.0, 1e18, "a finite number of B/s")
#: A packet row: its queue series, message times, and what the plots label and draw.
_COUNTS = (
    "retransmitted_packets",
    "retransmitted_bytes",
    "timeouts",
    "nacks",
    "cnps",
    "ecn_marks",
    "headroom_drops",
)
_LINK_COUNTS = ("wire_bytes", "drops", "ecn_marks", "lost", "pauses", "headroom_drops")
_BYTES = schema.count(0, 2**40, "a whole number of bytes")
_FRACTION = schema.number(0.0, 1.0, "a fraction")
_TIMER = schema.number(0.0, 1e6, "a finite number of seconds")
_BPS = schema.number(0.0, 1e15, "a rate in B/s")
#: A packet row's options as simulate records them, each within what its flag accepts (a
#: loss of NaN or "x", a queue of 0 or 1e300 were taken: seventeenth attack, T-M5).
OPTIONS = schema.table(
    {},
    {
        **{k: schema.text() for k in ("transport", "pfc", "retransmit", "cc", "tcp")},
        "tcp_timestamps": schema.text(),
        "queue": schema.count(1, 2**32, "a queue in bytes"),
        **{k: _BYTES for k in ("ecn", "ecn_max", "pfc_xoff", "pfc_xon", "pfc_headroom")},
        **{k: _BYTES for k in ("buffer", "dcqcn_bytes")},
        "buffer_alpha": schema.number(0.0, 1e6, "a dynamic-threshold alpha"),
        **{k: _FRACTION for k in ("ecn_pmax", "dcqcn_g")},
        "loss": schema.number(0.0, 1.0, "a loss fraction"),
        "loss_link": schema.mapping(schema.number(0.0, 1.0, "a loss fraction")),
        "link_delay": schema.mapping(_TIMER),
        "queue_samples": schema.count(0, 10**7),
        **{k: _TIMER for k in ("max_wall", "rto", "min_rto", "tsq", "dcqcn_timer")},
        "cnp_interval": _TIMER,
        "ack_every": schema.count(1, 100_000),
        "dcqcn_stages": schema.count(0, 10**6),
        **{k: _BPS for k in ("dcqcn_rai", "dcqcn_rhai", "dcqcn_min_rate")},
    },
)
PACKET = schema.table(
    {
        "queue": schema.table(
            {
                "t_s": schema.items(_SECONDS),
                # a port's queue in bytes: ns-3's queue sizes are 32-bit
                "links": schema.mapping(
                    schema.items(schema.number(0.0, 2.0**32, "a queue in bytes (0 to 2^32)"))
                ),
            }
        ),
        "message_done_s": schema.items(schema.number(-1.0, 1e6)),
    },
    {  # what packetplots reads besides
        "message_start_s": schema.items(_SECONDS),  # a string was a TypeError (T-H6)
        "options": OPTIONS,
        "transport_label": schema.text(),
        "flow_phase_sync_s": _SECONDS,
        "pause_frames": schema.count(0),
        "drops": schema.count(0),  # the counts the report's packet table shows
        "lost": schema.count(0),
        "retransmissions": schema.count(0),
        "peak_queue_bytes": schema.count(0, 2**32),
        "peak_host_nic_bytes": schema.count(0, 2**40),
        # the transports' counts: whole numbers >= 0 (-2 timeouts were taken: L-H13)
        **{k: schema.count(0) for k in _COUNTS},
        "links_detail": schema.items(
            schema.table(
                {"link": schema.text()},
                {
                    "paused_s": schema.optional(_SECONDS),
                    "peak_queue_bytes": schema.count(0, 2**32),
                    **{k: schema.count(0) for k in _LINK_COUNTS},
                },
            )
        ),
        "rates": schema.mapping(
            schema.table({"t_s": schema.items(_SECONDS), "bytes_per_s": schema.items(_RATE)})
        ),
    },
)

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
