"""The packet engine: the flow engine's exact-mode message graph as transfers in ns-3.

``PacketEngine().run(job) -> Result``, the same interface as the flow engine
(:mod:`.job`). The fabric (``Fabric``: its links, rates, latencies, MTU, alpha, gamma),
the placement and the messages (:func:`.messages.messages`) are the flow engine's; every
connection (one per ordered rank pair, opened before the clock starts) takes the path the
fabric's hash picks for it (``Fabric.route`` with the flow engine's key ``src * P + dst``),
or, with ``hash=spray``, ns-3 sprays its packets over every equal-cost path. A message
starts ``alpha`` after its dependencies arrived (plus ``gamma`` per byte the sender had to
reduce first), as in ``--exact``. So the two engines differ only in what the network does.
What carries the messages is the transport (``--transport``, :mod:`.transports`: TCP
or RoCEv2).

Options (``Job.options``): a :class:`.packet_options.PacketOptions` (the CLI's, parsed
once), or a mapping of them (``{"tcp": "dctcp", "loss": "1"}``) parsed here: ``transport``,
``queue``, ``ecn``, ``ecn_max``, ``ecn_pmax``, ``loss``, ``loss_link``, ``link_delay``,
``queue_samples``, ``max_wall`` and the transport's own (TCP: ``tcp``, ``min_rto``).

``Result.extra["packet"]`` (the ``packet`` block of a simulate.json row): ``wall_s``,
``estimate_wall_s``, ``drops``, ``ecn_marks``,
``lost`` (totals, packets), the transport's counters (totals; TCP: ``retransmissions``,
``retransmitted_bytes``, ``timeouts``),
``peak_queue_bytes`` (switch ports), ``peak_host_nic_bytes`` (sender backlog), ``links_detail``
(per directed link with traffic: name, class, wire bytes, drops, marks, lost, peak queue
bytes; PFC: PAUSEs that stopped its sender, the time paused, and the packets that came in
on it beyond the headroom, ``headroom_drops``), ``pause_frames``, ``headroom_drops``,
``connections`` (per connection with a non-zero counter, its counters), ``rates``
(per rank pair ``"src>dst"`` whose transport changed its rate: ``t_s``, ``bytes_per_s``;
RoCE with DCQCN, at most 400 changes per QP), ``queue``
(sample times and occupancy of the busiest switch ports), ``message_start_s``,
``message_done_s``, ``flow_phase_sync_s``, ``options`` (flat: the transport's own too),
``transport_label`` (the transport's name for a legend, e.g. ``dctcp``).

Example::

    >>> fab = parse_fabric("flat:hosts=4,rate=10G")            # doctest: +SKIP
    >>> r = PacketEngine().run(Job(fab, place(4, fab), ALG, 1 << 20, options={"tcp": "dctcp"}))
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np

from dist_logreg.errors import UsageError
from dist_logreg.sim import flow, ns3net, packet_graph
from dist_logreg.sim.job import Result, job_phases
from dist_logreg.sim.messages import messages
from dist_logreg.sim.packet_floor import (  # noqa: F401  (delayed: read through packet)
    check_resolved,
    delayed,
    link_names,
    per_link,
    utilisation,
)
from dist_logreg.sim.packet_options import PacketOptions, parse_options, vars_of
from dist_logreg.sim.transports import table as transports
from dist_logreg.units import format_seconds

if importlib.util.find_spec("ns") is None or importlib.util.find_spec("cppyy") is None:
    raise ImportError("the ns3 package is not installed")

#: Wall seconds per data packet per hop (its ACKs included), whatever the host count since
#: forwarding is a table lookup (sim/switch.cc): TCP measured 19-22 us at 16-64 hosts on a
#: quiet 2-core machine (benchmarks/bench_packet_scaling.py, docs/packet.md), RoCE 7-9 us;
#: twice TCP's, for a loaded machine.
WALL_PER_PACKET_HOP = 40e-6
QUEUE_LINKS = 16  # queue time series kept for this many ports (the highest peaks)


def network_of(fab, opts: PacketOptions) -> ns3net.Network:
    """The fabric as an ns-3 description: same links, rates and latencies (on the rail
    family with a node per GPU, its port and each NIC: :mod:`.packet_graph`).

    A host's own NIC queue is deep enough never to drop (every connection's window fits),
    no ECN marking: otherwise cubic overflows its own NIC, and a lost last segment of a
    message waits for the RTO (ns-3 has no tail-loss probe). What one TCP connection keeps
    in it is bounded by TCP small queues (``--tsq``, ``transports/tcp.cc``). ``--queue`` and
    ``--ecn`` are the switch ports'; ``--buffer`` a switch's, shared by its ports. On the
    rail family the host's own queues are every link leaving the fabric's host vertex
    (``scaleup-up``, ``nic-up``) and the links the graph adds inside the host.
    """
    graph = packet_graph.graph_of(fab)
    extra = np.zeros(graph.added)
    nic = np.concatenate([fab.node_tier[fab.link_src] == 0, extra == 0])  # a host's own
    conns = graph.hosts * graph.hosts  # upper bound on connections leaving one host
    host_queue = min(opts.transport_options.window_bytes * conns, 1 << 31) + opts.queue
    lat = np.concatenate([delayed(fab, opts).link_latency, extra])
    return ns3net.Network(
        hosts=graph.hosts,
        nodes=graph.nodes,
        link_src=graph.link_src,
        link_dst=graph.link_dst,
        link_rate=graph.link_rate,
        link_latency=lat,
        # with PFC a switch port's queue is bounded by its ingresses' thresholds instead,
        # with a shared buffer by the buffer's dynamic threshold
        queue_bytes=np.where(nic, host_queue, _port_bytes(opts)).astype(np.int64),
        ecn_k=np.where(nic, 0, opts.ecn).astype(np.int64),
        ecn_kmax=np.where(nic, 0, opts.ecn_max).astype(np.int64) if opts.ecn_max else None,
        ecn_pmax=float(opts.ecn_pmax),
        pfc=opts.pfc == "on",
        pfc_xoff=opts.pfc_xoff,
        pfc_xon=opts.pfc_xon,
        pfc_headroom=np.full(lat.size, opts.pfc_headroom) if opts.pfc_headroom else None,
        loss=np.concatenate([per_link(fab, opts.loss_link, opts.loss, "loss-link"), extra]),
        mtu=int(fab.mtu),
        host_rate=float(fab.host_rate),
        hash_seed=int(fab.hash_seed),
        polarize=bool(fab.polarize),
        buffer=int(opts.buffer),
        buffer_alpha=float(opts.buffer_alpha),
        edge_nodes=graph.edge_nodes,
        spray_in_turn=tuple(graph.nic_node.tolist()),  # a NIC spreads a QP evenly
    )


def _port_bytes(opts: PacketOptions) -> int:
    """A switch port's own bound: ``--queue``, or none under PFC, or the shared buffer."""
    if opts.pfc == "on":
        return 1 << 30
    return opts.buffer if opts.buffer else opts.queue


