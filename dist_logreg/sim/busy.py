"""How busy each link class must have been: a ``simulate.json`` row's link utilisation held
to the bytes that must cross its links (``report``'s check, through :mod:`.recheck`).

What must leave (enter) a group of endpoints (an endpoint's node, a host, a leaf's hosts,
a unit, a pod: :func:`.bounds.cut_s`'s needs) crosses the links out of (into) it, whatever
the engine. A link busy ``u`` of the time ``T`` carries at most ``u`` x its rate x ``T``,
so:

- where a group's crossing links are all of one class, that class's busiest link is busy at
  least the need over their summed rate, and the class's links together carry at least
  every such group's need (its mean);
- where they are of several classes (a rail GPU: its scale-up link and its NIC), the classes
  share the need: the sum over them of each one's busiest utilisation x the group's crossing
  rate of that class is at least the need / ``T`` (and of each one's mean x all its links'
  rate, at least every group's need at that level).

The engines' busy times part from bytes / rate by up to 2.3 % and their means on rail
fabrics by up to 23 %: a row is held to 90 % of a busiest link's floor and 45 % of a mean's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from dist_logreg import schema
from dist_logreg.errors import UsageError
from dist_logreg.sim.bounds import LinkSums, _live_rates, _needs
from dist_logreg.sim.job import Job, job_phases

#: Slack under a busiest link's floor (the engines' busy-time sums), and a mean's share of it.
UTIL_RTOL = 0.1
MEAN_SHARE = 0.5
#: Slack over a flow row's host links' ceiling (the file's printed digits).
CEIL = 1 + 1e-6


@dataclass
class Floors:
    """A job's floors on its links' busy time (seconds at ``T`` = 1 s: divide by the time)."""

    single: dict = field(default_factory=dict)  # class -> (busiest link's, the class's mean)
    shared: list = field(default_factory=list)  # ({class: rate}, bytes, "max_util"/"mean_util")


def floors(job: Job, sums: LinkSums | None = None) -> Floors:
    """The job's :class:`Floors` on its fabric (the module's docstring says which)."""
    from dist_logreg.collective import algorithms

    topo, p, out = job.fabric.topology, job.ranks, Floors()
    if p < 2 or job.nbytes <= 0:
        return out
    sums = sums or LinkSums.of(topo)
    kind = algorithms.get(job.algorithm).collective
    src, dst, cls = topo.link_src, topo.link_dst, np.asarray(topo.link_class, dtype=np.int64)
    n_cls, rates = len(topo.class_names), _live_rates(topo)
    fastest, count = np.zeros(n_cls), np.bincount(cls, minlength=n_cls)
    np.maximum.at(fastest, cls, rates)
    floor, total = np.zeros(n_cls), np.zeros(n_cls)
    names = topo.class_names
    node = topo.link_src[topo.endpoint_up]  # each endpoint's node: a group of its own too
    mine = np.full(len(topo.node_names), -1, dtype=np.int64)
    mine[node] = node
    for _, group, _, _, owner in [*sums.cuts, ("node", node, None, None, mine)]:
        groups, k = np.unique(group[np.asarray(job.host_of, dtype=np.int64)], return_counts=True)
        if groups.size < 2:
            continue
        level = np.zeros(n_cls)
        for need, side in zip(_needs(kind, k / p, p), (src, dst), strict=True):
            crossing = (owner[src] != owner[dst]) & (owner[side] >= 0)
            by = np.zeros((int(group.max()) + 1, n_cls))  # per group, per class: its rate
            np.add.at(by, (owner[side][crossing], cls[crossing]), rates[crossing])
            by, need = by[groups], need * job.nbytes
            one = np.flatnonzero((np.count_nonzero(by, axis=1) == 1) & (need > 0))
            c = np.argmax(by[one] > 0, axis=1)  # each such group's one class (vectorised:
            np.maximum.at(floor, c, need[one] / by[one, c])  # 8192 hosts were a slow loop)
            np.add.at(level, c, need[one])
            several = np.flatnonzero((np.count_nonzero(by, axis=1) > 1) & (need > 0))
            for g in several:
                share = {names[c]: float(by[g, c]) for c in np.flatnonzero(by[g])}
                out.shared.append((share, float(need[g]), "max_util"))
            if several.size:  # every group's need, over all the classes' links
                used = {names[c]: float(fastest[c] * count[c]) for c in np.unique(cls[crossing])}
                out.shared.append((used, float(need[need > 0].sum()), "mean_util"))
        total = np.maximum(total, level)  # one level's groups are disjoint; levels overlap
    out.shared += _rank_floors(job, kind, fastest * count)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(fastest > 0, total / (fastest * np.maximum(count, 1)), 0.0)
    out.single = {names[c]: (float(floor[c]), float(mean[c])) for c in range(n_cls) if floor[c]}
    return out


def _rank_floors(job: Job, kind: str, capacity: np.ndarray) -> list:
    """Each endpoint's own (its ranks'): what must leave (enter) it crosses the first (last)
    links of its paths to (from) the job's other endpoints, every path sprayed (a GPU's
    scale-up link and its NIC, which share its host's node); and all the endpoints' over
    those links' classes. None over :data:`PAIRS` pairs of endpoints, or where two of them
    reach each other without a link (``host_rate``)."""
    ep = np.asarray(job.host_of, dtype=np.int64)
    eps, k = np.unique(ep, return_counts=True)
    ends = _end_links(job.fabric, eps)
    if ends is None:
        return []
    topo = job.fabric.topology
    out, rates, names = [], _live_rates(topo), topo.class_names
    cls = np.asarray(topo.link_class, dtype=np.int64)
    for need, links in zip(_needs(kind, k / job.ranks, job.ranks), ends, strict=True):
        used: set = set()
        for e in range(eps.size):
            share: dict = {}
            for link in links[e]:
                share[names[cls[link]]] = share.get(names[cls[link]], 0.0) + rates[link]
                used.add(int(cls[link]))
            if need[e] > 0 and share:
                out.append((share, float(need[e] * job.nbytes), "max_util"))
        whole = {names[c]: float(capacity[c]) for c in sorted(used)}
        if whole and need.sum() > 0:
            out.append((whole, float(need.sum() * job.nbytes), "mean_util"))
    return out


#: The most ordered pairs of endpoints whose sprayed paths give each its own links.
PAIRS = 16_384
_ENDS: dict = {}


def _end_links(fab, eps: np.ndarray):
    """Per endpoint of ``eps``, the links its paths to the others leave its node by and
    those the others' paths enter it by (two lists of sets); None where there are too many
    pairs or two endpoints have no link between them."""
    n, topo = eps.size, fab.topology
    if n < 2 or n * (n - 1) > PAIRS:
        return None
    key = (id(topo), repr(fab.ecmp), eps.tobytes())  # the entry keeps topo alive: its id
    if key not in _ENDS or _ENDS[key][0] is not topo:
        if len(_ENDS) > 256:
            _ENDS.clear()
        s, d, m = _sprayed(fab, eps)
        node = topo.link_src[topo.endpoint_up[eps]]
        ends: tuple | None = ([set() for _ in range(n)], [set() for _ in range(n)])
        for f in range(s.size):
            links = m.indices[m.indptr[f] : m.indptr[f + 1]]
            first = links[topo.link_src[links] == node[s[f]]]
            last = links[topo.link_dst[links] == node[d[f]]]
            if not first.size or not last.size:
                ends = None  # two endpoints over host_rate: no link holds their bytes
                break
            ends[0][s[f]].update(first.tolist())
            ends[1][d[f]].update(last.tolist())
        _ENDS[key] = topo, ends
    return _ENDS[key][1]


def links_of(fab, eps: np.ndarray) -> set | None:
    """Every link a job on the endpoints ``eps`` may use (each pair's paths, sprayed); None
    over :data:`PAIRS` pairs."""
    eps = np.unique(np.asarray(eps, dtype=np.int64))
    if eps.size * (eps.size - 1) > PAIRS:
        return None
    return set(_sprayed(fab, eps)[2].indices.tolist())


def _sprayed(fab, eps: np.ndarray) -> tuple:
    """Every ordered pair of ``eps`` (sources, destinations) and their paths, every path
    sprayed (the links any hash could give them), as a CSR flow x link matrix."""
    s, d = np.nonzero(~np.eye(eps.size, dtype=bool))
    spray = dataclasses.replace(fab.ecmp, hash="spray", pinned={})
    keys = np.zeros(s.size, dtype=np.int64)
    return s, d, fab.topology.route_many(eps[s], eps[d], keys, spray).tocsr()


def check_links(jobs: list, sums: LinkSums, r: dict, where: str) -> None:
    """:class:`schema.Invalid` where a row's ``links`` carry less than its jobs' floors
    (``jobs``: one per placement its seeds ran on; the links are one of them: the least of
    their single-class floors, and the shared floors of at least one of them). ``--exact``
    rows' links are its phase-synchronous run's: over ``phase_sync_s``."""
    links = r.get("links") if isinstance(r.get("links"), dict) else {}
    span = max(r["time_s"], r.get("phase_sync_s") or 0.0)
    if span <= 0:
        return
    each = [floors(j, sums) for j in jobs]
    for cls in set.intersection(*(set(f.single) for f in each)) & set(links):
        for i, key in enumerate(("max_util", "mean_util")):
            least = min(f.single[cls][i] for f in each) / span
            least *= (1 - UTIL_RTOL) * (MEAN_SHARE if i else 1)
            got = links[cls].get(key) if isinstance(links[cls], dict) else None
            if not schema.is_finite(got) or got < least:
                raise _short(f"{where}.links.{cls}.{key}", least, got)
    problems = [_shared(f, links, span, where) for f in each]
    if all(problems):
        raise problems[0]


def _shared(f: Floors, links: dict, span: float, where: str) -> schema.Invalid | None:
    for share, need, key in f.shared:
        got = [links.get(c) for c in share]
        if not all(isinstance(x, dict) and schema.is_finite(x.get(key)) for x in got):
            continue  # a class the row does not list: the single floors hold what it lists
        carried = sum(x[key] * rate for x, rate in zip(got, share.values(), strict=True))
        least = need / span * (1 - UTIL_RTOL) * (MEAN_SHARE if key == "mean_util" else 1)
        if carried < least:
            first = max(share, key=share.get)
            return _short(
                f"{where}.links.{first}.{key}",
                least / sum(share.values()),
                links[first][key],
                f" (with {', '.join(c for c in share if c != first)}: together they carry "
                f"at least {least:.6g} B/s, got {carried:.6g})"
                if len(share) > 1
                else "",
            )
    return None


def _short(where: str, least: float, got, also: str = "") -> schema.Invalid:
    return schema.unphysical(
        where,
        f"expected at least {least:.6g} (the bytes that must cross these links at their "
        f"rate, over time_s){also}, got {schema.shown(got)}",
    )


def check_placement(fab, placed: list, r: dict, kind: str, where: str) -> None:
    """A row's links held to what its placement lets cross them (an edited ranks_per_host
    lowered every floor beside links that carried the job as first placed: sixteenth
    attack, R-H3): every rank on one host leaves the links idle; a flow row's links out of
    the hosts carry no more than the bytes its flows send between hosts."""
    _check_one_host(Job(fab, placed[0], r["algorithm"], 1), r, where)
    if "packet" not in r and "jobs" not in r and kind not in ("neighbour", "background"):
        _check_ceiling(fab, placed, r, where)


def _check_ceiling(fab, placed: list, r: dict, where: str) -> None:
    """A flow engine's link utilisation is its bytes over its rate and the phase-synchronous
    time: the class of the links out of the hosts (where no other class leaves them and its
    rates are one) carries at most every phase's flows between two hosts at the phase's
    largest flow, summed over the placements its seeds ran on."""
    topo = fab.topology
    src, dst = np.asarray(topo.link_src), np.asarray(topo.link_dst)
    cls, rates = np.asarray(topo.link_class, dtype=np.int64), _live_rates(topo)
    hosts = np.zeros(len(topo.node_names), dtype=bool)
    hosts[src[topo.endpoint_up]] = True
    out = hosts[src] & ~hosts[dst]
    first = np.unique(cls[out])
    got = (r.get("links") or {}).get(topo.class_names[first[0]]) if first.size == 1 else None
    span = r.get("phase_sync_s") or r["time_s"]
    mine = rates[cls == first[0]] if first.size == 1 else rates[:0]
    if (
        not isinstance(got, dict)
        or not schema.is_finite(got.get("mean_util"))
        or np.count_nonzero(out) != mine.size  # the class has links inside the fabric too
        or not mine.size
        or np.ptp(mine) > 0
        or not (schema.is_finite(span) and span > 0)
    ):
        return
    most = one = 0.0  # what all the hosts send to others, what the busiest one sends
    for host_of in placed:
        job = Job(fab, host_of, r["algorithm"], int(r["bytes"]))
        try:
            steps = job_phases(job)
        except (ValueError, UsageError):
            return
        node = src[topo.endpoint_up[np.asarray(host_of, dtype=np.int64)]]
        sent = np.zeros(len(topo.node_names))
        for ph in steps:
            out_ = node[ph.src] != node[ph.dst]
            np.add.at(sent, node[ph.src][out_], ph.repeat * float(ph.frac.max()) * job.nbytes)
        most, one = max(most, float(sent.sum())), max(one, float(sent.max()))
    name, cap = topo.class_names[first[0]], mine[0] * span
    # a link's bytes are its utilisation x its rate x the time (a 1 KiB ring's busiest
    # host link 0.5 busy, genuine 0.0058, was drawn: seventeenth attack, T-M5)
    for key, bound, links in (("mean_util", most, mine.size), ("max_util", one, 1)):
        if schema.is_finite(got.get(key)) and got[key] * links * cap > bound * CEIL + 1.0:
            raise schema.unphysical(
                f"{where}.links.{name}.{key}",
                f"expected at most {bound / (links * cap):.6g} (the bytes its placement sends "
                f"between hosts, over these links' rate and time_s), got {got[key]:.6g}",
            )
    cross = r.get("cross_leaf_bytes")
    if schema.is_finite(cross) and cross > most * CEIL + 1.0:
        raise schema.unphysical(
            f"{where}.cross_leaf_bytes",
            f"expected at most {most:.6g} B (what its placement sends between hosts), got "
            f"{cross:.6g}",
        )


def _check_one_host(job: Job, r: dict, where: str) -> None:
    """A job whose ranks share one host sends nothing on a link: its row's links idle and
    its bottleneck the host (an edited ranks_per_host put 8 ranks on one host, every floor
    gone, beside links 45 % busy: sixteenth attack, R-H3)."""
    if np.unique(job.node_of()).size > 1:
        return
    inside = ("scaleup",)  # a rail host's scale-up domain is inside it (its GPUs' links)
    links = (r.get("links") or {}).items()
    busy = [k for k, u in links if (u or {}).get("max_util", 0) > 0 and not k.startswith(inside)]
    neck = str(r.get("bottleneck"))
    if busy or not (neck == "host-internal" or neck.startswith(inside)):
        raise schema.unphysical(
            f"{where}.links",
            f"expected every link out of the host idle, the bottleneck inside it (its ranks on one "
            f"host, as its placement says), got {busy or r.get('bottleneck')}",
        )
