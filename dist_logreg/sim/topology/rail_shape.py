"""The shape of a rail-optimized (or ToR-wired) fabric of multi-GPU hosts, and its links.

A host has ``gpus`` GPUs (the endpoints: one rank each) joined by a scale-up switch
(NVLink/NVSwitch class: one link pair per GPU, ``scaleup_rate`` each way), and ``nics``
NICs of ``ports`` ports each; GPU ``g`` of a host uses NIC ``g * nics // gpus`` (its rail).
Hosts come in ``units`` scalable units of ``hosts_per_unit``; a unit has ``nics * tors``
leaves (``tors``: 2 with ``dual_tor``, each port of a NIC on its own ToR of a pair).

- ``rail`` wiring: port ``t`` of NIC ``n`` of every host of unit ``u`` goes to leaf
  ``(u, n, t)``; traffic on one rail of one unit never leaves its leaf.
- ``tor`` wiring (the baseline): the same leaves and ports, but every NIC of a host on one
  leaf: host ``k`` of a unit on leaf ``k // (hosts_per_unit / nics)``.

Units are grouped into pods of ``units_per_pod``; every leaf of a pod reaches every spine
of its plane in the pod (``spines`` per pod, split evenly over ``planes``; with 2 planes,
the ToR of port ``t`` only reaches plane ``t``). With more than one pod, spine ``s`` of
every pod reaches its ``cores_per_plane`` cores (as in ``clos3``).

Link ids, laid out by class so routes are arithmetic (``E`` GPUs, ``Q`` NIC ports, ``NL``
leaves, ``spp`` spines per plane, ``NS`` spines, ``Z`` cores per plane):

==============  =================================  ==============================
class           from -> to                         id
==============  =================================  ==============================
scaleup-up      host of GPU e -> its scale-up sw   ``e``
scaleup-down    scale-up sw -> host of GPU e       ``E + e``
nic-up          port q of a host -> its leaf       ``nu0 + q``, q = (h*N + n)*P + p
nic-down        leaf -> port q                     ``nd0 + q``
leaf-up         leaf l -> spine j of its plane     ``up0 + l*spp + j``
spine-down      spine j of l's plane -> leaf l     ``dn0 + l*spp + j``
spine-up        spine s of pod p -> core s*Z + c   ``cu0 + (p*S + s)*Z + c``
core-down       core s*Z + c -> spine s of pod p   ``cd0 + (p*S + s)*Z + c``
==============  =================================  ==============================

(The scale-up links come first: a path read from the host node takes its scale-up hop
before its NIC.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dist_logreg.errors import UsageError
from dist_logreg.sim.topology.clos import MAX_HOSTS, MAX_LINKS

CLASS_NAMES = (
    "scaleup-up",
    "scaleup-down",
    "nic-up",
    "nic-down",
    "leaf-up",
    "spine-down",
    "spine-up",
    "core-down",
)


@dataclass(frozen=True)
class RailShape:
    wiring: str  # "rail" or "tor"
    units: int
    hosts_per_unit: int
    gpus: int  # per host
    nics: int  # per host (rails)
    ports: int  # per NIC
    dual_tor: bool
    planes: int
    units_per_pod: int
    spines: int  # per pod
    cores_per_plane: int  # 0: two tiers
    rate: float  # a NIC port, as sold (B/s)
    nic_rate: float  # a NIC port's link: rate x nic-efficiency (B/s)
    uplink_rate: float  # leaf <-> spine (B/s)
    core_rate: float  # spine <-> core (B/s)
    scaleup_rate: float  # each GPU's link to its scale-up switch, each way (B/s)
    scaleup_latency: float  # s, per scale-up hop
    pxn: bool

    hosts = property(lambda s: s.units * s.hosts_per_unit)
    endpoints = property(lambda s: s.hosts * s.gpus)
    tors = property(lambda s: s.ports if s.dual_tor else 1)
    leaves_per_unit = property(lambda s: s.nics * s.tors)
    n_leaves = property(lambda s: s.units * s.leaves_per_unit)
    pods = property(lambda s: s.units // s.units_per_pod)
    per_plane = property(lambda s: s.spines // s.planes)
    n_spines = property(lambda s: s.pods * s.spines)
    n_cores = property(lambda s: s.spines * s.cores_per_plane)
    n_ports = property(lambda s: s.hosts * s.nics * s.ports)
    n_scaleup = property(lambda s: s.endpoints if s.gpus > 1 else 0)

    def bases(self) -> tuple[int, ...]:
        """First link id of scaleup-down, nic-up, nic-down, leaf-up, spine-down, spine-up,
        core-down, and the number of links."""
        su, q, ls = self.n_scaleup, self.n_ports, self.n_leaves * self.per_plane
        sc = self.n_spines * self.cores_per_plane
        nu0 = 2 * su
        up0 = nu0 + 2 * q
        cu0 = up0 + 2 * ls
        return su, nu0, nu0 + q, up0, up0 + ls, cu0, cu0 + sc, cu0 + 2 * sc

    def nodes(self) -> tuple[int, int, int, int]:
        """First node id of the scale-up switches, leaves, spines, cores."""
        su0 = self.hosts
        leaf0 = su0 + (self.hosts if self.gpus > 1 else 0)
        return su0, leaf0, leaf0 + self.n_leaves, leaf0 + self.n_leaves + self.n_spines

    def rail_of(self, local) -> np.ndarray:
        """The NIC (rail) GPU ``local`` of a host uses: ``local * nics // gpus``."""
        return np.asarray(local) * self.nics // self.gpus

    def leaf_of(self, host, nic, port) -> np.ndarray:
        """The leaf port ``port`` of NIC ``nic`` of ``host`` is cabled to."""
        host, nic, port = (np.asarray(x, dtype=np.int64) for x in (host, nic, port))
        unit, t = host // self.hosts_per_unit, port % self.tors
        if self.wiring == "rail":
            return unit * self.leaves_per_unit + nic * self.tors + t
        group = (host % self.hosts_per_unit) // (self.hosts_per_unit // self.nics)
        return unit * self.leaves_per_unit + group * self.tors + t

    def pod_of_leaf(self, leaf) -> np.ndarray:
        return np.asarray(leaf) // self.leaves_per_unit // self.units_per_pod

    def plane_of_leaf(self, leaf) -> np.ndarray:
        return (np.asarray(leaf) % self.tors) % self.planes


