"""Run a set of dependent transfers over a described network in ns-3.

This is the packet engine's network layer, independent of how the network and the
messages were made (``packet.py`` builds them from a ``Fabric`` and a schedule), and of
the transport that carries them (:mod:`.transports`: TCP today):

- :class:`Network`: nodes ``0..hosts-1`` are hosts, the rest switches; directed links
  (arrays of length L) with rate (bytes/s), latency (s), per-port buffer (bytes),
  ECN threshold K (bytes, 0 = plain drop-tail) and loss probability. Every cable is two
  directed links, paired here in the order they appear. Optionally a shared buffer per
  switch with a dynamic threshold (``buffer``, ``buffer_alpha``).
- :class:`Transfers`: connections (src host, dst host, the path as directed link ids, or
  ``None`` to let ns-3 spray packets over every equal-cost path, or a path pinned up to a
  link and sprayed from there) and messages (the connection, bytes, the delay before it
  starts, its dependencies in CSR form).
- the transport: an options object of a transport record (``Tcp("cubic")``), whose
  ``create(gbl, net)`` builds its C++ side; its record names what it counts per connection
  (:attr:`PacketRun.conn_counts`).

Forwarding is our own (``sim/switch.cc``): a table lookup per packet, O(1) whatever the
fabric's size. A connection's data packets follow the path given here (pinned at every
node on it: the fabric's own ECMP hash, so the flow and packet engines see the same
collisions). Everything else (ACKs, NACKs, CNPs) is hashed per flow over the equal-cost
next hops towards its destination, on the 5-tuple salted by the switch (the fabric's
``hash-seed``; one salt everywhere with ``hash-polarize``); when spraying, every packet
without a pinned path takes a random equal-cost next hop.

Example::

    >>> res = run(net, transfers, Tcp("cubic"))      # doctest: +SKIP
    >>> res.msg_done[-1]                              # s after the connections were up
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from signal import SIGTERM

import numpy as np

from dist_logreg.sim import ns3driver
from dist_logreg.sim.transports import table as transports
from dist_logreg.sim.transports.tcp import Tcp  # noqa: F401  (callers name TCP's options here)

_LINK_BASE = 0x0A000000  # 10.0.0.0/8: one /30 per cable


@dataclass(frozen=True)
class Network:
    """Nodes and directed links; arrays have one entry per directed link."""

    hosts: int
    nodes: int
    link_src: np.ndarray
    link_dst: np.ndarray
    link_rate: np.ndarray  # bytes/s
    link_latency: np.ndarray  # s
    queue_bytes: np.ndarray  # per-port buffer, bytes
    ecn_k: np.ndarray  # marking threshold, bytes (0: drop-tail)
    loss: np.ndarray  # probability a packet is lost on the link (0..1)
    mtu: int = 1500
    host_rate: float = 1e12  # bytes/s for a message inside one host
    ecn_kmax: np.ndarray | None = None  # RED's upper threshold, bytes (<= ecn_k: a step at K)
    ecn_pmax: float = 1.0  # RED's marking probability at ecn_kmax
    pfc: bool = False  # PFC on every switch ingress link (lossless; see pfc_headroom)
    pfc_xoff: int = 64 << 10  # bytes of one ingress link waiting in a switch: PAUSE above
    pfc_xon: int = 32 << 10  # ... RESUME at or below
    pfc_headroom: np.ndarray | None = None  # per link, bytes beyond xoff; None: the formula
    hash_seed: int = 0  # salts every switch's per-flow ECMP hash
    polarize: bool = False  # every switch hashes with the same salt
    buffer: int = 0  # a shared buffer per switch, bytes (0: each port its queue_bytes)
    buffer_alpha: float = 1.0  # a port holds at most alpha x the shared buffer left free
    edge_nodes: int = 0  # nodes below it (at least the hosts) are no switch for PFC, buffer
    spray_in_turn: tuple = ()  # nodes that spray over their group in turn, not at random


@dataclass(frozen=True)
class Transfers:
    """Connections and the messages they carry (a connection is one byte stream)."""

    conn_src: np.ndarray
    conn_dst: np.ndarray
    conn_path: list  # per connection: directed link ids, or None (spray or local)
    msg_conn: np.ndarray
    msg_bytes: np.ndarray
    msg_delay: np.ndarray  # s between the last dependency's arrival and the start
    dep_indptr: np.ndarray
    dep_indices: np.ndarray
    dep_delay: np.ndarray | None = None  # per dependency edge: s added after that arrival
    #: per connection, how many leading links of its path are pinned (the rest sprayed by
    #: the switches over their equal-cost groups); None: all of them
    conn_pin: np.ndarray | None = None
    #: per connection, the rate a pacing transport (RoCE) sends at, B/s (0: its host's
    #: first link's); None: every one its host's
    conn_rate: np.ndarray | None = None

    def sprayed(self) -> bool:
        """Whether a remote connection leaves (part of) its path to spraying."""
        remote = np.flatnonzero(np.asarray(self.conn_src) != np.asarray(self.conn_dst))
        if any(self.conn_path[c] is None for c in remote):
            return True
        pins = self.conn_pin
        return pins is not None and any(pins[c] < len(self.conn_path[c]) for c in remote)


@dataclass
class PacketRun:
    """What one run measured (times in s from the moment every connection was up)."""

    msg_start: np.ndarray
    msg_done: np.ndarray
    link_bytes: np.ndarray  # wire bytes sent on each directed link
    link_drops: np.ndarray  # packets dropped by the port's queue
    link_marks: np.ndarray  # packets ECN-marked by the port's queue
    link_loss: np.ndarray  # packets lost on the wire (the loss model)
    link_peak: np.ndarray  # exact peak queue, bytes
    queue_t: np.ndarray  # sample times, s
    queue_bytes: np.ndarray  # (samples, links) queue occupancy, bytes
    conn_rx: np.ndarray  # payload bytes each connection's receiver read
    conn_counts: dict  # the transport's counters: {name: one value per connection}
    series: np.ndarray  # the transport's time series: rows (connection, t s, value)
    link_pauses: np.ndarray  # PFC: PAUSEs that stopped the link's sender
    link_paused_s: np.ndarray  # PFC: time the link's sender stood paused, s
    link_headroom_drops: np.ndarray  # PFC: packets in on the link beyond xoff + headroom
    wall_s: float
    complete: bool
    info: dict = field(default_factory=dict)


def _cables(net):
    """Pair directed links (a->b with b->a, in order); returns [(l_ab, l_ba)]."""
    waiting: dict = {}
    cables = []
    for link in range(len(net.link_src)):
        a, b = int(net.link_src[link]), int(net.link_dst[link])
        back = waiting.get((b, a))
        if back:
            cables.append((back.popleft(), link))
        else:
            waiting.setdefault((a, b), deque()).append(link)
    left = [lk for q in waiting.values() for lk in q]
    if left:
        raise ValueError(f"expected every link to have a reverse link, got none for {left}")
    return cables


def equal_cost_groups(net):
    """Per (node, host): the directed links leaving the node on a shortest path to the host.

    Returns (indptr, links) in CSR form over the pairs ``node * hosts + host``; a host's
    own pair and an unreachable one are empty.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    src = np.asarray(net.link_src, dtype=np.int64)
    dst = np.asarray(net.link_dst, dtype=np.int64)
    hosts, nodes = int(net.hosts), int(net.nodes)
    # hops from every node to each host: shortest paths from the host over reversed links
    back = csr_matrix((np.ones(src.size), (dst, src)), shape=(nodes, nodes))
    dist = shortest_path(back, unweighted=True, indices=np.arange(hosts))  # (hosts, nodes)
    d_src, d_dst = dist[:, src], dist[:, dst]
    on = np.isfinite(d_src) & (d_src > 0) & (d_dst == d_src - 1)  # (hosts, links)
    h, link = np.nonzero(on)
    pair = src[link] * hosts + h
    order = np.argsort(pair, kind="stable")
    indptr = np.zeros(nodes * hosts + 1, dtype=np.int64)
    np.add.at(indptr, pair + 1, 1)
    return np.cumsum(indptr), link[order].astype(np.int32)


