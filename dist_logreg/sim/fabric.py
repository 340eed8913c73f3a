"""A described fabric: a topology with the host's parameters and the ECMP hash settings.

Public names (the contract with the engines):

- ``parse_fabric(spec, **overrides) -> Fabric``: a preset of :data:`.spec.PRESETS`
  (``flat:``, ``leaf-spine:``, ``fat-tree:``, ``clos3:``, and any record added), or a
  JSON/TOML file with the same keys; ``overrides``: ``key=(value, source)`` that win.
- ``resolve(spec, cluster_state=None, flows=None) -> (Fabric, spec_text)``: the one path
  from ``--fabric``: a spec, or ``cluster:NAME[,key=value...]`` from the cluster's
  ``state.json`` contents; ``flows``: a ``flows.json`` document whose measured paths are
  replayed (pinned).
- ``cost_model_fabrics(fab, model, label) -> fabric_for(alg, nbytes)``: the fabric with the
  alpha and gamma a fitted cost model gives that algorithm at that size.
- ``Fabric``: ``topology`` (a :class:`~dist_logreg.sim.topology.base.Topology`: links,
  endpoints, routes; its arrays are read through the fabric: ``link_rate``, ``link_class``,
  ...), ``alpha`` (s/message), ``gamma`` (s/byte reduced), ``mtu`` (B), ``host_rate`` (B/s
  inside a host), ``hash`` (``l3|l4|spray``), ``hash_seed``, ``polarize``, ``pinned``
  (``{(src, dst): first choice}``); ``values``/``source``: every parameter and where it
  came from.
- ``Fabric.route_many(src, dst, keys)``: a CSR flows x links matrix of weights
  (scipy.sparse) for flows between endpoints; rows of flows inside one host are empty.
- ``Fabric.route(a, b, flow_key)``: ``[(link_ids in path order, weight)]`` the hash picks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from dist_logreg.collective import costfile
from dist_logreg.errors import UsageError
from dist_logreg.sim import from_cluster
from dist_logreg.sim.spec import PRESETS, parse_spec
from dist_logreg.sim.topology.base import Ecmp, Topology, ordered


@dataclass(frozen=True, eq=False)
class Fabric:
    topology: Topology
    alpha: float
    gamma: float
    mtu: int
    host_rate: float
    hash: str
    hash_seed: int
    polarize: bool
    values: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    #: ``{(src endpoint, dst endpoint): choice}``: paths measured on an emulated fabric.
    pinned: dict = field(default_factory=dict)

    # the topology's arrays, read through the fabric
    hosts = property(lambda self: self.topology.hosts)
    endpoints = property(lambda self: self.topology.endpoint_host.size)
    links = property(lambda self: self.topology.link_src.size)
    link_src = property(lambda self: self.topology.link_src)
    link_dst = property(lambda self: self.topology.link_dst)
    link_rate = property(lambda self: self.topology.link_rate)
    link_latency = property(lambda self: self.topology.link_latency)
    link_class = property(lambda self: self.topology.link_class)
    class_names = property(lambda self: self.topology.class_names)
    node_tier = property(lambda self: self.topology.node_tier)

    @property
    def shape(self):
        """The Clos topology's shape (Clos fabrics only)."""
        return self.topology.shape

    @property
    def ecmp(self) -> Ecmp:
        return Ecmp(self.hash, self.hash_seed, self.polarize, self.pinned)

    def edge_links(self) -> np.ndarray:
        """Mask of the links leaving or reaching an endpoint (the NICs' links, and a
        topology's ``edge_classes``: its scale-up links), shape (L,)."""
        mask = np.zeros(self.links, bool)
        mask[self.topology.endpoint_up] = mask[self.topology.endpoint_down] = True
        for name in getattr(self.topology, "edge_classes", ()):
            mask |= self.link_class == self.class_names.index(name)
        return mask

    @property
    def qps(self) -> int:
        """Queue pairs per connection: N for ``hash=qp:N``, else 1."""
        return int(self.hash[3:]) if self.hash.startswith("qp:") else 1

    def route_many(self, src, dst, keys=None) -> sp.csr_matrix:
        """Flows x links CSR of weights: flow i puts ``w`` of its rate on each of its links.

        ``src``, ``dst``: endpoint of each flow, shape (F,); ``keys``: connection of each
        flow (``l4``), shape (F,), default 0. Flows inside a host have empty rows.
        """
        src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        keys = np.zeros(src.size, dtype=np.int64) if keys is None else np.asarray(keys)
        n = self.qps
        if n == 1:
            return self.topology.route_many(src, dst, keys, self.ecmp)
        # N queue pairs per connection, each hashed as its own l4 flow: N rows of 1/N each,
        # summed back into the connection's row (a flow of N equal parts, as spray's is)
        qp_keys = (np.asarray(keys, dtype=np.int64)[:, None] * 64 + np.arange(n)).ravel()
        ecmp = dataclasses.replace(self.ecmp, hash="l4")
        parts = self.topology.route_many(np.repeat(src, n), np.repeat(dst, n), qp_keys, ecmp)
        rows = np.repeat(np.arange(src.size), n)
        fold = sp.csr_matrix(
            (np.full(rows.size, 1.0 / n), (rows, np.arange(rows.size))), (src.size, rows.size)
        )
        return (fold @ parts).tocsr()

    def route(self, src: int, dst: int, flow_key: int = 0) -> list:
        """``[(link_ids, weight)]`` for one flow: one path (l3/l4), every path (spray)."""
        if self.hash == "spray":
            ps = self.topology.paths(src, dst)
            return [(p, 1.0 / len(ps)) for p in ps]
        if self.qps > 1:
            keys = flow_key * 64 + np.arange(self.qps)
            ecmp = dataclasses.replace(self.ecmp, hash="l4")
            rows = self.topology.route_many([src] * self.qps, [dst] * self.qps, keys, ecmp)
            ids = np.split(rows.indices, rows.indptr[1:-1])
            return [(ordered(self.topology, src, i), 1.0 / self.qps) for i in ids]
        row = self.route_many([src], [dst], [flow_key])
        return [(ordered(self.topology, src, row.indices), 1.0)]


