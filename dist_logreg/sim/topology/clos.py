"""The Clos topology (flat, 2-tier, 3-tier): its shape from a parsed spec, links, routes.

One structure covers every preset: ``pods`` pods of ``leaves`` leaves each (per pod),
``spines`` spines per pod, ``hosts`` hosts per leaf, ``cores`` super-spines in
``spines`` planes (spine ``s`` of every pod connects to cores ``s*cores/spines ...``, as in
a k-ary fat tree). ``flat`` is one leaf and no spine; ``leaf-spine`` one pod and no core.

One endpoint per host (endpoint ``e`` is host ``e``). Link ids are laid out by class, so
routing computes them with arithmetic, no lookup (nothing outside this module knows it):

=============  ==============================================  ==================
class          from -> to                                      id
=============  ==============================================  ==================
host-up        host h -> its leaf                              ``h``
host-down      leaf -> host h                                  ``N + h``
leaf-up        leaf l -> spine s of its pod                    ``up0 + l*S + s``
spine-down     spine s of l's pod -> leaf l                    ``dn0 + l*S + s``
spine-up       spine s of pod p -> core ``s*Zs + c``           ``cu0 + (p*S+s)*Zs + c``
core-down      core ``s*Zs + c`` -> spine s of pod p           ``cd0 + (p*S+s)*Zs + c``
=============  ==============================================  ==================

Hashing: each switch with a choice (a leaf picking a spine, a spine picking a core) hashes
the flow (:class:`.base.Ecmp`): ``l3`` the unordered host pair (both directions and every
connection of a pair take one path, as Linux's symmetric L3 hash does), ``l4`` the pair and
the connection, ``spray`` splits the flow evenly over every equal-cost path. With
``polarize`` every switch uses the same function and seed, so a choice made at the leaf
repeats at the spine: on a fat tree of ``k/2`` spines per pod and ``k/2`` cores per spine
only ``k/2`` of the ``k²/4`` cores carry traffic. Without it each switch salts the hash
with its own id. A pinned pair takes its pinned spine.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from dist_logreg.errors import UsageError
from dist_logreg.sim.topology.base import Ecmp, csr

CLASS_NAMES = ("host-up", "host-down", "leaf-up", "spine-down", "spine-up", "core-down")


@dataclass(frozen=True)
class Shape:
    pods: int
    leaves: int  # per pod
    spines: int  # per pod
    hosts: int  # per leaf
    cores: int
    rate: float  # host links, B/s
    uplink_rate: float  # leaf <-> spine, B/s
    core_rate: float  # spine <-> core, B/s

    @property
    def n_hosts(self) -> int:
        return self.pods * self.leaves * self.hosts

    @property
    def n_leaves(self) -> int:
        return self.pods * self.leaves

    @property
    def per_plane(self) -> int:
        """Cores each spine connects to (``Zs``)."""
        return self.cores // self.spines if self.cores else 0

    def bases(self) -> tuple[int, int, int, int, int]:
        """First link id of host-down, leaf-up, spine-down, spine-up, core-down."""
        n, nl, s = self.n_hosts, self.n_leaves, self.spines
        up0 = 2 * n
        dn0 = up0 + nl * s
        cu0 = dn0 + nl * s
        cd0 = cu0 + self.pods * s * self.per_plane
        return n, up0, dn0, cu0, cd0


def _need(values: dict, *keys: str) -> list:
    topo = values["topology"]
    missing = [k for k in keys if k not in values]
    if missing:
        raise UsageError(f"fabric spec: {topo} needs {', '.join(k + '=' for k in missing)}")
    return [values[k] for k in keys]


def _uplink(values: dict, source: dict, hosts: int, spines: int) -> float:
    """Leaf uplink rate: given, from ``oversubscription``, or the host rate (1:1 per spine)."""
    rate = values["rate"]
    if "uplink-rate" in values and "oversubscription" in values:
        raise UsageError("fabric spec: give uplink-rate or oversubscription, not both")
    if "oversubscription" in values:
        source["uplink-rate"] = "derived (oversubscription)"
        return hosts * rate / (spines * values["oversubscription"])
    if "uplink-rate" not in values:
        source["uplink-rate"] = "default (rate)"
    return values.get("uplink-rate", rate)


#: The largest fabric built: about 2 GiB of link arrays and routing at these sizes.
MAX_HOSTS = 1 << 20
MAX_LINKS = 1 << 23


def shape_of(values: dict, source: dict) -> Shape:
    """The :class:`Shape` a parsed spec describes (``source`` gains derived keys); refused
    beyond :data:`MAX_HOSTS` hosts or :data:`MAX_LINKS` directed links, before anything is
    built."""
    sh = _shape_of(values, source)
    n_links = sh.bases()[4] + sh.pods * sh.spines * sh.per_plane
    if sh.n_hosts > MAX_HOSTS or n_links > MAX_LINKS:
        raise UsageError(
            f"fabric spec: {values['topology']}: {sh.n_hosts} hosts and {n_links} directed "
            f"links, expected at most {MAX_HOSTS} hosts and {MAX_LINKS} links"
        )
    return sh


def _shape_of(values: dict, source: dict) -> Shape:
    topo, rate = values["topology"], values["rate"]
    if topo == "flat":
        (hosts,) = _need(values, "hosts")
        return Shape(1, 1, 0, hosts, 0, rate, rate, rate)
    if topo == "leaf-spine":
        leaves, spines, hosts = _need(values, "leaves", "spines", "hosts-per-leaf")
        return Shape(
            1, leaves, spines, hosts, 0, rate, _uplink(values, source, hosts, spines), rate
        )
    if topo == "fat-tree":
        (k,) = _need(values, "k")
        if k % 2 or k < 2:
            raise UsageError(f"fabric spec: k: expected an even radix >= 2, got {k}")
        h = k // 2
        return Shape(k, h, h, h, h * h, rate, rate, rate)
    pods, leaves, spines, hosts, cores = _need(
        values, "pods", "leaves-per-pod", "spines-per-pod", "hosts-per-leaf", "super-spines"
    )
    if cores % spines:
        raise UsageError(
            f"fabric spec: super-spines: expected a multiple of spines-per-pod={spines} "
            f"(each spine reaches its own plane of cores), got {cores}"
        )
    up = _uplink(values, source, hosts, spines)
    if "core-rate" in values and "core-oversubscription" in values:
        raise UsageError("fabric spec: give core-rate or core-oversubscription, not both")
    core = values.get("core-rate", up)
    if "core-oversubscription" in values:
        core = leaves * up / (cores // spines * values["core-oversubscription"])
        source["core-rate"] = "derived (core-oversubscription)"
    elif "core-rate" not in values:
        source["core-rate"] = "default (uplink-rate)"
    return Shape(pods, leaves, spines, hosts, cores, rate, up, core)


def links(sh: Shape) -> tuple[np.ndarray, ...]:
    """``(src, dst, rate, cls)`` of every directed link, in id order (see the table)."""
    n, nl, s, zs = sh.n_hosts, sh.n_leaves, sh.spines, sh.per_plane
    leaf0, spine0 = n, n + nl
    core0 = spine0 + sh.pods * s
    h = np.arange(n)
    leaf_of_h = leaf0 + h // sh.hosts
    lf, sp = np.divmod(np.arange(nl * s), s) if s else (np.zeros(0, int), np.zeros(0, int))
    spine_of = spine0 + (lf // sh.leaves) * s + sp
    ps, c = np.divmod(np.arange(sh.pods * s * zs), zs) if zs else (np.zeros(0, int),) * 2
    spine_u = spine0 + ps
    core_u = core0 + (ps % s) * zs + c if zs else ps
    src = np.concatenate([h, leaf_of_h, leaf0 + lf, spine_of, spine_u, core_u])
    dst = np.concatenate([leaf_of_h, h, spine_of, leaf0 + lf, core_u, spine_u])
    rate = np.concatenate(
        [
            np.full(2 * n, sh.rate),
            np.full(2 * nl * s, sh.uplink_rate),
            np.full(2 * ps.size, sh.core_rate),
        ]
    )
    sizes = [n, n, nl * s, nl * s, ps.size, ps.size]
    cls = np.repeat(np.arange(6, dtype=np.int8), sizes)
    return src.astype(np.int64), dst.astype(np.int64), rate, cls


def switch_names(sh: Shape) -> tuple[str, ...]:
    names = [f"leaf{i}" for i in range(sh.n_leaves)]
    names += [f"spine{i}" for i in range(sh.pods * sh.spines)]
    return tuple(names + [f"core{i}" for i in range(sh.cores)])


def build(values: dict, source: dict) -> Clos:
    """The preset records' ``build``: the Clos a parsed spec describes (``values`` gains
    the derived uplink and core rates)."""
    sh = shape_of(values, source)
    if sh.spines:
        values["uplink-rate"] = sh.uplink_rate
    if sh.cores:
        values["core-rate"] = sh.core_rate
    return Clos(sh, values["link-latency"])


class Clos:
    """A :class:`~dist_logreg.sim.topology.base.Topology`: one :class:`Shape`, its links."""

    class_names = CLASS_NAMES
    uplink_classes = ("leaf-up",)

    def __init__(self, shape: Shape, latency: float):
        self.shape = sh = shape
        self.hosts = sh.n_hosts
        self.link_src, self.link_dst, self.link_rate, self.link_class = links(sh)
        self.link_latency = np.full(self.link_src.size, latency)
        self.node_tier = np.concatenate(
            [
                np.zeros(sh.n_hosts, np.int8),
                np.full(sh.n_leaves, 1, np.int8),
                np.full(sh.pods * sh.spines, 2, np.int8),
                np.full(sh.cores, 3, np.int8),
            ]
        )
        self.endpoint_host = np.arange(sh.n_hosts)
        self.endpoint_up = np.arange(sh.n_hosts)
        self.endpoint_down = sh.n_hosts + np.arange(sh.n_hosts)
        self.max_hops = 2 * int(self.node_tier.max())
        #: (leaves, spines) bool: the leaf-spine cables up (None: all; see ``fail``)
        self.alive = None

    def fail(self, cables) -> Clos:
        """A copy without the leaf-spine cables ``[(leaf, spine of its pod)]``: ECMP hashes
        over the remaining ones; a leaf left without uplinks is an error naming it."""
        sh = self.shape
        out = copy.copy(self)
        alive = np.ones((sh.n_leaves, max(sh.spines, 1)), bool)
        alive[tuple(np.asarray(list(cables), dtype=np.int64).reshape(-1, 2).T)] = False
        dead = np.flatnonzero(~alive.any(axis=1))
        if dead.size:
            raise UsageError(
                f"--scenario: leaf{dead[0]} loses all its {sh.spines} uplinks (no path left)"
            )
        out.alive = alive
        return out

    def _alive_pairs(self, la, lb, cross) -> np.ndarray:
        """(F, spines) bool: the spines both leaves of each flow still reach."""
        ok = self.alive[la] & self.alive[lb]
        bad = cross & ~ok.any(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UsageError(
                f"--scenario: leaf{la[i]} and leaf{lb[i]} share no spine left (no path)"
            )
        return ok

    def _rehash(self, key, la, lb, cross, ecmp: Ecmp, sa) -> np.ndarray:
        """The spine each flow takes when its leaf hashes over the spines left."""
        ok = self._alive_pairs(la, lb, cross)
        count = ok.sum(axis=1)
        out = sa[:, 0].copy()
        for c in np.unique(count[cross]):
            m = cross & (count == c)
            k = ecmp.choose(key[m], self.shape.n_hosts + la[m], int(c))
            out[m] = np.argmax(np.cumsum(ok[m], axis=1) > k[:, None], axis=1)
        return out[:, None]

    @functools.cached_property
    def node_names(self) -> tuple[str, ...]:
        """``host0 ... leaf0 ... spine0 ... core0 ...`` (built when asked: a million hosts)."""
        return tuple(f"host{h}" for h in range(self.hosts)) + switch_names(self.shape)

    def locality(self, level: str) -> np.ndarray:
        per = {"host": 1, "leaf": self.shape.hosts, "pod": self.shape.hosts * self.shape.leaves}
        return self.endpoint_host // per[level]

    def ecmp_groups(self) -> list[np.ndarray]:
        sh = self.shape
        _, up0, dn0, cu0, cd0 = sh.bases()
        out = []
        if sh.spines:
            out.append((up0 + np.arange(dn0 - up0)).reshape(sh.n_leaves, sh.spines))
        if sh.per_plane:
            out.append((cu0 + np.arange(cd0 - cu0)).reshape(-1, sh.per_plane))
        return out

    def describe(self) -> dict:
        return dataclasses.asdict(self.shape)

    def summary(self) -> str:
        sh = self.shape
        return (
            f"{sh.pods} pod(s) x {sh.leaves} leaves x {sh.hosts} hosts, {sh.spines} "
            f"spines/pod, {sh.cores} cores"
        )

    def route_many(self, src, dst, keys, ecmp: Ecmp) -> sp.csr_matrix:
        a, b = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        return csr(self._hops(a, b, np.asarray(keys), ecmp), a.size, self.link_src.size)

    def _hops(self, a, b, keys, ecmp: Ecmp):
        """``(cols, weights)`` both (F, W): the links of each flow, -1 where none."""
        sh = self.shape
        n, up0, dn0, cu0, cd0 = sh.bases()
        s, zs = sh.spines, sh.per_plane
        la, lb = a // sh.hosts, b // sh.hosts
        pa, pb = la // sh.leaves, lb // sh.leaves
        cross_leaf = la != lb
        cross_pod = pa != pb
        f = a.size
        if ecmp.hash == "spray":
            sa = np.broadcast_to(np.arange(max(s, 1)), (f, max(s, 1)))
            ca = np.broadcast_to(np.arange(max(s * zs, 1)), (f, max(s * zs, 1)))
            s_of_c, c_of_c = np.divmod(ca, max(zs, 1))
            w_s = np.where(cross_leaf, 1.0 / max(s, 1), 0.0)[:, None]
            w_c = np.where(cross_pod, 1.0 / max(s * zs, 1), 0.0)[:, None]
            if self.alive is not None:  # spray over the spines both leaves still reach
                ok = self._alive_pairs(la, lb, cross_leaf)
                share = ok / ok.sum(axis=1, keepdims=True)
                w_s = np.where(cross_leaf[:, None], share, 0.0)
                w_c = np.where(cross_pod[:, None], share[:, s_of_c[0]] / max(zs, 1), 0.0)
        else:
            key = ecmp.keys(a, b, keys)
            sa = ecmp.pin(a, b, ecmp.choose(key, n + la, max(s, 1)))[:, None]
            if self.alive is not None:  # the leaf hashes over its remaining uplinks
                sa = self._rehash(key, la, lb, cross_leaf, ecmp, sa)
            spine_node = n + sh.n_leaves + pa * s + sa[:, 0]
            c_of_c = ecmp.choose(key, spine_node, max(zs, 1))[:, None] if zs else sa * 0
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

    def paths(self, src: int, dst: int) -> list[np.ndarray]:
        """Every equal-cost path, spine-major order, each up the tiers then down."""
        sh = self.shape
        if src == dst:
            return []
        n, up0, dn0, cu0, cd0 = sh.bases()
        la, lb = src // sh.hosts, dst // sh.hosts
        pa, pb = la // sh.leaves, lb // sh.leaves
        n_s = 1 if la == lb else sh.spines
        n_c = sh.per_plane if pa != pb else 1
        out = []
        for s in range(n_s):
            if (
                self.alive is not None
                and la != lb
                and not (self.alive[la, s] and self.alive[lb, s])
            ):
                continue
            for c in range(n_c):
                up, down = [src], [n + dst]
                if la != lb:
                    up.append(up0 + la * sh.spines + s)
                    down.insert(0, dn0 + lb * sh.spines + s)
                if pa != pb:
                    zs = sh.per_plane
                    up.append(cu0 + (pa * sh.spines + s) * zs + c)
                    down.insert(0, cd0 + (pb * sh.spines + s) * zs + c)
                out.append(np.array(up + down, dtype=np.int64))
        return out