def _build(gbl, net, transport, spray, seed):
    """Create the dlr::Net with its transport, cables and queues (routes come later)."""
    gbl.dlr.Reset(int(seed))
    tr = transport.create(gbl, net)  # sets the transport's ns-3 defaults: before the stack
    sim = gbl.dlr.Net(int(net.nodes), len(net.link_src), int(net.mtu), tr)
    edge = max(int(net.hosts), int(net.edge_nodes))
    if net.pfc:
        room = pfc_headroom(net) if net.pfc_headroom is None else net.pfc_headroom
        sim.SetPfc(
            edge,
            int(net.pfc_xoff),
            int(net.pfc_xon),
            _vec(gbl, "uint32_t", [int(h) for h in room]),
        )
    if net.buffer:
        sim.SetBuffer(edge, int(net.buffer), float(net.buffer_alpha))
    if net.ecn_kmax is not None:
        sim.SetRed(_vec(gbl, "uint32_t", [int(k) for k in net.ecn_kmax]), float(net.ecn_pmax))
    for c, (ab, ba) in enumerate(_cables(net)):
        sim.AddCable(
            int(net.link_src[ab]),
            int(net.link_dst[ab]),
            ab,
            ba,
            float(net.link_rate[ab] * 8),
            float(net.link_rate[ba] * 8),
            float(net.link_latency[ab]),
            int(net.queue_bytes[ab]),
            int(net.queue_bytes[ba]),
            int(net.ecn_k[ab]),
            int(net.ecn_k[ba]),
            float(net.loss[ab]),
            float(net.loss[ba]),
            _LINK_BASE + 4 * c,
        )
    return sim, tr


