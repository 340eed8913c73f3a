"""The packet engine's options: ``add_packet_arguments(parser)`` and their parsing.

Pure (no ns-3 here), so ``simulate --help`` works without the ``packet`` extra. The CLI
hands the ``packet_*`` arguments (:func:`options_from_args`) to ``Job.options``;
:func:`parse_options` validates that mapping (keys with or without the ``packet_`` prefix,
CLI strings or Python values) into a :class:`PacketOptions`.

Example::

    >>> p = argparse.ArgumentParser(); add_packet_arguments(p)
    >>> parse_options(options_from_args(p.parse_args(["--tcp", "dctcp", "--ecn", "65K"])))
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from dist_logreg.errors import UsageError
from dist_logreg.sim.spec import seconds
from dist_logreg.units import parse_bytes

TCPS = ("cubic", "dctcp", "bbr", "newreno")
KEYS = ("tcp", "queue", "ecn", "loss", "loss_link", "link_delay", "min_rto", "queue_samples",
        "max_wall")  # fmt: skip


@dataclass(frozen=True)
class PacketOptions:
    tcp: str = "cubic"
    queue: int = 1 << 20  # per-port drop-tail buffer, bytes
    ecn: int = 0  # RED marking threshold K, bytes (0: no ECN)
    loss: float = 0.0  # probability a packet is lost on every link (0..1)
    loss_link: dict = field(default_factory=dict)  # link name or class -> probability
    link_delay: dict = field(default_factory=dict)  # link class -> s
    min_rto: float = 0.2  # s (Linux's default)
    queue_samples: int = 500  # queue occupancy samples over the run
    max_wall: float = 3600.0  # refuse a run estimated to take longer (s of wall time)


def add_packet_arguments(parser: argparse.ArgumentParser) -> None:
    """The options only ``--engine packet`` reads (ignored by the flow engine)."""
    g = parser.add_argument_group("packet engine (--engine packet, ns-3)")
    g.add_argument(
        "--tcp",
        dest="packet_tcp",
        choices=TCPS,
        default="cubic",
        help="TCP congestion control (default cubic)",
    )
    g.add_argument(
        "--queue",
        dest="packet_queue",
        default="1M",
        help="per-port drop-tail buffer in bytes, e.g. 256K (default 1M)",
    )
    g.add_argument(
        "--ecn",
        dest="packet_ecn",
        default=None,
        metavar="K",
        help="RED/ECN marking at queue length K bytes, DCTCP style, e.g. 65K (default off)",
    )
    g.add_argument(
        "--loss",
        dest="packet_loss",
        default="0",
        metavar="PCT",
        help="packet loss on every link, percent (default 0)",
    )
    g.add_argument(
        "--loss-link",
        dest="packet_loss_link",
        action="append",
        default=[],
        metavar="LINK=PCT",
        help="loss on one link class (e.g. leaf-up=0.1) or one link (leaf0>spine1=1); repeatable",
    )
    g.add_argument(
        "--link-delay",
        dest="packet_link_delay",
        action="append",
        default=[],
        metavar="CLASS=TIME",
        help="propagation + switching delay of a link class, e.g. spine-down=5us; repeatable",
    )
    g.add_argument(
        "--min-rto",
        dest="packet_min_rto",
        default="200ms",
        help="TCP minimum retransmission timeout (default 200ms)",
    )
    g.add_argument(
        "--queue-samples",
        dest="packet_queue_samples",
        type=int,
        default=500,
        help="queue-occupancy samples over the run (default 500)",
    )
    g.add_argument(
        "--max-wall",
        dest="packet_max_wall",
        default="1h",
        help="refuse a packet run estimated to take longer than this wall time (default 1h)",
    )


def options_from_args(args: argparse.Namespace) -> dict:
    """The packet options of parsed CLI arguments (``packet_*``), for :func:`parse_options`."""
    return {k: v for k, v in vars(args).items() if k.startswith("packet_") and v is not None}


def _pct(text, key: str) -> float:
    try:
        value = float(str(text).strip().rstrip("%"))
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 100.0:
        raise UsageError(f"--{key}: expected a loss in percent, 0 <= PCT < 100, got {text!r}")
    return value / 100.0


def _pairs(items, key: str) -> list:
    out = []
    for item in [items] if isinstance(items, str) else list(items):
        name, sep, value = str(item).rpartition("=")
        if not sep or not name:
            raise UsageError(f"--{key}: expected NAME=VALUE, got {item!r}")
        out.append((name.strip(), value.strip()))
    return out


def _size(value, key: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return parse_bytes(str(value))
    except UsageError as exc:
        raise UsageError(f"--{key}: {exc}") from None


def _wall(value) -> float:
    t = str(value).strip().lower()
    if t.endswith("h") and t[:-1].replace(".", "", 1).isdigit():
        return float(t[:-1]) * 3600.0
    if t.endswith("min") and t[:-3].replace(".", "", 1).isdigit():
        return float(t[:-3]) * 60.0
    return seconds(t, "--max-wall")


def parse_options(options: dict) -> PacketOptions:
    """Validate ``Job.options`` (CLI strings or Python values) into :class:`PacketOptions`."""
    o = {k.removeprefix("packet_"): v for k, v in options.items() if v is not None}
    unknown = sorted(set(o) - set(KEYS))
    if unknown:
        raise UsageError(f"packet options: expected keys among {list(KEYS)}, got {unknown}")
    tcp = str(o.get("tcp", "cubic"))
    if tcp not in TCPS:
        raise UsageError(f"--tcp: expected one of {', '.join(TCPS)}, got {tcp!r}")
    queue = _size(o.get("queue", 1 << 20), "queue")
    ecn = _size(o.get("ecn") or 0, "ecn")
    if queue < 3000 or (ecn and ecn >= queue):
        raise UsageError(
            f"--queue/--ecn: expected 3000 <= queue bytes and K < queue, got {queue}, {ecn}"
        )
    loss = o.get("loss", 0.0)
    loss = float(loss) if isinstance(loss, float) else _pct(loss, "loss")
    loss_link = o.get("loss_link", {})
    if not isinstance(loss_link, dict):
        loss_link = {k: _pct(v, "loss-link") for k, v in _pairs(loss_link, "loss-link")}
    delay = o.get("link_delay", {})
    if not isinstance(delay, dict):
        delay = {k: seconds(v, f"--link-delay {k}") for k, v in _pairs(delay, "link-delay")}
    rto = o.get("min_rto", 0.2)
    rto = float(rto) if isinstance(rto, float) else seconds(rto, "--min-rto")
    samples = int(o.get("queue_samples", 500))
    if samples < 0:
        raise UsageError(f"--queue-samples: expected >= 0, got {samples}")
    wall = o.get("max_wall", 3600.0)
    wall = float(wall) if isinstance(wall, float) else _wall(wall)
    return PacketOptions(tcp, queue, ecn, loss, loss_link, delay, rto, samples, wall)