def links(sh: RailShape) -> tuple[np.ndarray, ...]:
    """``(src, dst, rate, cls)`` of every directed link, in id order (the module's table)."""
    su0, leaf0, spine0, core0 = sh.nodes()
    e = np.arange(sh.n_scaleup)
    su_h = e // sh.gpus
    q = np.arange(sh.n_ports)
    nic, port = np.divmod(q, sh.ports)
    host = nic // sh.nics
    leaf_q = leaf0 + sh.leaf_of(host, nic % sh.nics, port)
    lf, j = np.divmod(np.arange(sh.n_leaves * sh.per_plane), sh.per_plane)
    spine_l = spine0 + sh.pod_of_leaf(lf) * sh.spines + sh.plane_of_leaf(lf) * sh.per_plane + j
    z = max(sh.cores_per_plane, 1)
    ps, c = np.divmod(np.arange(sh.n_spines * sh.cores_per_plane), z)
    core_c = core0 + (ps % sh.spines) * z + c
    src = [su_h, su0 + su_h, host, leaf_q, leaf0 + lf, spine_l, spine0 + ps, core_c]
    dst = [su0 + su_h, su_h, leaf_q, host, spine_l, leaf0 + lf, core_c, spine0 + ps]
    sizes = [x.size for x in src]
    rates = [sh.scaleup_rate] * 2 + [sh.nic_rate] * 2 + [sh.uplink_rate] * 2 + [sh.core_rate] * 2
    rate = np.repeat(np.array(rates, dtype=float), sizes)
    cls = np.repeat(np.arange(len(CLASS_NAMES), dtype=np.int8), sizes)
    return np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64), rate, cls


def _opt(values, key, default):
    return values[key] if key in values else default


def _nics(values: dict, source: dict) -> int:
    """NICs per host from ``rails`` or ``nics-per-host`` (a named preset's value yields to
    the spec's); written back into ``rails``."""
    for key, other in (("rails", "nics-per-host"), ("nics-per-host", "rails")):
        if key in values and other in values and source[key].startswith("preset"):
            del values[key]
    rails, nics = values.get("rails"), values.get("nics-per-host")
    if rails is not None and nics is not None and rails != nics:
        raise UsageError(
            f"fabric spec: rails={rails} and nics-per-host={nics}: expected one (the same thing)"
        )
    n = nics or rails or 8
    if n not in (1, 2, 4, 8):
        raise UsageError(f"fabric spec: rails: expected 1, 2, 4 or 8 NICs per host, got {n}")
    if "rails" not in values:
        values["rails"] = n
        source["rails"] = "derived (nics-per-host)" if nics else "default (8)"
    return n


