"""What happens to a step at scale (``simulate --scenario SPEC``): one thing gone wrong.

=================================================  =============================================
``none``                                           the fabric and the workload as described
``straggler:factor=K[,rank=R]``                    rank R (default 0) computes K times slower
``degrade:factor=K,class=CLASS``                   every link of a class (``leaf-up``...) at 1/K
``degrade:factor=K,link=A-B``                      the cable between nodes A and B (both
                                                   directions), e.g. ``leaf0-spine1``, at 1/K
``fail:link=A-B[+C-D...]``                         leaf-spine cables down (Clos): ECMP hashes
                                                   over the remaining spines; a leaf left with
                                                   none is an error naming it
``fail:spine=S``                                   spine S's cable to every leaf of its pod down
``background:fraction=F``                          a fraction F of every link's rate taken by
                                                   other traffic
``background:permutation=F[,seed=S]``              every host sends one constant flow of F x
                                                   its link rate to another host of a random
                                                   permutation (ECMP-routed; rail family: one
                                                   per NIC, to the same rail); each link
                                                   keeps what those flows leave (at least 1%)
``neighbour:ranks=N[,placement=P,algorithm=A,``    a second job on the fabric (``--exact``):
``bytes=B,start=T,seed=S]``                        N ranks on hosts the first job does not use
                                                   (P: packed, spread or random over them), an
                                                   allreduce of B bytes (default: the first
                                                   job's algorithm and bytes) from T s on
=================================================  =============================================

A straggler acts on the step (:func:`apply_workload`): with the phase-synchronous model
every collective waits for the slowest rank, so the buckets are ready when the straggler's
are: the step's compute is K times the compute, i.e. the flow engine adds (K-1) x compute.
A neighbour runs beside the job (:func:`place_neighbour`, :func:`.runner.with_neighbour`):
both jobs' messages in one event loop, each job's time alone and together.
The rest act on the fabric (:func:`apply_fabric`).
"""

from __future__ import annotations

import copy
import dataclasses
import re

import numpy as np

from dist_logreg.errors import UsageError
from dist_logreg.units import parse_bytes, plain_float

KINDS = ("none", "straggler", "degrade", "fail", "background", "neighbour")
#: Where a neighbour's ranks go among the endpoints the first job leaves free.
NEIGHBOUR_PLACEMENTS = ("packed", "spread", "random")


@dataclasses.dataclass(frozen=True)
class Scenario:
    kind: str
    values: dict
    spec: str

    def describe(self) -> dict:
        return {"spec": self.spec, "kind": self.kind, **self.values}


def _bad(spec: str, key: str, want: str, got) -> UsageError:
    return UsageError(f"--scenario {spec}: {key}: expected {want}, got {got!r}")


def _positive(spec: str, key: str, text, low: float = 0.0, high: float = 1e9) -> float:
    v = plain_float(text)  # ASCII digits only (M-M4)
    if not low < v <= high:
        raise _bad(spec, key, f"a number > {low:g} and at most {high:g}", text)
    return v


def _whole(text) -> bool:
    """ASCII digits only (``str.isdigit`` takes superscripts), at most 2^31 - 1."""
    t = str(text)
    return t.isascii() and t.isdigit() and int(t) < 2**31


def _factor(text: str, value) -> float:
    """A straggler's or a degraded link's factor: 1 (as is) to 10^6 times slower."""
    v = plain_float(value)  # ASCII digits only: factor=٢ was taken (P-M1)
    if not 1.0 <= v <= 1e6:
        raise _bad(text, "factor", "a number from 1 to 1e6 (how many times slower)", value)
    return v