def transfers_of(fab, host_of: np.ndarray, g) -> ns3net.Transfers:
    """One connection per ordered rank pair, on the path the fabric's hash gives it
    (``host_of``: the ranks' endpoints; a connection runs between their ns-3 hosts). With
    ``hash=spray`` on the Clos family ns-3 sprays every packet over the equal-cost paths;
    on the rail family a connection is pinned up to its NIC (its PXN hop included) and
    sprayed from there (:meth:`.packet_graph.Graph.pinned_until`)."""
    p = host_of.size
    key = g.src_rank * p + g.dst_rank
    keys, conn_of = np.unique(key, return_inverse=True)
    src_r, dst_r = keys // p, keys % p
    src_e, dst_e = host_of[src_r], host_of[dst_r]
    graph = packet_graph.graph_of(fab)
    node = graph.endpoint_node
    src_h, dst_h = node[src_e], node[dst_e]
    spray, rails = fab.hash == "spray", bool(graph.connect)
    paths, pins, rates = [], [], []
    for a, b, k in zip(src_e.tolist(), dst_e.tolist(), keys.tolist(), strict=True):
        if node[a] == node[b] or spray and not rails:
            paths.append(None)
            pins.append(0)
            rates.append(0.0)
            continue
        path = graph.path(a, b, fab.route(a, b, k)[0][0])
        paths.append(path)
        pins.append(graph.pinned_until(path) if spray else len(path))
        rates.append(graph.line_rate(path, spray))
    # the sender of message j reduces what it received (message i) before sending on
    edge_src = np.repeat(np.arange(g.size), np.diff(g.dep_indptr))
    received = g.dst_rank[g.dep_indices] == g.src_rank[edge_src]
    edge_delay = np.where(received, g.reduce[g.dep_indices] * fab.gamma, 0.0)
    return ns3net.Transfers(
        conn_src=src_h,
        conn_dst=dst_h,
        conn_path=paths,
        conn_pin=np.asarray(pins, dtype=np.int64) if spray and rails else None,
        conn_rate=np.asarray(rates) if rails else None,
        msg_conn=conn_of,
        msg_bytes=g.nbytes,
        msg_delay=np.full(g.size, fab.alpha),
        dep_indptr=g.dep_indptr,
        dep_indices=g.dep_indices,
        dep_delay=edge_delay,
    )