def parse_fabric(spec: str, **overrides) -> Fabric:
    """The fabric ``spec`` describes; ``overrides``: ``key=(value, source)`` that win."""
    values, source = parse_spec(spec, **overrides)
    values = dict(values)
    if "qps" in values:
        if source["hash"] != "default" and values["hash"] != f"qp:{values['qps']}":
            raise UsageError(
                f"fabric spec: qps={values['qps']} and hash={values['hash']}: expected one "
                f"(qps=N is hash=qp:N)"
            )
        values["hash"], source["hash"] = f"qp:{values['qps']}", f"derived (qps={values['qps']})"
    topo = PRESETS[values["topology"]].builder()(values, source)
    return Fabric(
        topology=topo,
        alpha=values["alpha"],
        gamma=values["gamma"],
        mtu=values["mtu"],
        host_rate=values["host-rate"],
        hash=values["hash"],
        hash_seed=values["hash-seed"],
        polarize=values["hash-polarize"],
        values=values,
        source=source,
    )


def resolve(
    spec: str, cluster_state: dict | None = None, flows=None, flows_name: str = "flows.json"
) -> tuple[Fabric, str]:
    """``(fabric, spec_text)`` of ``--fabric``: a spec, or ``cluster:NAME[,key=value...]``
    with that cluster's ``state.json`` contents; ``flows``: a flow map to replay (checked
    against the fabric; ``flows_name`` starts its errors)."""
    is_cluster = spec.strip().lower().startswith("cluster:")
    if is_cluster and cluster_state is None:
        raise UsageError(f"--fabric {spec}: expected the cluster's state, got none")
    over, spines, text = {}, None, spec
    if is_cluster:
        extra = spec.split(":", 1)[1].partition(",")[2]
        preset, over, spines = from_cluster.spec_of(cluster_state, extra)
        text = f"{spec} = {preset}"
        spec = preset
    fab = parse_fabric(spec, **over)
    if flows is not None:
        fab = dataclasses.replace(fab, pinned=from_cluster.pinned(flows, spines, fab, flows_name))
    return fab, text


def cost_model_fabrics(fab: Fabric, model: dict, label):
    """``fabric_for(alg, nbytes)``: alpha (inter-host) and gamma of the model's segment;
    ``model``: a loaded ``model.json``, ``label``: its path, for the sources and errors."""
    cache = {}

    def fabric_for(alg: str, nbytes: int) -> Fabric:
        par, _ = costfile.params(model, alg)
        seg = costfile.segment_of(nbytes, model["breakpoints"])
        alpha, gamma = float(par[seg, 2]), float(par[seg, 4])
        if not (np.isfinite(alpha) and np.isfinite(gamma) and alpha >= 0 and gamma >= 0):
            raise UsageError(
                f"cost model {label}: {alg} segment {seg}: expected finite alpha, gamma >= 0, "
                f"got {alpha!r}, {gamma!r}"
            )
        key = (alpha, gamma)
        if key not in cache:
            src = f"cost model {label} ({alg}, size segment {seg})"
            cache[key] = dataclasses.replace(
                fab,
                alpha=alpha,
                gamma=gamma,
                values={**fab.values, "alpha": alpha, "gamma": gamma},
                source={**fab.source, "alpha": src, "gamma": src},
            )
        return cache[key]

    return fabric_for