def canonical(spec: str) -> str:
    """The spelling ``simulate`` writes: the kind and the keys in lower case, no blanks
    around them (``NONE``, ``Straggler:Factor=2``, `` straggler:...`` were run, then their
    sweep's rows refused by report: fifteenth attack, Q-H3). Nothing is checked here."""
    kind, _, rest = str(spec).strip().partition(":")
    items = []
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        items.append(f"{key.strip().lower().replace('_', '-')}={value.strip()}" if eq else item)
    return kind.strip().lower() + (":" + ",".join(items) if items else "")


def parse_scenario(spec: str | None) -> Scenario:
    """``--scenario SPEC`` (None or ``none``: nothing happens)."""
    text = canonical(spec or "none")
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise _bad(text, "kind", f"one of {', '.join(KINDS)}", kind)
    pairs = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise _bad(text, item, "key=value", item)
        key = key.strip().lower().replace("_", "-")
        if key in pairs:
            raise _bad(text, key, "each key once (keys ignore case)", item)
        pairs[key] = value.strip()
    allowed = {
        "none": (),
        "straggler": ("factor", "rank"),
        "degrade": ("factor", "class", "link"),
        "fail": ("link", "spine"),
        "background": ("fraction", "permutation", "seed"),
        "neighbour": ("ranks", "placement", "algorithm", "bytes", "start", "seed"),
    }[kind]
    for key in pairs:
        if key not in allowed:
            raise _bad(text, key, f"one of the keys {', '.join(allowed) or '(none)'}", key)
    values: dict = {}
    if kind in ("straggler", "degrade"):  # slower, never faster: factor >= 1
        values["factor"] = _factor(text, pairs.get("factor"))
    if kind == "straggler":
        rank = pairs.get("rank", "0")
        if not _whole(rank):
            raise _bad(text, "rank", "a rank (a whole number from 0 to 2147483647)", rank)
        values["rank"] = int(rank)
    if kind == "degrade":
        if ("class" in pairs) == ("link" in pairs):
            raise _bad(text, "class|link", "one of class=CLASS or link=A-B", rest)
        values.update({k: pairs[k] for k in ("class", "link") if k in pairs})
    if kind == "fail":
        if ("link" in pairs) == ("spine" in pairs):
            raise _bad(text, "link|spine", "one of link=A-B[+C-D...] or spine=S", rest)
        values.update({k: pairs[k] for k in ("link", "spine") if k in pairs})
    if kind == "background":
        key = "permutation" if "permutation" in pairs else "fraction"
        values[key] = _positive(text, key, pairs.get(key), 0.0, 0.99)
        seed = pairs.get("seed", "0")
        if not _whole(seed):
            raise _bad(text, "seed", "a whole number from 0 to 2147483647", seed)
        values["seed"] = int(seed)
    if kind == "neighbour":
        values.update(_neighbour(text, pairs))
    return Scenario(kind, values, text)


def _neighbour(text: str, pairs: dict) -> dict:
    """The values of ``neighbour:...`` (``algorithm`` and ``bytes`` None: the first job's)."""
    from dist_logreg.collective import algorithms as table
    from dist_logreg.sim import options as o

    ranks, seed = pairs.get("ranks", ""), pairs.get("seed", "0")
    if not _whole(ranks) or int(ranks) < 1:
        raise _bad(text, "ranks", "a whole number of ranks >= 1", pairs.get("ranks"))
    if not _whole(seed):
        raise _bad(text, "seed", "a whole number from 0 to 2147483647", seed)
    placement = pairs.get("placement", "packed").lower()
    if placement not in NEIGHBOUR_PLACEMENTS:
        raise _bad(text, "placement", f"one of {', '.join(NEIGHBOUR_PLACEMENTS)}", placement)
    alg = pairs.get("algorithm")
    if alg is not None and not (table.known(alg) and table.get(alg).phases):
        raise _bad(text, "algorithm", "an algorithm with a schedule (see --algorithm)", alg)
    where = f"--scenario {text}"
    nbytes = None
    if "bytes" in pairs:  # as --bytes: 1 B (0: 30 us "to move 0 B", L-H24) to 1 TiB a rank
        try:
            nbytes = parse_bytes(str(pairs["bytes"]))
        except UsageError:
            nbytes = -1
        if not 1 <= nbytes <= 1 << 40:
            raise _bad(text, "bytes", "1 byte to 1T bytes per rank (as --bytes)", pairs["bytes"])
    return {
        "ranks": int(ranks),
        "placement": placement,
        "algorithm": alg,
        "bytes": nbytes,
        "start_s": o.duration(pairs.get("start", "0"), f"{where}: start"),
        "seed": int(seed),
    }


