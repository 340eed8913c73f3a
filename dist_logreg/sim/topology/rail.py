"""Rail-optimized and ToR-wired fabrics of multi-GPU hosts (``rail:``, ``rail3:``, ``tor:``
and the named presets): the topology and its routes. The shape and link ids:
:mod:`.rail_shape`.

Endpoints are GPUs (``e = host * gpus + local``), one rank each. A route from GPU ``a`` to
GPU ``b``:

- same host: ``a``'s scale-up link up, ``b``'s down (the scale-up switch);
- another host, same rail (or ``tor`` wiring, or ``pxn=no``): ``a``'s NIC port up to its
  leaf, through a spine (and a core across pods) if ``b``'s NIC port is on another leaf,
  down to ``b``'s NIC port;
- another host, another rail, ``pxn=yes`` (NCCL's PXN): first over the scale-up switch to
  the GPU of ``a``'s host with ``b``'s local index (it is on ``b``'s rail), then out of
  that GPU's NIC, which shares ``b``'s leaf when both hosts are in one unit.

Choices, each a hash of the flow (:class:`.base.Ecmp`; ``l3`` hashes the NIC pair, ``l4``
the NIC pair and the connection): the port of a two-port NIC (the sender's NIC picks; the
receiving port is the same one with ``planes=2``, else the spine's pick), the spine of
the leaf's plane, the core of the spine's plane. ``spray`` splits a flow evenly over every
such path, ports included.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import scipy.sparse as sp

from dist_logreg.sim.topology import rail_shape
from dist_logreg.sim.topology.base import Ecmp, csr, ordered
from dist_logreg.sim.topology.rail_shape import CLASS_NAMES, RailShape


def build_rail(values: dict, source: dict) -> Rail:
    """``rail:`` (and ``rail3:``, the named presets): rail-optimized wiring."""
    pods = values["topology"] != "rail"
    return Rail(rail_shape.shape_of(values, source, "rail", pods), values["link-latency"])


def build_tor(values: dict, source: dict) -> Rail:
    """``tor:``: the same hosts, leaves and spines, every NIC of a host on one leaf."""
    return Rail(rail_shape.shape_of(values, source, "tor", True), values["link-latency"])


class Rail:
    """A :class:`~dist_logreg.sim.topology.base.Topology` of multi-GPU, multi-NIC hosts."""

    class_names = CLASS_NAMES
    uplink_classes = ("leaf-up",)
    #: links whose capacity the ideal (non-blocking) time keeps: the hosts' own
    edge_classes = ("scaleup-up", "scaleup-down", "nic-up", "nic-down")

    def __init__(self, shape: RailShape, latency: float):
        self.shape = sh = shape
        self.hosts = sh.hosts
        self.link_src, self.link_dst, self.link_rate, self.link_class = rail_shape.links(sh)
        self.link_latency = np.where(self.link_class < 2, sh.scaleup_latency, latency)
        su0, leaf0, spine0, core0 = sh.nodes()
        tiers = [(sh.hosts, 0), (leaf0 - su0, 1), (sh.n_leaves, 1), (sh.n_spines, 2)]
        tiers.append((sh.n_cores, 3))
        self.node_tier = np.repeat(np.array([t for _, t in tiers], np.int8), [n for n, _ in tiers])
        e = np.arange(sh.endpoints)
        self.endpoint_host = e // sh.gpus
        q = (self.endpoint_host * sh.nics + sh.rail_of(e % sh.gpus)) * sh.ports
        b = sh.bases()
        self.endpoint_up, self.endpoint_down = b[1] + q, b[2] + q
        self.max_hops = 4 + (4 if sh.cores_per_plane else 2)

    @functools.cached_property
    def node_names(self) -> tuple[str, ...]:
        sh = self.shape
        names = [f"host{h}" for h in range(sh.hosts)]
        names += [f"scaleup{h}" for h in range(sh.hosts if sh.gpus > 1 else 0)]
        names += [f"leaf{i}" for i in range(sh.n_leaves)]
        names += [f"spine{i}" for i in range(sh.n_spines)]
        return tuple(names + [f"core{i}" for i in range(sh.n_cores)])

    def locality(self, level: str) -> np.ndarray:
        """Group of each GPU at ``host``, ``leaf`` (its NIC's first port), ``unit``, ``pod``,
        or ``rail`` (its NIC's index in the host: the groups a rail-aware 2-D allreduce
        reduces across hosts)."""
        sh = self.shape
        e = np.arange(sh.endpoints)
        h = e // sh.gpus
        if level == "leaf":
            return sh.leaf_of(h, sh.rail_of(e % sh.gpus), 0)
        if level == "rail":
            return sh.rail_of(e % sh.gpus)
        per = {"host": 1, "unit": sh.hosts_per_unit}
        per["pod"] = sh.hosts_per_unit * sh.units_per_pod
        return h // per[level]

    def ecmp_groups(self) -> list[np.ndarray]:
        sh = self.shape
        _, _, _, up0, dn0, cu0, cd0, _ = sh.bases()
        out = [(up0 + np.arange(dn0 - up0)).reshape(sh.n_leaves, sh.per_plane)]
        if sh.cores_per_plane:
            out.append((cu0 + np.arange(cd0 - cu0)).reshape(-1, sh.cores_per_plane))
        return out

    def describe(self) -> dict:
        return dataclasses.asdict(self.shape)

    def summary(self) -> str:
        sh = self.shape
        extra = (", dual-ToR" if sh.dual_tor else "") + (", 2 planes" if sh.planes > 1 else "")
        core = f", {sh.n_cores} cores" if sh.n_cores else ""
        core += f"; {sh.hosts} scale-up switches" if sh.gpus > 1 else ""
        return (
            f"{sh.units} unit(s) x {sh.hosts_per_unit} hosts x {sh.gpus} GPUs, {sh.nics} "
            f"NIC(s)/host x {sh.ports} port(s), {sh.wiring}-wired{extra}; {sh.n_leaves} "
            f"leaves, {sh.pods} pod(s) x {sh.spines} spines{core}"
            + (f"; pxn {'on' if sh.pxn else 'off'}" if sh.wiring == "rail" else "")
        )

    #: ``units -> units``: the smallest valid unit count from ``units`` up, where a preset
    #: builds its shape from the count (superpod-h100: whole pods of 4 beyond 8 units)
    round_units = None

    def size_hint(self, endpoints: int) -> str:
        """The smallest ``units=`` that holds ``endpoints`` GPUs (whole pods)."""
        sh = self.shape
        units = -(-endpoints // (sh.hosts_per_unit * sh.gpus))
        if self.round_units is not None:
            return f"units={self.round_units(units)}"
        if units > sh.units_per_pod and sh.units_per_pod < sh.units or sh.pods > 1:
            units = -(-units // sh.units_per_pod) * sh.units_per_pod
        return f"units={units}"

    def nic_endpoints(self) -> np.ndarray:
        """``(hosts, nics)``: per NIC, the first GPU (endpoint) of its host on its rail: the
        endpoint a NIC's own traffic is routed from (same rail: no scale-up hop, no PXN)."""
        sh = self.shape
        first = np.searchsorted(sh.rail_of(np.arange(sh.gpus)), np.arange(sh.nics))
        return np.arange(sh.hosts)[:, None] * sh.gpus + first[None, :]

    def route_many(self, src, dst, keys, ecmp: Ecmp) -> sp.csr_matrix:
        a, b = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        keys, n = np.asarray(keys), self.link_src.size
        sh = self.shape
        if ecmp.hash != "spray" or sh.ports == 1:
            return csr(self._hops(a, b, keys, ecmp), a.size, n)
        combos = self._port_combos()
        out = sp.csr_matrix((a.size, n))
        for ps, pd in combos:
            out = out + csr(self._hops(a, b, keys, ecmp, (ps, pd)), a.size, n)
        return (out / len(combos)).tocsr()

    def _port_combos(self) -> list[tuple[int, int]]:
        p = range(self.shape.ports)
        if self.shape.planes > 1:
            return [(i, i) for i in p]
        return list(itertools.product(p, p))

    def _ends(self, a, b, key, ecmp: Ecmp, ports):
        """Per flow: the relay GPU (PXN), the sending and receiving NIC ports and leaves."""
        sh = self.shape
        ha, hb, la, lb = a // sh.gpus, b // sh.gpus, a % sh.gpus, b % sh.gpus
        cross = ha != hb
        pxn = cross & (sh.rail_of(la) != sh.rail_of(lb)) & sh.pxn & (sh.wiring == "rail")
        relay = np.where(pxn, ha * sh.gpus + lb, a)
        nic_s = ha * sh.nics + sh.rail_of(relay % sh.gpus)
        nic_d = hb * sh.nics + sh.rail_of(lb)
        n_nodes = self.node_tier.size
        if ports is not None:
            p_s, p_d = np.full(a.size, ports[0]), np.full(a.size, ports[1])
        elif sh.ports == 1:
            p_s = p_d = np.zeros(a.size, np.int64)
        else:
            p_s = ecmp.choose(key, n_nodes + nic_s, sh.ports)
            p_d = p_s if sh.planes > 1 else ecmp.choose(key, 2 * n_nodes + nic_d, sh.ports)
        leaf_s = sh.leaf_of(ha, nic_s % sh.nics, p_s)
        # a ToR cabled to the receiving NIC delivers itself (its host route is shortest)
        p_d = np.where(sh.leaf_of(hb, nic_d % sh.nics, p_s) == leaf_s, p_s, p_d)
        leaf_d = sh.leaf_of(hb, nic_d % sh.nics, p_d)
        return cross, pxn, relay, nic_s * sh.ports + p_s, nic_d * sh.ports + p_d, leaf_s, leaf_d

    def _hops(self, a, b, keys, ecmp: Ecmp, ports=None, force=None):
        """``(cols, weights)`` both (F, W): the links of each flow, weight 0 where none.
        ``ports``: ``(sending, receiving)`` port of every flow; ``force``: ``(spine, core)``
        of every flow (to list the paths)."""
        sh = self.shape
        su, nu0, nd0, up0, dn0, cu0, cd0, _ = sh.bases()
        _, leaf0, spine0, _ = sh.nodes()
        nic_a = a // sh.gpus * sh.nics + sh.rail_of(a % sh.gpus)
        key = ecmp.keys(nic_a, b // sh.gpus * sh.nics + sh.rail_of(b % sh.gpus), keys)
        cross, pxn, relay, q_s, q_d, leaf_s, leaf_d = self._ends(a, b, key, ecmp, ports)
        same_host = ~cross & (a != b)
        pod_s, pod_d = sh.pod_of_leaf(leaf_s), sh.pod_of_leaf(leaf_d)
        cross_leaf, cross_pod = cross & (leaf_s != leaf_d), cross & (pod_s != pod_d)
        spp, z = sh.per_plane, max(sh.cores_per_plane, 1)
        base = pod_s * sh.spines + sh.plane_of_leaf(leaf_s) * spp
        base_d = pod_d * sh.spines + sh.plane_of_leaf(leaf_s) * spp
        if ecmp.hash == "spray":
            j = np.broadcast_to(np.arange(spp), (a.size, spp))
            jc, c = np.divmod(np.broadcast_to(np.arange(spp * z), (a.size, spp * z)), z)
            w_s = np.where(cross_leaf, 1.0 / spp, 0.0)[:, None]
            w_c = np.where(cross_pod, 1.0 / (spp * z), 0.0)[:, None]
        else:
            j = ecmp.pin(a, b, ecmp.choose(key, leaf0 + leaf_s, spp))[:, None]
            c = ecmp.choose(key, spine0 + base + j[:, 0], z)[:, None]
            if force is not None:
                j, c = np.full_like(j, force[0]), np.full_like(c, force[1])
            jc, w_s, w_c = j, cross_leaf[:, None] * 1.0, cross_pod[:, None] * 1.0
        local = (same_host | pxn).astype(float)[:, None]
        down = np.where(same_host, b, relay)
        cols = np.hstack(
            [
                a[:, None],  # weight 0 when there is no scale-up switch (one GPU)
                su + down[:, None],
                nu0 + q_s[:, None],
                nd0 + q_d[:, None],
                up0 + leaf_s[:, None] * spp + j,
                dn0 + leaf_d[:, None] * spp + j,
                cu0 + (base[:, None] + jc) * z + c,
                cd0 + (base_d[:, None] + jc) * z + c,
            ]
        )
        nic = cross.astype(float)[:, None]
        w = np.hstack(
            [
                local * (su > 0),
                local * (su > 0),
                nic,
                nic,
                np.broadcast_to(w_s, j.shape),
                np.broadcast_to(w_s, j.shape),
                np.broadcast_to(w_c, jc.shape),
                np.broadcast_to(w_c, jc.shape),
            ]
        )
        return cols, w

    def paths(self, src: int, dst: int) -> list[np.ndarray]:
        """Every equal-cost path (ports, spine, core), each in path order."""
        if src == dst:
            return []
        sh = self.shape
        z = max(sh.cores_per_plane, 1)
        a, b = np.array([src]), np.array([dst])
        seen, out = set(), []
        ports = self._port_combos() if sh.ports > 1 else [(0, 0)]
        for pp, j, c in itertools.product(ports, range(sh.per_plane), range(z)):
            cols, w = self._hops(a, b, np.zeros(1, np.int64), Ecmp(), pp, (j, c))
            ids = tuple(sorted(set(cols[0][w[0] > 0].tolist())))
            if ids not in seen:
                seen.add(ids)
                out.append(ordered(self, src, ids))
        return out


def build_superpod(values: dict, source: dict) -> Rail:
    """``superpod-h100``: spines and pods follow the unit count as in NVIDIA's reference
    table (up to 8 units: two tiers, 4 spines per unit; beyond: pods of 4 units with 32
    spines each, a core tier); what the spec gives wins."""
    units, given = values["units"], values.get("units-per-pod")
    shape = {"spines": 4 * units} if units <= 8 else {"spines": 32, "units-per-pod": 4}
    for key, value in shape.items():
        if key not in values:
            values[key], source[key] = value, "preset superpod-h100 (reference table)"
    rail = build_rail(values, source)

    def whole_pods(n: int) -> int:  # the units-per-pod the spec gives, else the table's
        step = given or (4 if n > 8 else 1)
        return -(-n // step) * step

    rail.round_units = whole_pods
    return rail
