"""TCP in the packet engine: its options, and its ns-3 side (``tcp.cc``, ``dlr::TcpTransport``).

:class:`Tcp` is both the typed options of ``--transport tcp`` (``--tcp``, ``--min-rto``,
``--tsq``, ``--tcp-timestamps``)
and what builds the run's ``dlr::TcpTransport``: the congestion control's ns-3 type, the
segment (``mtu`` less its ``header_bytes``), the socket buffers (its ``window_bytes``),
the minimum RTO, ECN negotiated when any port of the network marks, and TCP small queues
(the limit on what one connection keeps in its host's NIC queue).

Example::

    >>> res = ns3net.run(net, transfers, Tcp("dctcp", min_rto=0.005))   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dist_logreg.sim.options import choice, duration, option, show_time

#: ``--tcp`` names and their ns-3 types.
TCP_TYPES = {
    "cubic": "ns3::TcpCubic",
    "dctcp": "ns3::TcpDctcp",
    "bbr": "ns3::TcpBbr",
    "newreno": "ns3::TcpNewReno",
}


#: ``--tcp-timestamps``' default, and the bytes of IPv4 and TCP headers with each value
TIMESTAMPS = "off"
HEADER_BYTES = {"on": 52, "off": 40}


@dataclass(frozen=True)
class Tcp:
    """TCP settings shared by every connection of a run."""

    #: IPv4 20 + TCP 20 (+ timestamps 12) bytes: the segment is ``mtu - header_bytes``; the
    #: class's is the default's, an instance's that of its own ``tcp_timestamps``
    header_bytes: ClassVar[int] = HEADER_BYTES[TIMESTAMPS]
    #: the socket send buffer (the receive buffer is 4x): bounds what a connection queues
    window_bytes: ClassVar[int] = 2 << 20

    tcp: str = option(
        "cubic",
        "--tcp",
        choice(tuple(TCP_TYPES)),
        "TCP congestion control",
        show=str,
        choices=tuple(TCP_TYPES),
    )
    min_rto: float = option(
        0.2,
        "--min-rto",
        duration,
        "TCP minimum retransmission timeout",
        show=show_time,
        metavar="TIME",
    )
    tsq: float = option(
        1e-3,
        "--tsq",
        duration,
        "TCP small queues: a connection keeps at most max(2 packets, this long at its pacing "
        "rate) in its host's NIC queue, as Linux does (0: no limit)",
        show=show_time,
        metavar="TIME",
    )
    tcp_timestamps: str = option(
        TIMESTAMPS,
        "--tcp-timestamps",
        choice(("on", "off")),
        "TCP's timestamp option on every segment, as Linux sends it (off: 12 bytes more "
        "payload per packet, RTT from ACK times; results within 0.3 percent of on's and ns-3 "
        "a seventh to a fifth faster)",
        show=str,
        choices=("on", "off"),
    )

    def __post_init__(self):
        if self.tcp_timestamps in HEADER_BYTES:  # else the reader refuses it (options.read)
            object.__setattr__(self, "header_bytes", HEADER_BYTES[self.tcp_timestamps])

    def create(self, gbl, net):
        """The run's ``dlr::TcpTransport`` (sets ns-3's TCP defaults: after ``dlr.Reset``)."""
        ecn = self.tcp == "dctcp"
        return make(
            gbl,
            net,
            TCP_TYPES[self.tcp],
            self.min_rto,
            ecn=ecn,
            tsq=self.tsq,
            timestamps=self.tcp_timestamps == "on",
        )


def make(
    gbl,
    net,
    ns3_type: str,
    min_rto: float,
    ecn: bool = False,
    tsq: float = 0.0,
    timestamps: bool = True,
):
    """A ``dlr::TcpTransport`` of congestion control ``ns3_type`` (e.g. ``ns3::TcpVegas``).

    ECN is on when ``ecn`` or when any port of ``net`` marks (``net.ecn_k > 0``); ``tsq``:
    TCP small queues' time (s, 0: a socket may fill its host's NIC queue); ``timestamps``:
    the timestamp option on every segment (off: the segment is 12 bytes longer).
    """
    header = HEADER_BYTES["on" if timestamps else "off"]
    return gbl.dlr.TcpTransport(
        ns3_type,
        int(net.mtu - header),
        Tcp.window_bytes,
        float(min_rto),
        bool(ecn or np.any(np.asarray(net.ecn_k) > 0)),
        float(tsq),
        int(net.mtu),
        bool(timestamps),
    )
