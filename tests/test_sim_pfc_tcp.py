"""PFC under TCP: the same switch queues pause TCP's senders as they pause RoCE's. An incast
into one port loses nothing with PFC on (and pauses the senders), and drops with PFC off and
a queue smaller than what the senders put in flight."""

from __future__ import annotations

import numpy as np
import pytest

from dist_logreg.sim import text
from dist_logreg.sim.transports.tcp import Tcp
from tests.helpers import star_network
from tests.test_sim_packet import needs_ns3, ns3  # noqa: F401  (the session fixture)
from tests.test_sim_roce import _incast

MiB, RATE = 1 << 20, 1.25e9  # 10 Gbit/s


@pytest.mark.parametrize("tcp", ["cubic", "dctcp"])
@needs_ns3
def test_a_tcp_incast_with_pfc_loses_nothing_and_pauses(tcp, ns3):  # noqa: F811
    senders = 4
    net = star_network(ns3, senders + 1, RATE, 1 << 30, lat=2e-6, pfc=True)
    res = ns3.run(net, _incast(ns3, senders, MiB), Tcp(tcp, 0.005))
    assert res.complete and (res.conn_rx == MiB).all()
    assert res.link_drops.sum() == 0 and res.link_headroom_drops.sum() == 0
    assert res.conn_counts["retransmissions"].sum() == 0
    ups = 2 * np.arange(1, senders + 1)
    assert res.link_pauses[ups].sum() > 0 and res.link_paused_s[ups].sum() > 0
    # the port never holds more than every ingress's xoff + headroom
    assert res.link_peak[1] <= senders * (net.pfc_xoff + ns3.pfc_headroom(net)[ups].max())


@needs_ns3
def test_the_same_incast_without_pfc_drops_at_a_small_queue(ns3):  # noqa: F811
    """Four slow-starting windows (10 segments each at the start, doubling) into a 32 KiB
    port: more than 32 KiB arrive within one round trip, so the port drops; TCP recovers."""
    senders = 4
    net = star_network(ns3, senders + 1, RATE, 32 << 10, lat=2e-6)
    res = ns3.run(net, _incast(ns3, senders, MiB), Tcp("cubic", 0.005))
    assert res.complete and (res.conn_rx == MiB).all()
    assert res.link_drops[1] > 0 and res.link_pauses.sum() == 0
    assert res.conn_counts["retransmissions"].sum() > 0


def test_the_packet_line_names_the_transport_pfc_and_the_loss():
    block = {
        "drops": 0,
        "ecn_marks": 0,
        "lost": 2,
        "retransmissions": 2,
        "timeouts": 0,
        "peak_queue_bytes": 0,
        "wall_s": 0.5,
        "transport_label": "dctcp",
        "options": {"transport": "tcp", "pfc": "on", "loss": 0.001, "loss_link": {}},
    }
    assert text.packet_line(block).endswith("0.5 s wall; tcp dctcp, PFC on, loss 0.1%")
    block["options"] = {
        "transport": "roce",
        "pfc": "off",
        "loss": 0.0,
        "loss_link": {"leaf-up": 0.01},
    }
    block.update(transport_label="roce-gbn-dcqcn", retransmitted_packets=1, nacks=1, cnps=0)
    assert text.packet_line(block).endswith("; roce-gbn-dcqcn, PFC off, loss leaf-up 1%")
    block["options"]["loss_link"] = {}
    assert text.packet_line(block).endswith("; roce-gbn-dcqcn, PFC off, no loss")
