"""The packet engine's options: one typed object, parsed once, each default written once.

Pure (no ns-3 here), so ``simulate --help`` works without the ``packet`` extra.
:class:`PacketOptions` holds the engine's own options (the network's: queues, ECN, loss,
delays; the run's: samples, wall-time limit), the transport's name and that transport's own
options (its record's options class, e.g. :class:`~.transports.tcp.Tcp`). Every field is
made with :func:`.options.option`: its default, flag, reader and help in one place.

- :func:`add_packet_arguments` adds the flags (``default=None``: given or not is known);
- :func:`from_args`: the CLI's one parse into a :class:`PacketOptions` for ``Job.options``
  (refusing, with the reason, a packet option given to an engine that would ignore it);
- :func:`parse_options` validates a mapping (keys with or without the ``packet_`` prefix,
  CLI strings or Python values; the library's ``Job(options={...})``).

Example::

    >>> p = argparse.ArgumentParser(); add_packet_arguments(p)
    >>> parse_options(options_from_args(p.parse_args(["--tcp", "dctcp", "--ecn", "65K"])))
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from dist_logreg.errors import UsageError
from dist_logreg.sim import options as o
from dist_logreg.sim.transports import table as transports
from dist_logreg.units import plain_float


def _readers() -> list[str]:
    """The engines whose table record names this module as their option group."""
    from dist_logreg.sim.engine import ENGINES

    return [e.name for e in ENGINES.values() if e.options == __name__]


_PREFIX = "packet_"


def _alpha(value, flag: str) -> float:
    """A dynamic threshold's alpha: a number above 0, at most 64."""
    alpha = value if isinstance(value, float) else plain_float(value)  # ASCII (P-M1)
    if not 0.0 < alpha <= 64.0:
        raise UsageError(f"{flag}: expected a number above 0, at most 64, got {value!r}")
    return alpha


@dataclass(frozen=True)
class PacketOptions:
    """What ``--engine packet`` reads; ``transport_options``: the transport's own."""

    transport: str = o.option(
        transports.DEFAULT.name,
        "--transport",
        lambda value, flag: transports.get(str(value)).name,  # the table as it is now
        "what carries the messages: "
        + "; ".join(f"{t.name}: {t.help}" for t in transports.all_records()),
        show=str,
        metavar="NAME",
    )
    queue: int = o.option(
        1 << 20,
        "--queue",
        o.size,
        "per-port drop-tail buffer in bytes, e.g. 256K",
        show=o.show_size,
        metavar="BYTES",
    )
    ecn: int = o.option(
        0,
        "--ecn",
        o.size,
        "RED/ECN marking at queue length K bytes, DCTCP style, e.g. 65K",
        show=o.show_size,
        metavar="K",
    )
    ecn_max: int = o.option(
        0,
        "--ecn-max",
        o.size,
        "RED: mark with a probability rising from 0 at --ecn to --ecn-pmax at this queue "
        "(DCQCN's Kmax, e.g. 200K); off: a step at --ecn",
        show=o.show_size,
        metavar="KMAX",
    )
    ecn_pmax: float = o.option(
        0.01,
        "--ecn-pmax",
        o.fraction,
        "RED: the marking probability at --ecn-max (DCQCN's Pmax)",
        show=str,
        metavar="P",
    )
    pfc: str = o.option(
        "off",
        "--pfc",
        o.choice(("on", "off")),
        "PFC on every switch ingress: PAUSE the sender above --pfc-xoff bytes waiting, "
        "RESUME at --pfc-xon; lossless unless the headroom overflows",
        show=str,
        choices=("on", "off"),
    )
    pfc_xoff: int = o.option(
        64 << 10,
        "--pfc-xoff",
        o.size,
        "PFC: PAUSE threshold per ingress link, in bytes",
        show=o.show_size,
        metavar="BYTES",
    )
    pfc_xon: int = o.option(
        32 << 10,
        "--pfc-xon",
        o.size,
        "PFC: RESUME threshold per ingress link, in bytes",
        show=o.show_size,
        metavar="BYTES",
    )
    pfc_headroom: int = o.option(
        0,
        "--pfc-headroom",
        o.size,
        "PFC: bytes an ingress may take beyond xoff before it drops; off: 2 x rate x delay "
        "+ 3 packets + (a packet + 64 B) x rate / reverse rate, of each link",
        show=o.show_size,
        metavar="BYTES",
    )
    buffer: int = o.option(
        0,
        "--buffer",
        o.size,
        "a buffer shared by every port of a switch, in bytes, e.g. 12M; a port may hold at "
        "most --buffer-alpha x the part still free (off: each port its --queue)",
        show=o.show_size,
        metavar="BYTES",
    )
    buffer_alpha: float = o.option(
        1.0,
        "--buffer-alpha",
        _alpha,
        "the shared buffer's dynamic threshold: a port alone takes alpha/(1+alpha) of it",
        show=str,
        metavar="ALPHA",
    )
    loss: float = o.option(
        0.0,
        "--loss",
        o.percent,
        "packet loss on every link, percent",
        show=o.show_percent,
        metavar="PCT",
    )
    loss_link: dict = o.option(
        {},
        "--loss-link",
        o.pairs(o.percent),
        "loss on one link class (e.g. leaf-up=0.1) or one link (leaf0>spine1=1); repeatable",
        metavar="LINK=PCT",
        repeat=True,
    )
    link_delay: dict = o.option(
        {},
        "--link-delay",
        o.pairs(o.duration),
        "propagation + switching delay of a link class, e.g. spine-down=5us; repeatable",
        metavar="CLASS=TIME",
        repeat=True,
    )
    queue_samples: int = o.option(
        500,
        "--queue-samples",
        o.count,
        "queue-occupancy samples over the run",
        show=str,
        metavar="N",
    )
    max_wall: float = o.option(
        3600.0,
        "--max-wall",
        o.wall,
        "refuse a packet run, or a sweep of them (every point and seed together), "
        "estimated to take longer than this wall time",
        show=o.show_time,
        metavar="TIME",
    )
    transport_options: object = None  # the transport's options class; None: its defaults

    def __post_init__(self):
        """Checks across fields (each field's own were its reader's), and the transport's."""
        if self.queue < 3000 or (self.ecn and self.ecn >= self.queue):
            raise UsageError(
                f"--queue/--ecn: expected 3000 <= queue bytes and K < queue, got {self.queue}, "
                f"{self.ecn}"
            )
        if self.pfc_xon >= self.pfc_xoff:
            raise UsageError(
                f"--pfc-xon: expected xon < xoff, got {self.pfc_xon} and {self.pfc_xoff}"
            )
        if self.ecn_max and not self.ecn < self.ecn_max < self.queue:
            raise UsageError(
                f"--ecn-max: expected --ecn < KMAX < --queue, got {self.ecn}, {self.ecn_max}, "
                f"{self.queue}"
            )
        cls = transports.get(self.transport).options_class()
        if self.transport_options is None:
            object.__setattr__(self, "transport_options", cls())
        elif type(self.transport_options) is not cls:
            raise ValueError(
                f"expected {self.transport}'s options ({cls.__name__}), "
                f"got {self.transport_options!r}"
            )

    def __getattr__(self, name: str):
        """The transport's own options read through (``opts.tcp``, ``opts.min_rto``)."""
        if name.startswith("__") or name == "transport_options":
            raise AttributeError(name)
        return getattr(self.transport_options, name)