def pfc_headroom(net) -> np.ndarray:
    """Headroom per link, bytes: what still arrives after the switch crosses xoff.

    The PAUSE first waits on the switch's port back to the sender behind the packet on that
    wire, then takes its own 64 bytes there, then one link delay to reach the sender, whose
    port then finishes the packet on the wire and the one its device holds; the bytes
    already on the wire (one delay's worth) and sent meanwhile (another) arrive too:
    2 x rate x delay + 3 packets (the one being received when xoff was crossed) + what the
    link carries while the frame waits and goes out on the reverse link ((packet + 64 B) x
    rate / reverse rate: a packet and 64 B at equal rates).
    """
    rate = np.asarray(net.link_rate, dtype=float)
    back = np.empty_like(rate)
    for ab, ba in _cables(net):
        back[ab], back[ba] = rate[ba], rate[ab]
    wait = (net.mtu + 2 + 64) * rate / back  # bytes in while the PAUSE waits and goes out
    room = 2 * rate * np.asarray(net.link_latency) + 3 * (net.mtu + 2) + wait
    return np.ceil(room).astype(np.int64)


def _route(gbl, sim, net, transfers, spray):
    """Fill the forwarding tables; returns the destination address of every connection."""
    indptr, links = equal_cost_groups(net)
    salt = int(net.hash_seed) & (2**64 - 1)
    sim.SetTables(
        int(net.hosts),
        _vec(gbl, "int64_t", indptr.tolist()),
        _vec(gbl, "int32_t", links.tolist()),
        salt,
        bool(net.polarize),
        bool(spray),
    )
    for node in net.spray_in_turn:
        sim.SprayInTurn(int(node))
    pins = transfers.conn_pin
    for c, path in enumerate(transfers.conn_path):
        if path is not None and int(transfers.conn_src[c]) != int(transfers.conn_dst[c]):
            mine = path if pins is None else path[: int(pins[c])]
            sim.Pin(c, _vec(gbl, "int32_t", [int(lk) for lk in mine]))
    return [sim.HostAddr(int(d)) for d in transfers.conn_dst]


def _dependents(transfers):
    """Invert the dependency CSR: for each message, the messages waiting on it."""
    n = len(transfers.msg_conn)
    indptr = np.asarray(transfers.dep_indptr, dtype=np.int64)
    deps = np.asarray(transfers.dep_indices, dtype=np.int64)
    edge = np.zeros(deps.size) if transfers.dep_delay is None else np.asarray(transfers.dep_delay)
    waiter = np.repeat(np.arange(n), np.diff(indptr))
    order = np.argsort(deps, kind="stable")
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(out_ptr, deps + 1, 1)
    return np.diff(indptr), np.cumsum(out_ptr), waiter[order], edge[order]