def estimate_wall_s(
    fab, transfers: ns3net.Transfers, header_bytes: int | None = None, loss: float = 0.0
) -> float:
    """Wall time the run will take: packets x hops x a measured cost per packet-hop.

    ``header_bytes``: the transport's per packet (default: the default transport's).
    ``loss``: the highest loss probability of a link (0..1): a packet crossing ``h`` links
    is sent about ``1 / (1 - loss)^h`` times before it arrives (the timeouts between add
    simulated time, few events); 100% loss is an unbounded run (infinite estimate).
    """
    if header_bytes is None:
        header_bytes = transports.DEFAULT.options_class().header_bytes
    seg = fab.mtu - header_bytes
    sprayed = fab.hash == "spray" and fab.links
    wide = max(2, fab.topology.max_hops) if sprayed else 2
    hops = np.array([wide if p is None else len(p) for p in transfers.conn_path], dtype=float)
    local = transfers.conn_src == transfers.conn_dst
    pkts = (
        np.ceil(np.asarray(transfers.msg_bytes) / seg)
        * np.where(local, 0, hops)[transfers.msg_conn]
    )
    if loss > 0.0:
        if loss >= 1.0:
            return float("inf")
        pkts = pkts * np.exp(-np.log1p(-loss) * np.where(local, 0, hops))[transfers.msg_conn]
    return float(pkts.sum() * WALL_PER_PACKET_HOP)


def _wall(s: float) -> str:
    """An estimate of wall time: hours from 6 minutes, else in its own unit (a 77 ms run
    read "0.0 h ... (0 s > --max-wall 0 s)": thirteenth attack, M-L1)."""
    return f"{s / 3600:.1f} h" if s >= 360 else format_seconds(s, ".3g")


