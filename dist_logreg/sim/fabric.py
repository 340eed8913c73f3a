"""A described fabric: hosts, switches, directed links, and the ECMP choice of every flow.

Public names (the contract with the packet engine):

- ``parse_fabric(spec, **overrides) -> Fabric``: a preset (``flat:``, ``leaf-spine:``,
  ``fat-tree:``, ``clos3:``), a JSON/TOML file with the same keys, or ``cluster:NAME``
  with the cluster's keys handed in as ``overrides`` (see :mod:`.cluster`). Keys, units and
  defaults: :data:`dist_logreg.sim.spec.KEYS`.
- ``Fabric``: ``hosts`` (nodes ``0..hosts-1`` are hosts, then switches), ``switch_names``,
  ``node_tier`` (0 host, 1 leaf, 2 spine, 3 core), directed links as equal-length arrays
  ``link_src``, ``link_dst``, ``link_rate`` (B/s), ``link_latency`` (s), ``link_class``
  (index into ``class_names``: ``host-up host-down leaf-up spine-down spine-up
  core-down``), ``alpha`` (s/message), ``gamma`` (s/byte reduced), ``mtu`` (B),
  ``host_rate`` (B/s inside a host), ``hash`` (``l3|l4|spray``), ``hash_seed``,
  ``polarize``; ``values``/``source``: every parameter and where it came from.
- ``Fabric.paths(a, b)``: every equal-cost path (arrays of link ids), fixed order.
- ``Fabric.route(a, b, flow_key)``: ``[(link_ids, weight)]`` the hash picks.
- ``Fabric.route_many(src, dst, keys)``: the same for many flows, a CSR flows x links
  matrix of weights (scipy.sparse), rows of flows inside one host are empty.

Hashing. Each switch with a choice (a leaf picking a spine, a spine picking a core) hashes
the flow: ``l3`` the unordered host pair (both directions and every connection of a pair
take one path, as Linux's symmetric L3 hash does), ``l4`` the pair and the connection
(``flow_key``), ``spray`` splits the flow evenly over every equal-cost path. With
``polarize`` every switch uses the same function and seed, so a choice made at the leaf
repeats at the spine: on a fat tree of ``k/2`` spines per pod and ``k/2`` cores per spine
only ``k/2`` of the ``k²/4`` cores carry traffic. Without it each switch salts the hash
with its own id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from dist_logreg.sim.spec import parse_spec
from dist_logreg.sim.topology import CLASS_NAMES, Shape, links, shape_of, switch_names

_M1, _M2, _G = (
    np.uint64(0xBF58476D1CE4E5B9),
    np.uint64(0x94D049BB133111EB),
    np.uint64(0x9E3779B97F4A7C15),
)


def mix(x) -> np.ndarray:
    """splitmix64 of each element (uint64, wrapping): a good, vectorised hash."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _G
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


