"""The shape of a Clos fabric (flat, 2-tier, 3-tier) from a parsed spec, and its links.

One structure covers every preset: ``pods`` pods of ``leaves`` leaves each (per pod),
``spines`` spines per pod, ``hosts`` hosts per leaf, ``cores`` super-spines in
``spines`` planes (spine ``s`` of every pod connects to cores ``s*cores/spines ...``, as in
a k-ary fat tree). ``flat`` is one leaf and no spine; ``leaf-spine`` one pod and no core.

Link ids are laid out by class, so routing computes them with arithmetic, no lookup:

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dist_logreg.errors import UsageError

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
    if topo in ("leaf-spine", "cluster"):
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
