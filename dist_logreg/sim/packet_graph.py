"""The fabric as the packet engine's graph: which ns-3 nodes, which links, which paths.

On the Clos family the fabric's graph is the packet network as it is: its hosts are the
endpoints (one NIC each), the rest switches. On the rail family ranks sit on GPUs, and
the fabric's host vertex stands for everything inside a host that the flow engine does
not model (GPU memory, PCIe); ns-3 needs a node per endpoint, so :func:`graph_of` splits
it:

- a **GPU** node per endpoint (an ns-3 host: the transport runs there; nodes ``0..E-1``);
- a **GPU port** switch per GPU (its NVLink port and its PCIe root: a PXN relay forwards
  there, as NCCL's PXN relays through the peer GPU's memory);
- a **NIC** switch per NIC (its ports are the fabric's ``nic-up``/``nic-down`` links);
- the fabric's other vertices as they are (the scale-up switch, leaves, spines, cores).

GPUs, ports and NICs come first (``edge_nodes``: no PFC ingress, no shared buffer there).
The fabric's links keep their ids (``scaleup-up`` of GPU ``e`` now leaves its port,
``nic-up`` leaves the NIC), so every counter is the flow engine's link; the links added
(GPU <-> its port, port <-> NIC, each at the scale-up rate plus the NIC's over all its
ports, no latency) follow them: no bottleneck the flow engine lacks, never reported as
the fabric's. A path is the flow engine's path with these links put in where it enters
and leaves a host (:meth:`Graph.path`).

Example::

    >>> fab = parse_fabric("rail:hosts-per-unit=2,rails=2,spines=1")  # doctest: +SKIP
    >>> g = graph_of(fab)  # g.hosts: 16 GPUs (8 per host)
    >>> g.path(0, 12, fab.route(0, 12)[0][0])  # GPU 0 to 12 (rail 0 to 1, PXN): link ids
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Graph:
    """Nodes ``0..hosts-1`` are ns-3 hosts (endpoints), the rest switches; the fabric's
    ``fabric_links`` directed links come first, with their ids, then the added ones."""

    hosts: int
    nodes: int
    link_src: np.ndarray
    link_dst: np.ndarray
    link_rate: np.ndarray  # B/s of the added links (the fabric's are the fabric's)
    fabric_links: int
    endpoint_node: np.ndarray  # per endpoint of the fabric: its ns-3 host
    nic_node: np.ndarray  # the NIC switches (a path's choices start there when spraying)
    gpu_port: np.ndarray  # per ns-3 host (a GPU): its port switch
    connect: dict  # (node, node) -> the added link between them
    #: nodes below it are a host's own (GPUs, their ports, NICs): no PFC ingress, no buffer
    edge_nodes: int = 0
    host_link: np.ndarray | None = None  # the fabric's links leaving a host vertex
    nic_link: np.ndarray | None = None  # ... of them, a NIC's port
    nic_ports: int = 1  # ports per NIC (a sprayed flow uses them all)

    @property
    def added(self) -> int:
        return self.link_src.size - self.fabric_links

    def path(self, a: int, b: int, ids) -> list[int]:
        """The links from endpoint ``a``'s node to ``b``'s along the fabric's path ``ids``
        (in path order), the added links put in where the fabric's path skips a node."""
        if not self.connect:
            return [int(i) for i in ids]
        cur, out = int(self.endpoint_node[a]), []
        for link in ids:
            out += self._bridge(cur, int(self.link_src[link]))
            out.append(int(link))
            cur = int(self.link_dst[link])
        return out + self._bridge(cur, int(self.endpoint_node[b]))

    def pinned_until(self, path: list[int]) -> int:
        """How many links of ``path`` (one of a sprayed flow's paths) to pin: up to the
        first NIC it enters; from there the NIC (in turn) and the switches spray over
        their equal-cost links (the NIC's ports, the leaf's spines, the spine's cores), as
        the flow engine splits it. Before it, the path has no choice the fabric would
        spray (PXN or not is the route's, not a choice)."""
        hit = np.flatnonzero(
            np.isin(self.link_dst[np.asarray(path, dtype=np.int64)], self.nic_node)
        )
        return int(hit[0]) + 1 if hit.size else len(path)

    def line_rate(self, path: list[int], sprayed: bool) -> float:
        """The rate a connection on ``path`` leaves its host at, B/s: the slowest of the
        fabric's links leaving the host vertex on it (its GPU's scale-up link, its NIC
        port; a sprayed flow's NIC: every port). 0 off the rail family (the host's NIC)."""
        if not self.connect:
            return 0.0
        own = [int(k) for k in path if k < self.fabric_links and self.host_link[k]]
        ports = self.nic_ports if sprayed else 1
        rates = [self.link_rate[k] * (ports if self.nic_link[k] else 1) for k in own]
        return float(min(rates, default=0.0))

    def _bridge(self, cur: int, want: int) -> list[int]:
        if cur == want:
            return []
        one = self.connect.get((cur, want))
        if one is not None:
            return [one]
        if cur < self.hosts:  # GPU -> its port -> NIC
            mid = int(self.gpu_port[cur])
            return [self.connect[(cur, mid)], *self._bridge(mid, want)]
        if want < self.hosts:  # NIC -> the GPU's port -> GPU
            mid = int(self.gpu_port[want])
            return [*self._bridge(cur, mid), self.connect[(mid, want)]]
        raise ValueError(f"expected an added link from node {cur} to node {want}")