@dataclass(frozen=True, eq=False)
class Fabric:
    shape: Shape
    hosts: int
    switch_names: tuple
    node_tier: np.ndarray
    link_src: np.ndarray
    link_dst: np.ndarray
    link_rate: np.ndarray
    link_latency: np.ndarray
    link_class: np.ndarray
    alpha: float
    gamma: float
    mtu: int
    host_rate: float
    hash: str
    hash_seed: int
    polarize: bool
    values: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    #: ``{(src host, dst host): spine}``: paths measured on an emulated fabric, replayed.
    pinned: dict = field(default_factory=dict)
    class_names: tuple = CLASS_NAMES

    @property
    def links(self) -> int:
        return self.link_src.size

    def leaf_of(self, host) -> np.ndarray:
        return np.asarray(host) // self.shape.hosts

    def _choice(self, key: np.ndarray, switch: np.ndarray, n: int) -> np.ndarray:
        """The equal-cost next hop (0..n-1) each switch picks for each flow key."""
        salt = np.uint64(self.hash_seed) * np.uint64(1_000_003)
        if not self.polarize:
            salt = mix(mix(np.asarray(switch, dtype=np.uint64)) ^ salt)
        return (mix(key ^ mix(salt)) % np.uint64(n)).astype(np.int64)

    def _keys(self, a: np.ndarray, b: np.ndarray, keys: np.ndarray) -> np.ndarray:
        if self.hash == "l3":
            lo, hi = np.minimum(a, b).astype(np.uint64), np.maximum(a, b).astype(np.uint64)
            return mix((lo << np.uint64(32)) | hi)
        pair = (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)
        return mix(pair ^ mix(np.asarray(keys, dtype=np.uint64) + np.uint64(7)))

    def _hops(self, a, b, keys):
        """``(cols, weights)`` both (F, W): the links of each flow, -1 where none."""
        sh = self.shape
        n, up0, dn0, cu0, cd0 = sh.bases()
        s, zs = sh.spines, sh.per_plane
        la, lb = a // sh.hosts, b // sh.hosts
        pa, pb = la // sh.leaves, lb // sh.leaves
        cross_leaf = la != lb
        cross_pod = pa != pb
        f = a.size
        if self.hash == "spray":
            sa = np.broadcast_to(np.arange(max(s, 1)), (f, max(s, 1)))
            ca = np.broadcast_to(np.arange(max(s * zs, 1)), (f, max(s * zs, 1)))
            s_of_c, c_of_c = np.divmod(ca, max(zs, 1))
            w_s = np.where(cross_leaf, 1.0 / max(s, 1), 0.0)[:, None]
            w_c = np.where(cross_pod, 1.0 / max(s * zs, 1), 0.0)[:, None]
        else:
            key = self._keys(a, b, keys)
            sa = self._choice(key, n + la, max(s, 1))[:, None]
            if self.pinned:
                sa = self._pin(a, b, sa)
            spine_node = n + sh.n_leaves + pa * s + sa[:, 0]
            c_of_c = self._choice(key, spine_node, max(zs, 1))[:, None] if zs else sa * 0
            s_of_c = sa
            w_s = cross_leaf.astype(float)[:, None]
            w_c = cross_pod.astype(float)[:, None]
        host = np.ones((f, 1))
        plane = (pa[:, None] * s + s_of_c) * zs + c_of_c
        plane_b = (pb[:, None] * s + s_of_c) * zs + c_of_c
        cols = np.hstack(
            [
                a[:, None],
                n + b[:, None],
                up0 + la[:, None] * s + sa,
                dn0 + lb[:, None] * s + sa,
                cu0 + plane,
                cd0 + plane_b,
            ]
        )
        w = np.hstack(
            [
                host,
                host,
                np.broadcast_to(w_s, sa.shape),
                np.broadcast_to(w_s, sa.shape),
                np.broadcast_to(w_c, plane.shape),
                np.broadcast_to(w_c, plane.shape),
            ]
        )
        w = np.where((a == b)[:, None], 0.0, w)
        return cols, w

    def _pin(self, a, b, sa):
        out = sa.copy()
        for i, pair in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            if pair in self.pinned:
                out[i, 0] = self.pinned[pair]
        return out

    def route_many(self, src, dst, keys=None) -> sp.csr_matrix:
        """Flows x links CSR of weights: flow i puts ``w`` of its rate on each of its links.

        ``src``, ``dst``: host of each flow, shape (F,); ``keys``: connection of each flow
        (``l4``), shape (F,), default 0. Flows inside a host have empty rows.
        """
        a, b = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        keys = np.zeros(a.size, dtype=np.int64) if keys is None else np.asarray(keys)
        cols, w = self._hops(a, b, keys)
        keep = w > 0
        rows = np.broadcast_to(np.arange(a.size)[:, None], cols.shape)[keep]
        m = sp.csr_matrix((w[keep], (rows, cols[keep])), shape=(a.size, self.links))
        m.sum_duplicates()
        return m

    def route(self, src_host: int, dst_host: int, flow_key: int = 0) -> list:
        """``[(link_ids, weight)]`` for one flow: one path (l3/l4), every path (spray)."""
        if self.hash == "spray":
            ps = self.paths(src_host, dst_host)
            return [(p, 1.0 / len(ps)) for p in ps]
        row = self.route_many([src_host], [dst_host], [flow_key])
        return [(self._ordered(row.indices), 1.0)]

    def _ordered(self, ids) -> np.ndarray:
        """Link ids in path order: up the tiers, then down."""
        order = {0: 0, 2: 1, 4: 2, 5: 3, 3: 4, 1: 5}
        return np.array(sorted(ids, key=lambda i: order[int(self.link_class[i])]), dtype=np.int64)

    def paths(self, src_host: int, dst_host: int) -> list:
        """Every equal-cost path from ``src_host`` to ``dst_host``, spine-major order."""
        sh = self.shape
        if src_host == dst_host:
            return []
        la, lb = src_host // sh.hosts, dst_host // sh.hosts
        n_s = 1 if la == lb else sh.spines
        n_c = sh.per_plane if la // sh.leaves != lb // sh.leaves else 1
        out = []
        for s in range(n_s):
            for c in range(n_c):
                cols, w = self._hops(np.array([src_host]), np.array([dst_host]), np.zeros(1, int))
                cols = self._fixed(cols[0], w[0], s, c)
                out.append(self._ordered(cols))
        return out

    def _fixed(self, cols, w, s, c):
        """The link ids of the path through spine ``s`` and core ``c`` (from a routed row)."""
        sh = self.shape
        n, up0, dn0, cu0, cd0 = sh.bases()
        a = int(cols[0])
        b = int(cols[1]) - n
        la, lb = a // sh.hosts, b // sh.hosts
        pa, pb = la // sh.leaves, lb // sh.leaves
        ids = [a, n + b]
        if la != lb:
            ids += [up0 + la * sh.spines + s, dn0 + lb * sh.spines + s]
        if pa != pb:
            zs = sh.per_plane
            ids += [cu0 + (pa * sh.spines + s) * zs + c, cd0 + (pb * sh.spines + s) * zs + c]
        return ids


def parse_fabric(spec: str, **overrides) -> Fabric:
    """The fabric ``spec`` describes; ``overrides``: ``key=(value, source)`` that win."""
    values, source = parse_spec(spec, **overrides)
    sh = shape_of(values, source)
    src, dst, rate, cls = links(sh)
    names = switch_names(sh)
    tier = np.concatenate(
        [
            np.zeros(sh.n_hosts, np.int8),
            np.full(sh.n_leaves, 1, np.int8),
            np.full(sh.pods * sh.spines, 2, np.int8),
            np.full(sh.cores, 3, np.int8),
        ]
    )
    values = dict(values)
    if sh.spines:
        values["uplink-rate"] = sh.uplink_rate
    if sh.cores:
        values["core-rate"] = sh.core_rate
    return Fabric(
        shape=sh,
        hosts=sh.n_hosts,
        switch_names=names,
        node_tier=tier,
        link_src=src,
        link_dst=dst,
        link_rate=rate,
        link_latency=np.full(src.size, values["link-latency"]),
        link_class=cls,
        alpha=values["alpha"],
        gamma=values["gamma"],
        mtu=values["mtu"],
        host_rate=values["host-rate"],
        hash=values["hash"],
        hash_seed=values["hash-seed"],
        polarize=values["hash-polarize"],
        values=values,
        source=source,
        pinned=dict(values.get("pinned", {})),
    )