def add_packet_arguments(parser: argparse.ArgumentParser) -> None:
    """The options only ``--engine packet`` reads (refused with another engine)."""
    g = parser.add_argument_group("packet engine (--engine packet, ns-3)")
    o.add_arguments(g, PacketOptions, _PREFIX)
    for t in transports.all_records():
        cls = t.options_class()
        if o.flags(cls):
            group = parser.add_argument_group(f"{t.name} transport (--transport {t.name})")
            o.add_arguments(group, cls, _PREFIX)


def options_from_args(args: argparse.Namespace) -> dict:
    """The packet options given on the command line (``packet_*`` not None), unprefixed."""
    return {
        k.removeprefix(_PREFIX): v
        for k, v in vars(args).items()
        if k.startswith(_PREFIX) and v is not None
    }


def from_args(args: argparse.Namespace, engine: str) -> PacketOptions | None:
    """``Job.options`` of the CLI: parsed once; None for an engine that reads none of them.

    A packet option given explicitly with another engine is refused, naming it: it would
    be dropped silently, and the time printed would not be what was asked for.
    """
    given = options_from_args(args)
    readers = _readers()
    if engine not in readers:
        if given:
            flags = ", ".join(sorted(_flag_of(k) for k in given))
            them = "them" if len(given) > 1 else "it"
            raise UsageError(
                f"{flags}: only --engine {' or '.join(readers)} reads {them}; the {engine} "
                f"engine would ignore {them} (add --engine {readers[0]}, or drop {them})"
            )
        return None
    return parse_options(given)


def _flag_of(key: str) -> str:
    for cls in [PacketOptions] + [t.options_class() for t in transports.all_records()]:
        if key in o.flags(cls):
            return o.flags(cls)[key].flag
    return key