def graph_of(fab) -> Graph:
    """The packet network's graph of ``fab`` (see the module)."""
    from dist_logreg.sim.topology.rail import Rail

    topo = fab.topology
    if not isinstance(topo, Rail):
        return Graph(
            hosts=int(fab.hosts),
            nodes=len(topo.node_names),
            link_src=np.asarray(fab.link_src, dtype=np.int64),
            link_dst=np.asarray(fab.link_dst, dtype=np.int64),
            link_rate=np.asarray(fab.link_rate, dtype=float),
            fabric_links=int(fab.links),
            endpoint_node=np.asarray(topo.endpoint_host, dtype=np.int64),
            nic_node=np.zeros(0, np.int64),
            gpu_port=np.zeros(0, np.int64),
            connect={},
        )
    return _rail_graph(topo)


def _rail_graph(topo) -> Graph:
    sh = topo.shape
    e_n, h_n, r_n = sh.endpoints, sh.hosts, len(topo.node_names)
    port0, nic0 = e_n, 2 * e_n  # GPUs, their ports, NICs; then the fabric's switches
    sw0 = nic0 + h_n * sh.nics
    # the fabric's vertices: a host's links leave its GPU's port (scale-up) or its NIC
    node = np.concatenate([np.full(h_n, -1), sw0 + np.arange(r_n - h_n)]).astype(np.int64)
    src, dst = node[topo.link_src], node[topo.link_dst]
    su, nu0, nd0, up0 = sh.bases()[:4]
    gpu = np.arange(su)
    src[gpu], dst[su + gpu] = port0 + gpu, port0 + gpu
    q_nic = nic0 + np.arange(sh.n_ports) // sh.ports
    src[nu0:nd0], dst[nd0:up0] = q_nic, q_nic
    e = np.arange(e_n)
    port, nic = port0 + e, nic0 + (e // sh.gpus) * sh.nics + sh.rail_of(e % sh.gpus)
    # added cables, each as its two directed links: GPU <-> port, port <-> NIC
    a_src = np.stack([e, port, port, nic], axis=1).reshape(-1)
    a_dst = np.stack([port, e, nic, port], axis=1).reshape(-1)
    # fast enough to add no bottleneck: what the GPU sends into the scale-up switch and
    # its NIC at once
    gpu_rate = sh.nic_rate * sh.ports + (sh.scaleup_rate if sh.gpus > 1 else 0.0)
    n = topo.link_src.size
    ids = n + np.arange(a_src.size)
    cls = np.asarray(topo.link_class)
    return Graph(
        hosts=e_n,
        nodes=sw0 + r_n - h_n,
        link_src=np.concatenate([src, a_src]),
        link_dst=np.concatenate([dst, a_dst]),
        link_rate=np.concatenate([np.asarray(topo.link_rate, float), np.full(ids.size, gpu_rate)]),
        fabric_links=n,
        endpoint_node=e.astype(np.int64),
        nic_node=nic0 + np.arange(h_n * sh.nics),
        gpu_port=port,
        connect=dict(
            zip(zip(a_src.tolist(), a_dst.tolist(), strict=True), ids.tolist(), strict=True)
        ),
        edge_nodes=sw0,
        host_link=np.asarray(topo.node_tier)[topo.link_src] == 0,
        nic_link=cls == topo.class_names.index("nic-up"),
        nic_ports=sh.ports,
    )
