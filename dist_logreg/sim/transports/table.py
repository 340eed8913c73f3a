"""The transport table: one record per transport of the packet engine, read by every module.

Pure (no ns-3): ``simulate --help``, the option parser, the console table and ``report``
read it without the ``packet`` extra. A record names its options class as
``"module:Class"``, imported on demand (:meth:`Transport.options_class`), as the algorithm
table (:mod:`dist_logreg.collective.algorithms`) names the class that runs an algorithm.

The options class is a frozen dataclass whose fields are made with
:func:`dist_logreg.sim.options.option` (each field its flag, reader and default); its
``create(gbl, net)`` builds the transport's C++ object (a ``dlr::Transport``, see
``sim/ns3driver.h``) for one run of :func:`dist_logreg.sim.ns3net.run`, after the run's
configuration was reset and before the network is built; two class attributes size what
it puts on the wire: ``header_bytes`` per packet (payload per packet: ``mtu -
header_bytes``; the wall-time estimate) and ``window_bytes``, the most one connection keeps
queued at its sender (it sizes a host's own NIC queue, which must never drop). The table
imports no transport module, and a transport module needs nothing of the table.

>>> from dist_logreg.sim.transports import table
>>> table.names()
('tcp', 'roce')
>>> table.get("tcp").counters
('retransmissions', 'retransmitted_bytes', 'timeouts')
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass

from dist_logreg.errors import UsageError


@dataclass(frozen=True)
class Transport:
    """One transport: what it takes, brings, counts, and how it is named on screen.

    ``options``: ``"module:Class"``, its typed options (also its ns-3 side: ``create``);
    ``sources``: its C++ files, relative to ``dist_logreg/sim`` (package data), compiled
    once per process after the driver's; ``counters``: what its C++ side counts per
    connection, in the order of ``Counters()`` (each becomes a total in the ``packet``
    block of a simulate.json row, and a key of its ``connections`` entries);
    ``summary``: its part of ``simulate``'s packet
    line, a format string over the packet block; ``label``: its name in a figure's legend,
    a format string over the options block.
    """

    name: str
    help: str
    options: str
    sources: tuple[str, ...]
    counters: tuple[str, ...]
    summary: str
    label: str

    def options_class(self) -> type:
        """The options class (imports its module)."""
        module, _, cls = self.options.partition(":")
        return getattr(importlib.import_module(module), cls)


TCP = Transport(
    name="tcp",
    help="ns-3 TCP sockets, one connection per ordered rank pair",
    options="dist_logreg.sim.transports.tcp:Tcp",
    sources=("transports/tcp.cc",),
    counters=("retransmissions", "retransmitted_bytes", "timeouts"),
    summary="{retransmissions} retransmissions ({timeouts} timeouts)",
    label="{tcp}",
)

ROCE = Transport(
    name="roce",
    help="RoCEv2 queue pairs over UDP: paced, NACK + go-back-N or selective, DCQCN",
    options="dist_logreg.sim.transports.roce:Roce",
    sources=("transports/roce.cc",),
    counters=("retransmitted_packets", "retransmitted_bytes", "timeouts", "nacks", "cnps"),
    summary="{retransmitted_packets} packets resent ({nacks} NACKs, {timeouts} timeouts), "
    "{cnps} CNPs",
    label="roce-{retransmit}-{cc}",
)

#: The transport of ``--transport``'s default.
DEFAULT = TCP

_TABLE: list[Transport] = [TCP, ROCE]


def all_records() -> list[Transport]:
    return list(_TABLE)


def names() -> tuple[str, ...]:
    return tuple(t.name for t in _TABLE)


def find(name: str) -> Transport | None:
    return next((t for t in _TABLE if t.name == name), None)


def get(name: str) -> Transport:
    """The record of ``name``; an unknown name is a usage error naming ``--transport``."""
    found = find(name)
    if found is None:
        raise UsageError(f"--transport: expected one of {', '.join(names())}, got {name!r}")
    return found


def register(record: Transport) -> None:
    """Add a transport (its name, and its option names, must be new)."""
    from dist_logreg.sim.options import flags

    if find(record.name):
        raise ValueError(f"expected a new transport name, got {record.name!r}")
    taken = {k: t.name for t in _TABLE for k in flags(t.options_class())}
    clash = sorted(set(flags(record.options_class())) & set(taken))
    if clash:
        raise ValueError(f"expected new option names for {record.name!r}, got {clash}")
    _TABLE.append(record)


@contextlib.contextmanager
def registered(record: Transport) -> Iterator[Transport]:
    """``register`` for the duration of a ``with`` block (tests)."""
    register(record)
    try:
        yield record
    finally:
        _TABLE.remove(record)


def summary(packet: dict) -> str:
    """A packet block's transport phrase (a block without ``options.transport`` is TCP's)."""
    record = find(packet.get("options", {}).get("transport", DEFAULT.name))
    if record is None:
        return "transport " + str(packet["options"]["transport"])
    return record.summary.format(**packet)


def label(options: dict) -> str:
    """The transport's name in a legend, from an options block (``?`` if unknown)."""
    record = find(options.get("transport", DEFAULT.name))
    try:
        return record.label.format(**options) if record else "?"
    except KeyError:
        return "?"