def _check(cond: bool, text: str) -> None:
    if not cond:
        raise UsageError(f"fabric spec: {text}")


def shape_of(values: dict, source: dict, wiring: str, pods: bool) -> RailShape:
    """The :class:`RailShape` a parsed spec describes; ``values`` gains the derived rates.

    ``pods``: a core tier may be built (``rail3``, the named presets)."""
    topo = values["topology"]
    missing = [k for k in ("hosts-per-unit", "spines") if k not in values]
    _check(not missing, f"{topo} needs {', '.join(k + '=' for k in missing)}")
    nics, gpus = _nics(values, source), values["gpus-per-host"]
    hpu, units, spines = values["hosts-per-unit"], values["units"], values["spines"]
    ports, planes, dual = values["nic-ports"], values["planes"], values["dual-tor"]
    _check(gpus % nics == 0, f"gpus-per-host: expected a multiple of rails={nics}, got {gpus}")
    _check(ports in (1, 2), f"nic-ports: expected 1 or 2, got {ports}")
    _check(planes in (1, 2), f"planes: expected 1 or 2, got {planes}")
    _check(not dual or ports == 2, "dual-tor=yes: expected nic-ports=2 (one port per ToR)")
    _check(planes == 1 or dual, "planes=2: expected dual-tor=yes (ToR k of a pair in plane k)")
    _check(spines % planes == 0, f"spines: expected a multiple of planes={planes}, got {spines}")
    _check(
        wiring == "rail" or hpu % nics == 0,
        f"hosts-per-unit: expected a multiple of rails={nics} (tor: hosts split over the "
        f"unit's leaves), got {hpu}",
    )
    core_keys = ("units-per-pod", "cores-per-plane", "core-rate", "core-oversubscription")
    given = [k for k in core_keys if k in values and not pods]
    _check(not given, f"{given[0] if given else ''}: a key of rail3 ({topo} has two tiers)")
    upp = units
    if pods and "units-per-pod" in values:
        upp = min(values["units-per-pod"], units)
        _check(
            units % upp == 0,
            f"units: expected a multiple of units-per-pod={upp} (whole pods), got {units}",
        )
    elif pods:
        _check(topo != "rail3", "rail3 needs units-per-pod=")
    eff = values["nic-efficiency"]
    _check(0 < eff <= 1, f"nic-efficiency: expected a number in (0, 1], got {eff}")
    rate = values["rate"]
    tors = ports if dual else 1
    leaf_down = hpu * ports // tors * rate  # every leaf: one port (two without dual-tor)/host
    up = _rate(values, source, "uplink-rate", "oversubscription", leaf_down, spines // planes)
    n_pods = units // upp
    z = 0 if n_pods == 1 else _opt(values, "cores-per-plane", max(1, n_pods // 2))
    core = up
    if z:
        leaves = upp * nics * tors // planes  # a spine's leaves
        core = _rate(values, source, "core-rate", "core-oversubscription", leaves * up, z)
        values.setdefault("cores-per-plane", z)
        source.setdefault("cores-per-plane", "default (pods / 2)")
    sh = RailShape(
        wiring=wiring,
        units=units,
        hosts_per_unit=hpu,
        gpus=gpus,
        nics=nics,
        ports=ports,
        dual_tor=dual,
        planes=planes,
        units_per_pod=upp,
        spines=spines,
        cores_per_plane=z,
        rate=rate,
        nic_rate=rate * eff,
        uplink_rate=up,
        core_rate=core,
        scaleup_rate=values["scaleup-rate"],
        scaleup_latency=values["scaleup-latency"],
        pxn=values["pxn"],
    )
    n_links = sh.bases()[-1]
    _check(
        sh.hosts <= MAX_HOSTS and n_links <= MAX_LINKS,
        f"{topo}: {sh.hosts} hosts and {n_links} directed links, expected at most "
        f"{MAX_HOSTS} hosts and {MAX_LINKS} links",
    )
    return sh


def _rate(values, source, key, over_key, down: float, n_up: int) -> float:
    """A switch's uplink rate: given, or from its oversubscription (default 1: non-blocking)
    with ``down`` B/s below it and ``n_up`` uplinks; written into ``values``."""
    _check(not (key in values and over_key in values), f"give {key} or {over_key}, not both")
    if key not in values:
        over = values.get(over_key, 1.0)
        values[key] = down / (n_up * over)
        source[key] = f"derived ({over_key} {over:g})"
    return values[key]