class PacketEngine:
    """ns-3: queues, drops, ECN, congestion control; tens of hosts."""

    name = "packet"

    def __init__(self):
        self.cache = flow.StepCache()
        self._delayed: dict = {}  # (fabric, delays): the delayed fabric, one per pair

    def job_of(self, job):
        """``job`` on the fabric with the ``--link-delay`` delays it runs with (the runner
        checks the result against this job's lower bound)."""
        opts = parse_options(job.options)
        if not opts.link_delay or any(d is job.fabric for _, d in self._delayed.values()):
            return job
        key = (id(job.fabric), tuple(sorted(opts.link_delay.items())))
        if key not in self._delayed:  # the fabric kept: its id stays its own
            self._delayed[key] = (job.fabric, delayed(job.fabric, opts))
        return dataclasses.replace(job, fabric=self._delayed[key][1])

    def prepare(self, job):
        """(options, network, transfers, graph, estimate) of a job; refuses a run too long."""
        from dist_logreg.sim.packet_floor import (
            check_link_rates,
            check_port_bytes,
            check_routing_memory,
        )

        opts = parse_options(job.options)  # the CLI's typed object passes as it is
        check_link_rates(job.fabric, opts.transport)  # before ns-3: a transport must connect
        check_port_bytes(job.fabric, opts)  # and a port must hold two packets
        host_of = np.asarray(job.host_of, dtype=np.int64)
        g = messages(job.algorithm, host_of.size, int(job.nbytes), job.node_of())
        tr = transfers_of(job.fabric, host_of, g)
        loss = float(np.max(per_link(job.fabric, opts.loss_link, opts.loss, "loss-link")))
        est = estimate_wall_s(job.fabric, tr, opts.transport_options.header_bytes, loss)
        if est > opts.max_wall:
            lossy = f" at {loss:.4g} loss per link (resent ~1/(1-p)^hops times)" if loss else ""
            raise UsageError(
                f"--engine packet: this run would take about {_wall(est)} of wall time"
                f"{lossy} ({est:.3g} s > --max-wall {opts.max_wall:.3g} s); use the flow "
                "engine, fewer ranks, fewer bytes or less loss"
            )
        net = network_of(job.fabric, opts)
        check_routing_memory(net)  # before ns-3 builds it
        return opts, net, tr, g, est

    def run(self, job):
        job = self.job_of(job)  # the ideal with the delays ns-3 runs
        opts, net, tr, g, est = self.prepare(job)
        host_of = np.asarray(job.host_of, dtype=np.int64)
        fl = flow.simulate(job.fabric, host_of, job_phases(job), float(job.nbytes), self.cache)
        every = fl["time_s"] / opts.queue_samples if opts.queue_samples else 0.0
        every = max(every, 1e-9) if every else 0.0  # ns-3's step: below it, +0 forever
        stop = max(60.0, 1e4 * fl["time_s"])
        stop += 16 * g.size * float(np.max(net.link_latency, initial=0.0))  # --link-delay
        check_resolved(fl["time_s"], job)  # the flow engine's time first: before ns-3 runs
        res = ns3net.run(net, tr, opts.transport_options, every, stop, seed=int(job.seed))
        if not res.complete:
            raise UsageError(_unfinished(res, tr, host_of, stop))
        time_s = float(np.max(res.msg_done + g.reduce * job.fabric.gamma)) if g.size else 0.0
        check_resolved(time_s, job)
        detail = summarize(job, res, tr, g, time_s)
        options = vars_of(opts)
        detail.update(
            estimate_wall_s=est,
            flow_phase_sync_s=fl["time_s"],
            options=options,
            transport_label=transports.label(options),
        )
        extra = {
            "phase_sync_s": fl["time_s"],
            "cross_leaf_bytes": fl.get("cross_leaf_bytes", 0.0),
            "packet": detail,
        }
        return Result(
            time_s=time_s,
            ideal_s=fl["ideal_s"],
            bottleneck=fl["bottleneck"],
            max_flows_per_uplink=fl["max_flows_per_uplink"],
            collisions=fl["collisions"],
            links=utilisation(job.fabric, res.link_bytes[: job.fabric.links], time_s),
            messages=res.msg_done,
            extra=extra,
        )