def parse_options(options: dict | PacketOptions) -> PacketOptions:
    """Validate ``Job.options`` (CLI strings or Python values) into :class:`PacketOptions`."""
    if isinstance(options, PacketOptions):
        return options
    given = {k.removeprefix(_PREFIX): v for k, v in options.items() if v is not None}
    record = transports.get(str(given.get("transport", transports.DEFAULT.name)))
    own = record.options_class()
    known = set(o.flags(PacketOptions)) | set(o.flags(own))
    unknown = sorted(set(given) - known)
    others = [k for k in unknown if _flag_of(k) != k]
    if others:
        raise UsageError(
            f"{_flag_of(others[0])}: not an option of --transport {record.name} "
            f"(its own: {', '.join(f.flag for f in o.flags(own).values()) or 'none'})"
        )
    if unknown:
        raise UsageError(f"packet options: expected keys among {sorted(known)}, got {unknown}")
    _unread(given)
    opts = PacketOptions(
        **o.read(PacketOptions, given), transport_options=own(**o.read(own, given))
    )
    _check_buffer(opts)
    return opts


#: The options read only beside another one switched on: ``{key: the one it tunes}``.
_TUNES = {
    "buffer_alpha": "buffer",
    "pfc_xoff": "pfc",
    "pfc_xon": "pfc",
    "pfc_headroom": "pfc",
    "ecn_max": "ecn",
    "ecn_pmax": "ecn_max",
}
#: How each of those is switched on, as the message says it.
_SWITCHES = {
    "buffer": "--buffer BYTES",
    "pfc": "--pfc on",
    "ecn": "--ecn K",
    "ecn_max": "--ecn-max KMAX",
}
#: The least a port must hold whatever the MTU (as ``--queue``): two full packets at MTU
#: 1500; the packet engine holds it to two packets of the fabric's own MTU before ns-3
#: (:func:`dist_logreg.sim.packet_floor.check_port_bytes`).
MIN_PORT_BYTES = 3000


def _unread(given: dict) -> None:
    """``UsageError`` for an option given where it has no effect (the option it tunes is
    off): it was accepted silently, or refused with a message about another option."""
    on = {
        "buffer": o.size(given.get("buffer"), "--buffer") > 0,
        "pfc": str(given.get("pfc", "off")).strip().lower() == "on",
        "ecn": o.size(given.get("ecn"), "--ecn") > 0,
        "ecn_max": o.size(given.get("ecn_max"), "--ecn-max") > 0,
    }
    for key, tuned in _TUNES.items():
        if key in given and not on[tuned]:
            switch = _SWITCHES[tuned]
            raise UsageError(f"{_flag_of(key)}: only read with {switch}; drop it, or add {switch}")
    dcqcn = [k for k in given if k.startswith("dcqcn_") or k == "cnp_interval"]
    if dcqcn and str(given.get("cc", "dcqcn")).strip().lower() == "none":  # ignored (W-M4)
        raise UsageError(
            f"{_flag_of(dcqcn[0])}: only read with --cc dcqcn; drop it, or drop --cc none"
        )
    if "pfc_xoff" in given and "pfc_xon" not in given:  # the default xon, not given
        xon = {f.name: f.default for f in dataclasses.fields(PacketOptions)}["pfc_xon"]
        xoff = o.size(given["pfc_xoff"], "--pfc-xoff")
        if xoff <= xon:
            raise UsageError(
                f"--pfc-xoff: expected more than --pfc-xon's default {xon >> 10}K (or give "
                f"--pfc-xon below it), got {xoff}"
            )


def _check_buffer(opts: PacketOptions) -> None:
    """A shared buffer from which a port alone cannot take two full packets drops every
    packet: refused before ns-3 (it ran 24 s, then blamed loss)."""
    check_buffer_share(
        opts, MIN_PORT_BYTES, "as --queue: two full packets at MTU 1500, more at a larger MTU"
    )


def check_buffer_share(opts: PacketOptions, need: int, why: str) -> None:
    """``UsageError`` unless a port alone may take ``need`` bytes of ``--buffer`` (its share:
    --buffer-alpha / (1 + alpha)); ``why``: what ``need`` is, for the message."""
    if not opts.buffer:
        return
    share = opts.buffer_alpha / (1 + opts.buffer_alpha)
    least = -(-need // share) if share else float("inf")
    if opts.buffer < least:
        raise UsageError(
            f"--buffer: expected 0 (off: each port its --queue) or at least {least:.0f} bytes "
            f"(a port alone takes --buffer-alpha/(1+alpha) = {share:g} of it, and must hold "
            f"{need} bytes, {why}), got {opts.buffer}"
        )


def vars_of(opts: PacketOptions) -> dict:
    """The options as one flat mapping (the ``options`` of a simulate.json packet block)."""
    out = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    inner = out.pop("transport_options")
    out.update({f.name: getattr(inner, f.name) for f in dataclasses.fields(inner)})
    return out
