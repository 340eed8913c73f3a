"""TCP's host model in the packet engine: TCP small queues bound what one connection keeps in
its host's NIC queue, and DCTCP then holds a switch queue where its paper's analysis puts it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dist_logreg.sim.transports.tcp import Tcp
from tests.helpers import star_network
from tests.test_sim_packet import needs_ns3, ns3  # noqa: F401  (the session fixture)
from tests.test_sim_roce import _incast

MTU = 1500


def _net(ns3net, hosts, rate, k=0, lat=5e-6):
    """A star whose host NIC queues never drop nor mark (as the engine builds them)."""
    net = star_network(ns3net, hosts, rate, 4 << 20, k=k, lat=lat)
    queue, ecn = np.array(net.queue_bytes), np.array(net.ecn_k)
    queue[0::2], ecn[0::2] = 1 << 30, 0  # links 2h: host h's NIC
    return dataclasses.replace(net, queue_bytes=queue, ecn_k=ecn)


@needs_ns3
def test_tsq_bounds_a_line_rate_flow_in_its_nic_queue(ns3):  # noqa: F811
    """One flow alone, its own NIC the bottleneck (a ring's step): without TSQ its window
    grows into the NIC queue (no loss, no mark there) up to the socket buffer; with it the
    queue holds at most the limit, max(2 packets, 1 ms at the pacing rate <= the NIC's
    rate), plus the one segment sent when it was just under, and the flow still runs at
    line rate (the socket buffer, not the NIC queue, holds the rest)."""
    rate, nbytes, tsq = 125e6, 8 << 20, 1e-3  # 1 Gbit/s
    tr = _incast(ns3, 1, nbytes)
    free = ns3.run(_net(ns3, 2, rate), tr, Tcp("dctcp", 0.005, tsq=0.0))
    tsqed = ns3.run(_net(ns3, 2, rate), tr, Tcp("dctcp", 0.005, tsq=tsq))
    bound = max(2 * MTU, rate * tsq) + MTU
    assert free.complete and tsqed.complete
    assert free.link_peak[2] > 8 * bound  # what the bound is for
    assert tsqed.link_peak[2] <= bound
    wire = nbytes / (MTU - Tcp.header_bytes) * (MTU + 2) / rate
    assert tsqed.msg_done[0] <= 1.02 * wire + 1e-3
    assert tsqed.msg_done[0] <= 1.01 * free.msg_done[0]


@pytest.mark.parametrize("flows", [4, 8])
@needs_ns3
def test_dctcp_holds_the_switch_queue_in_the_papers_band(flows, ns3):  # noqa: F811
    """N long DCTCP flows into one port marking at K (a step). Alizadeh et al., "Data Center
    TCP (DCTCP)", SIGCOMM 2010, section 3.3: with N synchronized flows the queue oscillates
    between Q_max = K + N and Q_min = Q_max - A packets, with amplitude
    A = 1/2 sqrt(2 N (C x RTT + K)) (C x RTT and K in packets); its time average lies in
    [Q_min, Q_max]. Measured after slow start (from 30% of the run) until the first flow
    ends; every host's NIC queue stays within TSQ's limit."""
    rate, lat, k = 1.25e9, 5e-6, 65 << 10  # 10 Gbit/s
    nbytes = (16 << 20) // flows
    res = ns3.run(
        _net(ns3, flows + 1, rate, k=k, lat=lat),
        _incast(ns3, flows, nbytes),
        Tcp("dctcp", 0.005),
        sample_every_s=2e-6,
    )
    assert res.complete and res.link_drops.sum() == 0
    wire = MTU + 2
    rtt = 4 * lat + 2 * wire / rate  # data: two hops store-and-forward; ACKs: latency alone
    bdp, kp = rate * rtt / wire, k / wire
    q_max = kp + flows
    q_min = q_max - 0.5 * np.sqrt(2 * flows * (bdp + kp))
    t, q = res.queue_t, res.queue_bytes[:, 1] / wire  # link 1: the switch to host 0
    steady = (t > 0.3 * t[-1]) & (t < res.msg_done.min())
    assert steady.sum() > 1000
    assert q_min <= q[steady].mean() <= q_max
    ups = 2 * np.arange(1, flows + 1)
    assert (res.link_peak[ups] <= max(2 * MTU, rate * 1e-3) + MTU).all()


@needs_ns3
def test_the_timestamp_option_costs_12_bytes_of_every_segment(ns3):  # noqa: F811
    """One flow of N bytes: with the option a segment carries MTU - 52 bytes of payload,
    without it MTU - 40 (IPv4 20 + TCP 20 + the option's 10 and 2 of padding, RFC 7323),
    and every packet takes 2 more of PPP on the wire. The sender's link carries the payload,
    each segment's headers, and the two handshake packets it sends (SYN, ACK: each 12 bytes
    longer with the option); the run's end comes before any FIN."""
    nbytes = 1 << 20
    tr = _incast(ns3, 1, nbytes)
    up = 2  # host 1's link to the switch
    sent = {}
    for ts, header in (("on", 52), ("off", 40)):
        res = ns3.run(_net(ns3, 2, 125e6), tr, Tcp("cubic", tcp_timestamps=ts))
        assert res.complete and res.conn_rx[0] == nbytes
        assert Tcp(tcp_timestamps=ts).header_bytes == header
        sent[ts] = res.link_bytes[up] - nbytes - -(-nbytes // (MTU - header)) * (header + 2)
    assert sent["on"] - sent["off"] == 2 * 12
