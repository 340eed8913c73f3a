"""Priorities and PAUSE frames in the packet engine's ports (``sim/pfc.cc``, with PFC on):
control packets (ACKs, NACKs, CNPs) leave before data already queued, a PAUSE of the data
class does not stop the control class, and a PAUSE frame takes 64 bytes of wire time on the
switch's port back to the sender, ahead of that port's data."""

from __future__ import annotations

import numpy as np

from dist_logreg.sim.transports.roce import Roce
from tests.test_sim_packet import needs_ns3, ns3  # noqa: F401  (the session fixture)
from tests.test_sim_roce import RATE
from tests.test_sim_roce_pfc import _star

MiB = 1 << 20

# A PfcQueue alone: `sizes` packets enqueued in order (under 100 bytes: control), the
# data class paused or not; returns the sizes in the order they leave.
ORDER = """
#include "pfc.cc"
std::vector<uint32_t> dlr_test_order(const std::vector<uint32_t>& sizes, bool dataPaused) {
  using namespace ns3;
  Ptr<dlr::PfcQueue> q = CreateObject<dlr::PfcQueue>();
  q->SetMaxSize(QueueSize(QueueSizeUnit::BYTES, 1 << 20));
  q->classify = [](Ptr<const QueueDiscItem> i) { return i->GetSize() < 100 ? 1 : 0; };
  q->paused[0] = dataPaused;
  q->Initialize();
  for (uint32_t n : sizes) {
    Ipv4Header h;
    h.SetPayloadSize(n - 20);
    q->Enqueue(Create<Ipv4QueueDiscItem>(Create<Packet>(n - 20), Address(), 0x0800, h));
  }
  std::vector<uint32_t> out;
  while (Ptr<QueueDiscItem> i = q->Dequeue()) out.push_back(i->GetSize());
  return out;
}
"""


def _order(sizes, data_paused=False):
    from dist_logreg.sim import ns3driver

    gbl = ns3driver.load()
    if not hasattr(gbl, "dlr_test_order"):
        ns3driver._LOADED["cppyy"].cppdef(ORDER)
    v = gbl.std.vector["uint32_t"]()
    for n in sizes:
        v.push_back(n)
    return list(gbl.dlr_test_order(v, bool(data_paused)))


@needs_ns3
def test_an_ack_behind_a_full_data_queue_leaves_first(ns3):  # noqa: F811
    """Three 1500-byte data packets queued, then a 60-byte ACK: the ACK leaves first (strict
    priority), the data in its order; without a control packet, FIFO."""
    assert _order([1500, 1400, 1300, 60]) == [60, 1500, 1400, 1300]
    assert _order([1500, 60, 1400, 70]) == [60, 70, 1500, 1400]


@needs_ns3
def test_a_pause_of_the_data_class_does_not_stop_the_control_class(ns3):  # noqa: F811
    assert _order([1500, 60, 1400, 70], data_paused=True) == [60, 70]


def _transfers(ns3net, conns):
    """One message per (src, dst, path, bytes), all at time 0."""
    n = len(conns)
    return ns3net.Transfers(
        conn_src=np.array([c[0] for c in conns]),
        conn_dst=np.array([c[1] for c in conns]),
        conn_path=[c[2] for c in conns],
        msg_conn=np.arange(n),
        msg_bytes=np.array([c[3] for c in conns]),
        msg_delay=np.zeros(n),
        dep_indptr=np.zeros(n + 1, int),
        dep_indices=np.zeros(0, int),
    )


def _ns(nbytes):
    """Wire time of nbytes at RATE, in whole ns as ns-3 rounds it."""
    return round(nbytes / RATE * 1e9) * 1e-9


@needs_ns3
def test_a_pause_frame_takes_64_bytes_of_wire_time_ahead_of_data(ns3):  # noqa: F811
    """Host 0 sends 8 MiB into host 1's half-rate port: the switch PAUSEs and RESUMEs host 0
    (2 frames a pause) on its port back to host 0, which carries host 2's 32 MiB to host 0
    at line rate (paced at R: the port never drains, so each frame delays all that follows).
    Host 2's message arrives later than alone by every frame's 64 B / R plus the one control
    packet (46 B: host 1's ACK of host 0's message) that crossed that port too."""
    net = _star(ns3, 3, down_rate=RATE / 2, lat=1e-6, pfc_xoff=256 << 10, pfc_xon=64 << 10)
    roce = Roce(cc="none", ack_every=1 << 20, rto=1.0)  # one ACK, asked for at the end
    alone = ns3.run(net, _transfers(ns3, [(2, 0, [4, 1], 32 * MiB)]), roce)
    both = ns3.run(net, _transfers(ns3, [(2, 0, [4, 1], 32 * MiB), (0, 1, [0, 3], 8 * MiB)]), roce)
    assert alone.complete and both.complete and both.link_drops.sum() == 0
    frames = 2 * int(both.link_pauses[0])
    assert frames >= 10 and both.link_pauses[1:].sum() == 0
    assert both.link_bytes[1] - alone.link_bytes[1] == 64 * frames + 46
    delay = both.msg_done[0] - alone.msg_done[0]
    assert abs(delay - (frames * _ns(64) + _ns(46))) < 1.5e-9