def place_neighbour(sc: Scenario, fab, host_of, seed: int = 0) -> np.ndarray:
    """The neighbour's endpoints, one rank each, on hosts none of ``host_of`` (the first
    job's endpoints) sits on; too few is one line naming the numbers."""
    topo = fab.topology
    host = np.asarray(topo.endpoint_host)
    used = np.unique(host[np.asarray(host_of, dtype=np.int64)])
    free = np.flatnonzero(~np.isin(host, used))
    n, mode = sc.values["ranks"], sc.values["placement"]
    if n > free.size:
        raise UsageError(
            f"--scenario {sc.spec}: ranks: the neighbour's {n} ranks need {n} endpoints on "
            f"hosts the first job does not use; the fabric has {fab.hosts} hosts "
            f"({host.size} endpoints), the first job's {len(host_of)} ranks use {used.size} "
            f"host(s), leaving {free.size} endpoint(s)"
        )
    if mode == "random":
        out = np.random.default_rng(sc.values["seed"] + seed).permutation(free)[:n]
    elif mode == "spread":  # round-robin over the leaves, as --placement spread
        leaf = np.asarray(topo.locality("leaf"))[free]
        within = np.zeros(free.size, np.int64)
        seen: dict = {}
        for i, lf in enumerate(leaf.tolist()):
            within[i], seen[lf] = seen.get(lf, 0), seen.get(lf, 0) + 1
        out = free[np.lexsort((leaf, within))][:n]
    else:
        out = free[:n]
    if np.isin(host[out], used).any():  # never: the free endpoints exclude them
        raise UsageError(f"--scenario {sc.spec}: the neighbour overlaps the first job's hosts")
    return out.astype(np.int64)


def apply_workload(sc: Scenario, w, ranks: int):
    """The workload as the step sees it: a straggler's compute sets everyone's."""
    if sc.kind != "straggler":
        return w
    if sc.values["rank"] >= ranks:
        raise _bad(sc.spec, "rank", f"a rank below {ranks}", sc.values["rank"])
    k = sc.values["factor"]
    return dataclasses.replace(
        w, forward_s=w.forward_s * k, backward_s=w.backward_s * k, optimizer_s=w.optimizer_s * k
    )


def apply_fabric(sc: Scenario, fab):
    """The fabric with the scenario's links degraded, failed or shared."""
    if sc.kind in ("none", "straggler", "neighbour"):
        return fab
    topo = copy.copy(fab.topology)
    rate = np.array(topo.link_rate, dtype=float)
    if sc.kind == "background" and "fraction" in sc.values:
        rate *= 1.0 - sc.values["fraction"]
    elif sc.kind == "background":
        rate = np.maximum(rate - _permutation_load(sc, fab), 0.01 * rate)
    elif sc.kind == "degrade":
        rate[_links(sc, fab)] /= sc.values["factor"]
    else:
        if not hasattr(topo, "fail") or not getattr(topo.shape, "spines", 0):
            raise UsageError(
                f"--scenario {sc.spec}: fail: expected a fabric of the Clos family with spines "
                f"(leaf-spine, fat-tree, clos3), got {fab.values.get('topology', 'another')!r} "
                "(failed cables are not modelled on flat or rail-family fabrics; degrade a "
                "link class instead: degrade:factor=K,class=NAME)"
            )
        topo = topo.fail(_cables(sc, fab))
    topo.link_rate = rate
    return dataclasses.replace(fab, topology=topo)