def _vec(gbl, kind, values):
    v = gbl.std.vector[kind]()
    v.reserve(len(values))
    for x in values:
        v.push_back(x)
    return v


def record_of(transport) -> transports.Transport:
    """The table's record whose options class ``transport`` is an instance of."""
    for record in transports.all_records():
        if type(transport) is record.options_class():
            return record
    raise ValueError(f"expected the options of a registered transport, got {transport!r}")


def run(net, transfers, transport=None, sample_every_s=0.0, stop_s=3600.0, seed=0):
    """Simulate; returns a :class:`PacketRun` (``complete`` False if ``stop_s`` came first).

    ``transport``: a transport's options (default: the default transport's defaults);
    ``seed``: ns-3's random run.
    """
    transport = transports.DEFAULT.options_class()() if transport is None else transport
    record = record_of(transport)
    if len(transfers.conn_src) > 60000:
        raise ValueError(f"expected at most 60000 connections, got {len(transfers.conn_src)}")
    gbl = ns3driver.load()
    spray = transfers.sprayed()
    sim, tr = _build(gbl, net, transport, spray, seed)  # tr: alive while sim runs
    if transfers.conn_rate is not None and hasattr(tr, "SetLineRates"):
        tr.SetLineRates(_vec(gbl, "double", [float(r) for r in transfers.conn_rate]))
    for c, addr in enumerate(_route(gbl, sim, net, transfers, spray)):
        sim.AddConn(int(transfers.conn_src[c]), int(transfers.conn_dst[c]), int(addr))
    ndeps, out_ptr, out_idx, out_delay = _dependents(transfers)
    sim.SetMessages(
        _vec(gbl, "int64_t", [int(x) for x in transfers.msg_conn]),
        _vec(gbl, "uint64_t", [int(x) for x in transfers.msg_bytes]),
        _vec(gbl, "double", [float(x) for x in transfers.msg_delay]),
        _vec(gbl, "int64_t", [int(x) for x in ndeps]),
        _vec(gbl, "int64_t", [int(x) for x in out_ptr]),
        _vec(gbl, "int64_t", [int(x) for x in out_idx]),
        _vec(gbl, "double", [float(x) for x in out_delay]),
        float(net.host_rate),
    )
    start = time.perf_counter()
    sim.Run(float(sample_every_s), float(stop_s))  # SIGINT, SIGTERM stop it within a second
    wall = time.perf_counter() - start
    if sim.interrupted:  # SIGTERM named, as the command line's handler names it
        raise KeyboardInterrupt("SIGTERM") if sim.interruptedBy == SIGTERM else KeyboardInterrupt
    return _collect(sim, len(net.link_src), wall, record.counters)


def _arr(vec, dtype):
    return np.array(list(vec), dtype=dtype)


def _collect(sim, n_links, wall, counters):
    done = _arr(sim.msgDone, float)
    samples = _arr(sim.samples, np.int64)
    rx = _arr(sim.connRx, np.int64)
    counts = _arr(sim.connCounters, np.int64).reshape(len(counters), rx.size)
    return PacketRun(
        msg_start=_arr(sim.msgStart, float),
        msg_done=done,
        link_bytes=_arr(sim.linkBytes, np.int64),
        link_drops=_arr(sim.linkDrops, np.int64),
        link_marks=_arr(sim.linkMarks, np.int64),
        link_loss=_arr(sim.linkLoss, np.int64),
        link_peak=_arr(sim.linkPeak, np.int64),
        queue_t=_arr(sim.sampleTimes, float),
        queue_bytes=samples.reshape(-1, n_links) if n_links else samples,
        conn_rx=rx,
        conn_counts=dict(zip(counters, counts, strict=True)),
        link_pauses=_arr(sim.linkPauses, np.int64),
        link_paused_s=_arr(sim.linkPausedS, float),
        link_headroom_drops=_arr(sim.linkHeadroomDrops, np.int64),
        series=_arr(sim.series, float).reshape(-1, 3) - [0.0, float(sim.t0), 0.0],
        wall_s=wall,
        complete=bool(len(done) == 0 or (done >= 0).all()),
        info={"connect_s": float(sim.t0)},
    )
