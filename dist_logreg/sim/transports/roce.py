"""RoCEv2 in the packet engine: its options, and its ns-3 side (``roce.cc``).

:class:`Roce` is both the typed options of ``--transport roce`` and what builds the run's
``dlr::RoceTransport``: one queue pair per connection over UDP, packets paced at the QP's
rate (line rate at start, no slow start), PSNs, a NACK on a gap, go-back-N
(``--retransmit gbn``) or selective repeat (``selective``, as IRN), a timeout for a lost
tail, and DCQCN (``--cc dcqcn``) reacting to ECN marks (the switch ports' ``--ecn``,
``--ecn-max``, ``--ecn-pmax``).

DCQCN's defaults are the DCQCN paper's (Zhu et al., "Congestion Control for Large-Scale
RDMA Deployments", SIGCOMM 2015): g = 1/256, a 55 us rate-increase timer, a 10 MB byte
counter, F = 5 fast-recovery stages, R_AI = 40 Mbit/s, CNPs at most every 50 us per QP;
R_HAI (not given there) is 10 R_AI, the minimum rate 100 Mbit/s (HPCC's ns-3 default).

Example::

    >>> res = ns3net.run(net, transfers, Roce(retransmit="selective"))   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from dist_logreg.sim.options import (
    bit_rate,
    choice,
    count,
    count_from_one,
    duration,
    fraction,
    option,
    show_rate,
    show_size,
    show_time,
    size,
    timer,
)


@dataclass(frozen=True)
class Roce:
    """RoCEv2 settings shared by every queue pair of a run."""

    #: IPv4 20 + UDP 8 + BTH 12 + ICRC 4: the payload per packet is ``mtu - 44``
    header_bytes: ClassVar[int] = 44
    #: a host's NIC serves its QPs one packet at a time: its own queue stays small
    window_bytes: ClassVar[int] = 64 << 10

    retransmit: str = option(
        "gbn",
        "--retransmit",
        choice(("gbn", "selective")),
        "RoCE loss recovery: go-back-N from the NACKed PSN, or only the PSNs lost (IRN)",
        show=str,
        choices=("gbn", "selective"),
    )
    cc: str = option(
        "dcqcn",
        "--cc",
        choice(("dcqcn", "none")),
        "RoCE congestion control (DCQCN reacts to the ports' ECN marks: --ecn)",
        show=str,
        choices=("dcqcn", "none"),
    )
    rto: float = option(
        1e-3,
        "--rto",
        timer,
        "RoCE retransmission timeout, for a lost tail",
        show=show_time,
        metavar="TIME",
    )
    ack_every: int = option(
        16,
        "--ack-every",
        count_from_one,
        "RoCE: the receiver ACKs every N packets",
        show=str,
        metavar="N",
    )
    dcqcn_g: float = option(
        1 / 256, "--dcqcn-g", fraction, "DCQCN: alpha's gain g", show=str, metavar="G"
    )
    dcqcn_timer: float = option(
        55e-6,
        "--dcqcn-timer",
        timer,
        "DCQCN: rate-increase timer (and alpha's decay period)",
        show=show_time,
        metavar="TIME",
    )
    dcqcn_bytes: int = option(
        10 << 20,
        "--dcqcn-bytes",
        size,
        "DCQCN: byte counter of a rate-increase stage",
        show=show_size,
        metavar="BYTES",
    )
    dcqcn_stages: int = option(
        5, "--dcqcn-stages", count, "DCQCN: fast-recovery stages F", show=str, metavar="F"
    )
    dcqcn_rai: float = option(
        40e6, "--dcqcn-rai", bit_rate, "DCQCN: additive increase", show=show_rate, metavar="RATE"
    )
    dcqcn_rhai: float = option(
        400e6, "--dcqcn-rhai", bit_rate, "DCQCN: hyper increase", show=show_rate, metavar="RATE"
    )
    dcqcn_min_rate: float = option(
        100e6,
        "--dcqcn-min-rate",
        bit_rate,
        "DCQCN: the lowest rate a cut reaches",
        show=show_rate,
        metavar="RATE",
    )
    cnp_interval: float = option(
        50e-6,
        "--cnp-interval",
        duration,
        "DCQCN: at most one CNP per QP per interval",
        show=show_time,
        metavar="TIME",
    )
    #: test hook, no flag: ((connection, PSN), ...) lost on the wire the first time sent
    drop_once: tuple = field(default=())

    def create(self, gbl, net):
        """The run's ``dlr::RoceTransport``."""
        cc = gbl.dlr.Dcqcn()
        cc.on = self.cc == "dcqcn"
        cc.g, cc.timer = float(self.dcqcn_g), float(self.dcqcn_timer)
        cc.rai, cc.rhai = self.dcqcn_rai / 8, self.dcqcn_rhai / 8
        cc.minRate, cc.cnpInterval = self.dcqcn_min_rate / 8, float(self.cnp_interval)
        cc.byteCounter, cc.stages = int(self.dcqcn_bytes), int(self.dcqcn_stages)
        tr = gbl.dlr.RoceTransport(
            int(net.mtu - self.header_bytes),
            self.retransmit == "selective",
            float(self.rto),
            int(self.ack_every),
            cc,
        )
        for conn, psn in self.drop_once:
            tr.DropOnce(int(conn), int(psn))
        return tr
