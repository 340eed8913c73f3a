"""A switch's shared buffer with a dynamic threshold (``--buffer``, ``--buffer-alpha``): a
port may hold at most alpha x the part of the buffer still free, so one congested port alone
settles at q = alpha (B - q), alpha / (1 + alpha) of the buffer, and two at once at
alpha / (1 + 2 alpha) each (Choudhury and Hahne's dynamic threshold, as Broadcom-style MMUs
and HPCC's switch-mmu share a buffer)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim import packet_options
from dist_logreg.sim.transports.roce import Roce
from tests.helpers import star_network
from tests.test_sim_packet import needs_ns3, ns3  # noqa: F401  (the session fixture)
from tests.test_sim_roce import MTU, RATE

MiB, BUFFER = 1 << 20, 200_000


def _incasts(ns3net, groups):
    """Per group (receiver, senders): each sender sends 1 MiB to the receiver at once."""
    pairs = [(s, r) for r, senders in groups for s in senders]
    n = len(pairs)
    return ns3net.Transfers(
        conn_src=np.array([s for s, _ in pairs]),
        conn_dst=np.array([r for _, r in pairs]),
        conn_path=[[2 * s, 2 * r + 1] for s, r in pairs],
        msg_conn=np.arange(n),
        msg_bytes=np.full(n, MiB),
        msg_delay=np.zeros(n),
        dep_indptr=np.zeros(n + 1, int),
        dep_indices=np.zeros(0, int),
    )


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
@needs_ns3
def test_one_congested_port_takes_alpha_over_one_plus_alpha(alpha, ns3):  # noqa: F811
    net = star_network(ns3, 3, RATE, BUFFER, lat=1e-6, mtu=MTU)
    net = dataclasses.replace(net, buffer=BUFFER, buffer_alpha=alpha)
    res = ns3.run(net, _incasts(ns3, [(0, [1, 2])]), Roce(cc="none"))
    assert res.complete and (res.conn_rx == MiB).all()  # go-back-N recovers the drops
    assert res.link_drops[1] > 0
    wire = MTU + 2  # a packet in the queue: IP bytes (MTU) at most
    share = alpha * BUFFER / (1 + alpha)
    assert share - wire <= res.link_peak[1] <= alpha * (BUFFER + wire) / (1 + alpha)


@needs_ns3
def test_two_congested_ports_take_alpha_over_one_plus_two_alpha_each(ns3):  # noqa: F811
    """Two symmetric incasts on one switch: both ports settle at q = B - 2q, B/3 each (at
    alpha 1), measured over the middle of the run, within a packet or two."""
    net = star_network(ns3, 6, RATE, BUFFER, lat=1e-6, mtu=MTU)
    net = dataclasses.replace(net, buffer=BUFFER, buffer_alpha=1.0)
    groups = [(0, [1, 2]), (3, [4, 5])]
    res = ns3.run(net, _incasts(ns3, groups), Roce(cc="none"), sample_every_s=1e-6)
    assert res.complete and res.link_drops[[1, 7]].min() > 0
    t, end, wire = res.queue_t, res.msg_done.min(), MTU + 2
    middle = (t > 0.2 * end) & (t < 0.8 * end)
    mean = res.queue_bytes[middle][:, [1, 7]].mean(axis=0)  # links 1, 7: to hosts 0 and 3
    assert (BUFFER / 3 - 2 * wire <= mean).all() and (mean <= BUFFER / 3 + wire).all()


def test_buffer_options_are_checked():
    o = packet_options.parse_options({"buffer": "12M", "buffer_alpha": "0.125"})
    assert (o.buffer, o.buffer_alpha) == (12 << 20, 0.125)
    for bad in ("0", "-1", "x", "65"):
        with pytest.raises(UsageError, match="--buffer-alpha"):
            packet_options.parse_options({"buffer_alpha": bad})