def _unfinished(res: ns3net.PacketRun, tr, host_of, stop: float) -> str:
    """One line: the messages that never arrived (the first few) and the time limit."""
    lost = np.flatnonzero(res.msg_done < 0)
    rank_of = {int(h): r for r, h in enumerate(host_of)}
    named = []
    for m in lost[:4]:
        c = int(tr.msg_conn[m])
        src, dst = (rank_of.get(int(x), int(x)) for x in (tr.conn_src[c], tr.conn_dst[c]))
        named.append(f"#{int(m)} rank {src}->{dst} {int(tr.msg_bytes[m])} B")
    more = f", and {lost.size - len(named)} more" if lost.size > len(named) else ""
    return (
        f"--engine packet: {lost.size} of {res.msg_done.size} messages never arrived within "
        f"the simulated time limit of {stop:.4g} s ({'; '.join(named)}{more}); the collective "
        "cannot finish: lower --loss / --loss-link or check the queues"
    )


def summarize(job, res: ns3net.PacketRun, tr, g, time_s: float) -> dict:
    """Result.extra: totals, per-link and per-connection detail, the queue time series."""
    fab = job.fabric
    names = link_names(fab)  # the fabric's links (rails: the links added follow, unnamed)
    busy = np.flatnonzero(res.link_bytes[: fab.links] > 0)
    detail = [
        {
            "link": names[i],
            "class": fab.class_names[int(fab.link_class[i])],
            "wire_bytes": int(res.link_bytes[i]),
            "drops": int(res.link_drops[i]),
            "ecn_marks": int(res.link_marks[i]),
            "lost": int(res.link_loss[i]),
            "peak_queue_bytes": int(res.link_peak[i]),
            "pauses": int(res.link_pauses[i]),
            "paused_s": float(res.link_paused_s[i]),
            "headroom_drops": int(res.link_headroom_drops[i]),
        }
        for i in busy
    ]
    p = np.asarray(job.host_of).size
    keys = np.unique(g.src_rank * p + g.dst_rank)
    counts = res.conn_counts  # the transport's: {name: per connection}
    conns = [
        {"src_rank": int(k // p), "dst_rank": int(k % p)}
        | {name: int(v[c]) for name, v in counts.items()}
        for c, k in enumerate(keys)
        if any(v[c] for v in counts.values())
    ]
    rates = {}  # the transport's rate over time per connection (RoCE: DCQCN), if it keeps one
    for c, t, value in res.series:
        k = int(keys[int(c)])
        mine = rates.setdefault(f"{k // p}>{k % p}", {"t_s": [], "bytes_per_s": []})
        mine["t_s"].append(float(t))
        mine["bytes_per_s"].append(float(value))
    # switch ports: a host's own NIC queue is its socket backlog (network_of), not a buffer
    peak, added = res.link_peak[: fab.links], res.link_peak[fab.links :]
    port_peak = np.where(fab.node_tier[fab.link_src] > 0, peak, 0)
    host_peak = np.concatenate([peak - port_peak, added])
    top = np.argsort(-port_peak, kind="stable")[:QUEUE_LINKS]
    top = [int(i) for i in top if port_peak[i] > 0]
    return {
        "wall_s": res.wall_s,
        "drops": int(res.link_drops.sum()),
        "ecn_marks": int(res.link_marks.sum()),
        "lost": int(res.link_loss.sum()),
        **{name: int(v.sum()) for name, v in counts.items()},
        "pause_frames": int(res.link_pauses.sum()),
        "headroom_drops": int(res.link_headroom_drops.sum()),
        "peak_queue_bytes": int(port_peak.max()) if port_peak.size else 0,
        "peak_host_nic_bytes": int(host_peak.max()) if host_peak.size else 0,
        "links_detail": detail,
        "connections": conns,
        "rates": rates,
        "message_start_s": res.msg_start.tolist(),
        "message_done_s": res.msg_done.tolist(),
        "queue": {
            "t_s": res.queue_t.tolist(),
            "links": {names[i]: res.queue_bytes[:, i].tolist() for i in top}
            if res.queue_t.size
            else {},
        },
    }