def _links(sc: Scenario, fab) -> np.ndarray:
    """The link ids a ``degrade`` names: a class, or the cable between two nodes."""
    if "class" in sc.values:
        name = sc.values["class"]
        if name not in fab.class_names:
            raise _bad(sc.spec, "class", f"one of {', '.join(fab.class_names)}", name)
        return np.flatnonzero(fab.link_class == fab.class_names.index(name))
    a, b = _nodes(sc, fab, sc.values["link"])
    src, dst = fab.link_src, fab.link_dst
    ids = np.flatnonzero(((src == a) & (dst == b)) | ((src == b) & (dst == a)))
    if not ids.size:
        raise _bad(sc.spec, "link", "two nodes joined by a link", sc.values["link"])
    return ids


def _nodes(sc: Scenario, fab, text: str) -> tuple[int, int]:
    names = fab.topology.node_names
    parts = text.split("-")
    if len(parts) != 2 or any(p not in names for p in parts):
        raise _bad(sc.spec, "link", "NODE-NODE of the fabric's nodes (e.g. leaf0-spine1)", text)
    return names.index(parts[0]), names.index(parts[1])


def _cables(sc: Scenario, fab) -> list[tuple[int, int]]:
    """``[(leaf, spine of its pod)]`` a ``fail`` names."""
    sh = fab.topology.shape
    if "spine" in sc.values:
        s = sc.values["spine"]
        if not _whole(s) or int(s) >= sh.pods * sh.spines:
            raise _bad(sc.spec, "spine", f"a spine from 0 to {sh.pods * sh.spines - 1}", s)
        pod, local = divmod(int(s), sh.spines)
        return [(pod * sh.leaves + i, local) for i in range(sh.leaves)]
    out = []
    for cable in sc.values["link"].split("+"):
        m = re.fullmatch(r"leaf([0-9]+)-spine([0-9]+)", cable.strip())  # ASCII (T-M2)
        if not m or int(m.group(1)) >= sh.n_leaves or int(m.group(2)) >= sh.pods * sh.spines:
            raise _bad(sc.spec, "link", "leafL-spineS cables of the fabric", cable)
        leaf, spine = int(m.group(1)), int(m.group(2))
        pod, local = divmod(spine, sh.spines)
        if pod != leaf // sh.leaves:
            raise _bad(sc.spec, "link", f"a spine of leaf{leaf}'s pod", cable)
        out.append((leaf, local))
    return out


def _permutation_load(sc: Scenario, fab) -> np.ndarray:
    """B/s each link carries of a random permutation's flows: host h sends F x its link
    rate to host perm[h] (one random cycle: every host sends one flow and receives one),
    routed as the fabric's ECMP routes any flow. On the rail family a host's endpoints are
    its GPUs and its links to the fabric its NICs: every NIC sends one flow of F x its rate
    to the NIC of the same rail of host perm[h] (routing a flow per GPU sent several
    GPUs' flows out of one NIC through PXN, and floored that NIC at 1%)."""
    topo = fab.topology
    nic = getattr(topo, "nic_endpoints", None)
    ends = nic() if nic is not None else np.arange(topo.endpoint_host.size)[:, None]
    n = ends.shape[0]
    if n < 2:
        return np.zeros_like(np.asarray(topo.link_rate, dtype=float))
    rng = np.random.default_rng(sc.values["seed"])
    order = rng.permutation(n)
    # one random cycle: a permutation, no host to itself; each rail (column) along it
    src, dst = ends[order].ravel(), ends[np.roll(order, -1)].ravel()
    send = sc.values["permutation"] * np.asarray(topo.link_rate, dtype=float)[topo.endpoint_up]
    routes = fab.route_many(src, dst, np.arange(src.size))
    return np.asarray(routes.T @ send[src]).ravel()
