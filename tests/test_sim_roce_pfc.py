"""PFC in the packet engine: lossless at any incast degree with the headroom of the formula,
drops named when it is too small, and a PAUSE that holds its sender for the time the
thresholds imply. RoCE without congestion control, so only PFC holds the senders back."""

from __future__ import annotations

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim import packet_options, text
from dist_logreg.sim.transports.roce import Roce
from tests.test_sim_packet import needs_ns3, ns3  # noqa: F401  (the session fixture)
from tests.test_sim_roce import MTU, RATE, _incast

MiB = 1 << 20


def _star(ns3net, hosts, down_rate=RATE, lat=1e-6, **pfc):
    """``hosts`` hosts on one switch; links ``2h`` up and ``2h+1`` down (host 1's down link
    at ``down_rate``); PFC on with ``pfc``'s thresholds."""
    src, dst = [], []
    for h in range(hosts):
        src += [h, hosts]
        dst += [hosts, h]
    n = len(src)
    rate = np.full(n, RATE)
    rate[3] = down_rate
    return ns3net.Network(
        hosts=hosts,
        nodes=hosts + 1,
        link_src=np.array(src),
        link_dst=np.array(dst),
        link_rate=rate,
        link_latency=np.full(n, lat),
        queue_bytes=np.full(n, 1 << 30),
        ecn_k=np.zeros(n),
        loss=np.zeros(n),
        mtu=MTU,
        pfc=True,
        **pfc,
    )


@pytest.mark.parametrize("senders", [2, 5, 9])
@needs_ns3
def test_pfc_loses_nothing_at_any_incast_degree(senders, ns3):  # noqa: F811
    net = _star(ns3, senders + 1, lat=2e-6)
    res = ns3.run(net, _incast(ns3, senders, MiB), Roce(cc="none"))
    assert res.complete and (res.conn_rx == MiB).all()
    assert res.link_drops.sum() == 0 and res.link_headroom_drops.sum() == 0
    assert res.conn_counts["retransmitted_packets"].sum() == 0
    ups = 2 * np.arange(1, senders + 1)
    assert (res.link_pauses[ups] > 0).all() and (res.link_paused_s[ups] > 0).all()
    # the bottleneck never holds more than every ingress's xoff + headroom
    limit = senders * (net.pfc_xoff + ns3.pfc_headroom(net)[ups].max())
    assert res.link_peak[1] <= limit


@needs_ns3
def test_too_little_headroom_drops_and_names_the_link(ns3):  # noqa: F811
    net = _star(ns3, 5, lat=20e-6, pfc_headroom=np.full(10, 3000))
    res = ns3.run(net, _incast(ns3, 4, MiB), Roce(cc="none"))
    assert res.complete and (res.conn_rx == MiB).all()  # go-back-N recovers
    ups = 2 * np.arange(1, 5)
    assert res.link_headroom_drops[ups].sum() > 0
    assert res.link_drops.sum() == res.link_headroom_drops.sum()  # no other drop
    block = {
        "drops": int(res.link_drops.sum()),
        "ecn_marks": 0,
        "lost": 0,
        "wall_s": 0.0,
        "peak_queue_bytes": 0,
        "pause_frames": int(res.link_pauses.sum()),
        "headroom_drops": int(res.link_headroom_drops.sum()),
        "links_detail": [{"link": "h2>sw", "headroom_drops": 3}],
        "options": {"transport": "roce"},
        "retransmitted_packets": 1,
        "nacks": 1,
        "timeouts": 0,
        "cnps": 0,
    }
    assert "in on h2>sw: headroom too small" in text.packet_line(block)


@needs_ns3
def test_a_pause_holds_the_sender_while_the_ingress_drains_from_xoff_to_xon(ns3):  # noqa: F811
    """Host 0 sends at R into a port that drains at R/2. Each PAUSE is sent when more than
    xoff bytes from host 0 wait; RESUME when they drain to xon, at R/2. So the sender stands
    paused at least (xoff - xon) / (R/2), and at most (xoff + headroom - xon) / (R/2)."""
    xoff, xon, d = 256 << 10, 64 << 10, 1e-6
    net = _star(ns3, 2, down_rate=RATE / 2, lat=d, pfc_xoff=xoff, pfc_xon=xon)
    tr = ns3.Transfers(
        conn_src=np.array([0]),
        conn_dst=np.array([1]),
        conn_path=[[0, 3]],
        msg_conn=np.array([0]),
        msg_bytes=np.array([8 * MiB]),
        msg_delay=np.zeros(1),
        dep_indptr=np.zeros(2, int),
        dep_indices=np.zeros(0, int),
    )
    res = ns3.run(net, tr, Roce(cc="none"))
    assert res.complete and res.link_drops.sum() == 0
    pauses, held = int(res.link_pauses[0]), float(res.link_paused_s[0])
    assert pauses >= 5
    low = (xoff - xon) / (RATE / 2)
    high = (xoff + ns3.pfc_headroom(net)[0] - xon) / (RATE / 2)
    assert low <= held / pauses <= high


def test_pfc_options_are_checked():
    o = packet_options.parse_options({"pfc": "on", "pfc_xoff": "128K", "pfc_xon": "96K"})
    assert (o.pfc, o.pfc_xoff, o.pfc_xon) == ("on", 128 << 10, 96 << 10)
    with pytest.raises(UsageError, match="--pfc-xon"):
        packet_options.parse_options({"pfc": "on", "pfc_xoff": "32K", "pfc_xon": "64K"})
    with pytest.raises(UsageError, match="--pfc"):
        packet_options.parse_options({"pfc": "maybe"})


def test_report_draws_pauses_and_qp_rates_when_the_block_has_them(tmp_path):
    from dist_logreg.report import packetplots

    detail = [{"link": "h1>sw", "paused_s": 2e-4}, {"link": "h2>sw", "paused_s": 0.0}]
    rates = {"1>0": {"t_s": [0.0, 1e-4, 2e-4], "bytes_per_s": [1.25e9, 6e8, 9e8]}}
    block = {
        "options": {"transport": "roce"},
        "message_done_s": [1e-4, 3e-4],
        "queue": {"t_s": [], "links": {}},
        "pause_frames": 3,
        "links_detail": detail,
        "rates": rates,
    }
    doc = {"results": [{"algorithm": "ring", "bytes": MiB, "packet": block}]}
    paths = packetplots.draw(doc, tmp_path)
    names = ["packet-queues.png", "packet-messages.png", "packet-pauses.png", "packet-rates.png"]
    assert [p.name for p in paths] == names
    assert all(p.stat().st_size > 1000 for p in paths)


def test_the_headroom_formula_by_hand():
    """2 x rate x delay + 3 packets + (a packet + 64 B) x rate / reverse rate: 10 Gbit/s one
    way, 5 the other, 1 us and 4 us, 1500-byte packets: 2500 + 4500 + 1564 x 2 = 10128 and
    5000 + 4500 + 1564 / 2 = 10282."""
    from dist_logreg.sim import ns3net

    net = ns3net.Network(
        hosts=1,
        nodes=2,
        link_src=np.array([0, 1]),
        link_dst=np.array([1, 0]),
        link_rate=np.array([RATE, RATE / 2]),
        link_latency=np.array([1e-6, 4e-6]),
        queue_bytes=np.full(2, 1 << 20),
        ecn_k=np.zeros(2),
        loss=np.zeros(2),
        mtu=MTU,
    )
    assert ns3net.pfc_headroom(net).tolist() == [10128, 10282]
