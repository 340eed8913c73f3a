"""RoCEv2 in the packet engine: go-back-N and selective repeat counted by hand, DCQCN's
fairness, no back-off without it, and agreement with the flow engine where nothing is
congested. ns-3 is imported once per process (the fixture of tests/test_sim_packet.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim import packet_options
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from dist_logreg.sim.transports.roce import Roce
from tests.helpers import star_network
from tests.test_sim_packet import needs_ns3, ns3  # noqa: F401  (the session fixture)

MiB = 1 << 20
RATE = 10e9 / 8  # bytes/s
MTU = 1498  # a packet of 1500 bytes on the wire (PPP 2): 1.2 us at 10 Gbit/s, whole ns


def _star(ns3net, hosts, queue=64 * MiB, k=0, kmax=None, lat=1e-6, loss=0.0):
    n = 2 * hosts
    kmax = None if kmax is None else np.full(n, kmax)
    return star_network(
        ns3net, hosts, RATE, queue, k, loss, lat, mtu=MTU, ecn_kmax=kmax, ecn_pmax=0.01
    )


def _incast(ns3net, senders, nbytes, chunks=1):
    """Hosts 1..senders each send ``nbytes`` to host 0 at once, as ``chunks`` messages."""
    conn_src = np.arange(1, senders + 1)
    msgs = senders * chunks
    return ns3net.Transfers(
        conn_src=conn_src,
        conn_dst=np.zeros(senders, int),
        conn_path=[[2 * s, 1] for s in conn_src],
        msg_conn=np.repeat(np.arange(senders), chunks),
        msg_bytes=np.full(msgs, nbytes // chunks),
        msg_delay=np.zeros(msgs),
        dep_indptr=np.zeros(msgs + 1, int),
        dep_indices=np.zeros(0, int),
    )


@pytest.mark.parametrize("lat", [1e-6, 2.5e-6])
@needs_ns3
def test_one_drop_under_go_back_n_resends_exactly_what_was_in_flight(lat, ns3):  # noqa: F811
    """PSN k is lost once. Packet k+1 reaches the receiver at (k+3)T + 2d (T per packet per
    link, d per link, store and forward at the switch); its NACK (a control packet of
    Tc) reaches the sender 2(Tc + d) later. By then the sender, pacing at line rate, has
    started ceil(t_N / T) packets; go-back-N resends all of them from k on."""
    k, payload = 20, MTU - Roce.header_bytes
    T, Tc = 1500 * 8 / 10e9, (16 + 30) * 8 / 10e9
    t_nack = (k + 3) * T + 2 * lat + 2 * (Tc + lat)
    expected = math.ceil(t_nack / T) - k
    assert 0.1 < t_nack / T % 1 < 0.9  # no tie the nanosecond clock could flip
    res = ns3.run(_star(ns3, 2, lat=lat), _incast(ns3, 1, MiB), Roce(drop_once=((0, k),)))
    assert res.complete and int(res.conn_rx[0]) == MiB
    assert res.conn_counts["retransmitted_packets"][0] == expected
    assert res.conn_counts["retransmitted_bytes"][0] == expected * payload
    assert res.conn_counts["nacks"][0] == 1 and res.conn_counts["timeouts"][0] == 0
    sel = ns3.run(
        _star(ns3, 2, lat=lat), _incast(ns3, 1, MiB), Roce("selective", drop_once=((0, k),))
    )
    assert sel.complete and int(sel.conn_rx[0]) == MiB
    assert sel.conn_counts["retransmitted_packets"][0] == 1  # only the PSN lost
    assert sel.msg_done[0] < res.msg_done[0]


@needs_ns3
def test_a_lost_tail_is_resent_after_the_timeout(ns3):  # noqa: F811
    """The last packet lost: no later packet reveals the gap; the timeout does."""
    payload = MTU - Roce.header_bytes
    last = math.ceil(MiB / payload) - 1
    clean = ns3.run(_star(ns3, 2), _incast(ns3, 1, MiB), Roce())
    res = ns3.run(_star(ns3, 2), _incast(ns3, 1, MiB), Roce(rto=2e-3, drop_once=((0, last),)))
    assert res.complete and int(res.conn_rx[0]) == MiB
    assert res.conn_counts["timeouts"][0] == 1
    assert res.msg_done[0] == pytest.approx(clean.msg_done[0] + 2e-3, rel=0.05)


@pytest.mark.parametrize("retransmit", ["gbn", "selective"])
@needs_ns3
def test_random_loss_delivers_every_byte(retransmit, ns3):  # noqa: F811
    tr = _incast(ns3, 3, 2 * MiB)
    res = ns3.run(_star(ns3, 4, loss=0.002), tr, Roce(retransmit))
    assert res.complete and (res.conn_rx == 2 * MiB).all()
    assert res.link_loss.sum() > 0
    assert res.conn_counts["retransmitted_packets"].sum() >= res.link_loss[[1, 2, 4, 6]].sum() > 0


def _throughputs(res, senders, chunks, nbytes):
    """Payload bytes/s of each flow while all of them were sending (after the first 20%)."""
    done = res.msg_done.reshape(senders, chunks)
    t1 = done[:, -1].min()  # the first flow finished
    t0 = 0.2 * t1
    got = ((done > t0) & (done <= t1)).sum(axis=1) * (nbytes // chunks)
    return got / (t1 - t0)


@needs_ns3
def test_dcqcn_shares_a_bottleneck_fairly_and_without_it_nobody_backs_off(ns3):  # noqa: F811
    """4 flows into one 10 Gbit/s port: with DCQCN (RED 5K-200K, 1%) each gets its fair
    share within 10% and the queue stays far below the buffer; without it every flow keeps
    line rate (no rate change) and the excess piles up in the queue."""
    n, chunks, nbytes = 4, 64, 8 * MiB
    net = _star(ns3, n + 1, k=5 << 10, kmax=200 << 10)
    fair = RATE * (MTU - Roce.header_bytes) / (MTU + 2) / n
    dcqcn = ns3.run(net, _incast(ns3, n, nbytes, chunks), Roce())
    assert dcqcn.complete
    share = _throughputs(dcqcn, n, chunks, nbytes)
    # fair: each gets 1/n of what the port delivered; DCQCN's sawtooth (alpha starts at 1
    # and decays by 1/256 per 55 us) leaves part of the port idle, so that is below 1/n
    # of the line (0.78 of it here, docs/packet.md); a floor catches a collapse
    assert np.all(np.abs(share / share.mean() - 1) < 0.10), share / fair
    assert share.mean() > 0.6 * fair
    assert dcqcn.conn_counts["cnps"].min() > 0 and dcqcn.series.size
    none = ns3.run(net, _incast(ns3, n, nbytes, chunks), Roce(cc="none"))
    assert none.complete and none.series.size == 0 and none.conn_counts["cnps"].sum() == 0
    # at line rate each, the port receives n x what it sends: (n-1)/n of it waits
    assert none.link_peak[1] > 0.9 * (n - 1) / n * n * nbytes * 1500 / 1454
    assert dcqcn.link_peak[1] < 0.1 * none.link_peak[1]


@pytest.mark.parametrize("alg", ["ring", "recursive-doubling"])
@needs_ns3
def test_uncongested_roce_matches_the_flow_engine(alg, ns3):  # noqa: F811
    """No congestion, no loss: paced at line rate from the first packet (no slow start),
    RoCE's time is the flow engine's within 5% (the headers are the difference)."""
    fab = parse_fabric("flat:hosts=4,rate=10G")
    job = Job(fab, place(4, fab), alg, 4 * MiB, exact=True)
    flow = get_engine("flow").run(job)
    roce = Job(fab, place(4, fab), alg, 4 * MiB, exact=True, options={"transport": "roce"})
    pkt = get_engine("packet").run(roce)
    assert abs(pkt.time_s / flow.time_s - 1) < 0.05
    assert pkt.extra["packet"]["retransmitted_packets"] == 0
    assert pkt.extra["packet"]["transport_label"] == "roce-gbn-dcqcn"


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"transport": "roce", "retransmit": "sack"}, "--retransmit"),
        ({"transport": "roce", "dcqcn_g": "2"}, "--dcqcn-g"),
        ({"retransmit": "gbn"}, "--transport tcp"),
        ({"ecn": "5K", "ecn_max": "4K"}, "--ecn-max"),
        ({"transport": "roce", "dcqcn_rai": "fast"}, "--dcqcn-rai"),
    ],
)
def test_bad_roce_options_are_usage_errors(options, needle):
    with pytest.raises(UsageError, match=needle):
        packet_options.parse_options(options)


def test_roce_options_parse_from_text():
    o = packet_options.parse_options(
        {
            "transport": "roce",
            "retransmit": "selective",
            "cc": "dcqcn",
            "rto": "4ms",
            "dcqcn_g": "1/16",
            "dcqcn_rai": "5mbit",
            "ecn": "5K",
            "ecn_max": "200K",
        }
    )
    assert (o.retransmit, o.cc, o.rto, o.dcqcn_g) == ("selective", "dcqcn", 0.004, 1 / 16)
    assert o.dcqcn_rai == 5e6 and (o.ecn, o.ecn_max) == (5 << 10, 200 << 10)
