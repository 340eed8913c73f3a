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
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from dist_logreg import schema
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
    """The fabric ``spec`` describes; ``overrides``: ``key=(value, source)`` that win. A
    fabric file's bad value names the file (it said "fabric spec:": T-M3)."""
    try:
        return _parse_fabric(spec, **overrides)
    except UsageError as exc:
        text, head = str(exc), "fabric spec: "
        if Path(spec.strip()).suffix.lower() in (".json", ".toml") and text.startswith(head):
            raise UsageError(f"fabric file {spec.strip()}: {text[len(head) :]}") from None
        raise


def _parse_fabric(spec: str, **overrides) -> Fabric:
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


# --- a simulate.json's fabric block, rebuilt (``report``, through ``sim/recheck.py``) ------

#: Where a value in ``params`` came from, when the rebuild takes it from the spec text or
#: recomputes it instead of reading it from the block.
_REBUILT = ("default", "derived", "preset")


def rebuild(block: dict, name: str = "fabric") -> Fabric:
    """The fabric ``block`` describes, rebuilt; :class:`schema.Invalid` where the block
    disagrees with it (a key, the shape, the counts) or no fabric can be built from it."""
    spec, params = block.get("spec"), block.get("params")
    if not isinstance(spec, str) or not isinstance(params, dict) or not params:
        raise schema.Invalid(f"{name}", "expected a spec and its params, as simulate writes")
    for key, p in params.items():
        if not isinstance(p, dict) or not isinstance(p.get("source", ""), str):
            raise schema.Invalid(f"{name}.params.{key}", f"expected {{value, source}}, got {p!r}")
        v = p.get("value")
        if not (v is None or isinstance(v, (bool, str)) or schema.is_finite(v)):
            raise schema.Invalid(f"{name}.params.{key}", f"expected a finite value, got {v!r}")
        if v is None and key not in ("alpha", "gamma"):  # null: a cost model's, per algorithm
            raise schema.Invalid(f"{name}.params.{key}", f"expected a value, got {p!r}")  # V-H2
    base = spec.split(" = ", 1)[1] if " = " in spec else spec  # cluster:NAME = its preset
    from_block = Path(base).suffix in (".json", ".toml") or base.lower().startswith("cluster:")
    if from_block:  # a fabric file (perhaps gone) or a cluster's: its keys are in params
        base = f"{(params.get('topology') or {}).get('value')}:"
    model = {k for k, p in params.items() if p.get("source", "").startswith("cost model")}
    over = {}
    for key, p in params.items():
        src = p.get("source", "")
        if key == "topology" or src.startswith(_REBUILT) or (src == "spec" and not from_block):
            continue
        over[key] = (0.0, src) if key in model else (p.get("value"), src)
    try:
        fab = parse_fabric(base, **over)
    except (UsageError, ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise schema.Invalid(f"{name}.spec", f"expected a fabric simulate builds: {exc}") from None
    agree(name, block, fab, model)
    return fab


def agree(name: str, block: dict, fab: Fabric, model: set) -> None:
    """Every key of ``params`` as the rebuilt fabric has it (a cost model's alpha and gamma
    aside), and the block's counts and shape as it builds them."""
    params, spec = block["params"], block["spec"]
    for key in sorted(set(params) | set(fab.values)):
        if key in model:
            continue
        got = params[key].get("value") if key in params else "(no such key)"
        want = fab.values.get(key, "(no such key)")
        if not schema.same(got, want):
            raise schema.unphysical(
                f"{name}.params.{key}",
                f"expected {schema.shown(want)} (what the spec {spec!r} builds), got "
                f"{schema.shown(got)}",
            )
    switches = int((fab.topology.node_tier > 0).sum())
    counts = {"hosts": fab.hosts, "links": fab.links, "switches": switches}
    shape, got_shape = fab.topology.describe(), block.get("shape")
    if not isinstance(got_shape, dict):
        raise schema.Invalid(f"{name}.shape", f"expected the fabric's shape, got {got_shape!r}")
    pairs = [(k, block.get(k, "(no such key)"), v) for k, v in counts.items()]
    keys = sorted(set(shape) | set(got_shape))
    pairs += [(f"shape.{k}", got_shape.get(k, "(none)"), shape.get(k, "(none)")) for k in keys]
    for key, got, want in pairs:
        if not schema.same(got, want):
            raise schema.unphysical(
                f"{name}.{key}",
                f"expected {schema.shown(want)} (what the spec {spec!r} builds), got "
                f"{schema.shown(got)}",
            )
