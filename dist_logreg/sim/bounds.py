"""The bounds no engine's result may break, and the check that holds each to them.

- :func:`check_result` (the runner calls it on every result): a finite time, never below
  the job's :func:`lower_bound_s`, so never a busbw above what the ranks' links can carry.
- :func:`lower_bound_s`: alpha + the largest of the bytes terms (all ranks', each rank's,
  each group's: :func:`cut_s` over hosts, leaves, units, pods, :class:`LinkSums`) + hops.
- :func:`latency_floor_s`, :func:`closest_pair_s`, :func:`critical_path_s`: the dependent
  steps' alpha and path latency, for ``report``'s check of a file (``sim/recheck.py``;
  its links' busy time: ``sim/busy.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from dist_logreg.sim.job import Job, Result

#: Relative slack of :func:`check_result`: sums over thousands of events in floating point.
BOUND_RTOL = 1e-9


def lower_bound_s(
    job: Job, latency: bool = True, sums: LinkSums | None = None, levels=None
) -> float:
    """No engine may be faster: ``alpha`` + the largest of three byte terms + the hop
    latency of its NIC's links when no rank shares a host (``latency=False``: without it,
    for a run whose links' delays were set apart from the fabric's). 0 for one rank or no
    bytes. ``sums``: the fabric's :class:`LinkSums`, to reuse over many jobs on one fabric;
    ``levels``: the groups whose cuts count (default all; ``("host",)``: a non-blocking
    fabric's, where only the hosts' links are finite).

    A rank pushes at most ``push`` (every link out of its endpoint's node, plus
    ``host_rate`` to each other rank of its host). The terms:

    - all the ranks': the bytes the collective sends in all, at least nccl-tests' busbw
      factor x ``nbytes`` x p (2(p-1) x ``nbytes`` for allreduce: each element is a one-way
      gossip among p ranks, which takes 2(p-1) messages; (p-1) x ``nbytes`` for the
      others), at the sum of the ranks' ``push``;
    - each rank's: what must leave it or reach it (:func:`_needs` of a group of one) at its
      own ``push``;
    - each group's (:func:`cut_s`): the bytes that must cross the boundary of each host,
      leaf, unit or pod at the rate of the links that cross it (a host's scale-up links stay
      inside it; a leaf's uplinks carry what leaves the hosts under it)."""
    from dist_logreg.collective import algorithms

    p = job.ranks
    if p < 2 or job.nbytes <= 0:
        return 0.0
    sums = sums or LinkSums.of(job.fabric.topology)
    kind = algorithms.get(job.algorithm).collective
    factor = algorithms.BUSBW_FACTORS[kind](p)
    push, share = push_rates(job, sums)
    topo, ep = job.fabric.topology, np.asarray(job.host_of, dtype=np.int64)
    up, down = topo.endpoint_up[ep], topo.endpoint_down[ep]
    hops = topo.link_latency[up].min() + topo.link_latency[down].min()
    hops = 0.0 if share.any() or not latency else hops
    total = (p - 1) * job.nbytes if kind == "broadcast" else factor * job.nbytes * p
    one = np.ones(p)
    wire = max(
        total / push.sum(),
        _slowest(kind, *_needs(kind, one / p, p), job.nbytes, push, push),
        cut_s(job, sums, levels),
    )
    return float(job.fabric.alpha + wire + hops)


def push_rates(job: Job, sums: LinkSums) -> tuple[np.ndarray, np.ndarray]:
    """Per rank: the most it can push or take (every link out of and into its endpoint's
    node: a NIC of two ports, sprayed, or the other NICs of a rail host (PXN) carry a
    rank's bytes too; plus ``host_rate`` to each other rank of its host), and how many other
    ranks share its host."""
    topo, ep = job.fabric.topology, np.asarray(job.host_of, dtype=np.int64)
    up, down = topo.endpoint_up[ep], topo.endpoint_down[ep]
    nic = np.maximum(sums.out[topo.link_src[up]], sums.into[topo.link_dst[down]])
    _, where, per_host = np.unique(topo.endpoint_host[ep], return_inverse=True, return_counts=True)
    share = per_host[where] - 1
    return nic + job.fabric.host_rate * share, share


def _needs(kind: str, f: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """What a group holding the fraction ``f`` of the ``p`` ranks must send out and take
    in, as fractions of ``nbytes``: allreduce 1 and 1 (every element's sum needs the
    group's part, and the group needs the sum); reduce-scatter (p-k)/p and k/p; allgather
    k/p and (p-k)/p; alltoall k(p-k)/p both ways; broadcast 1 in (the root's group aside)."""
    from dist_logreg.collective import algorithms

    return {
        algorithms.ALLREDUCE: (np.ones_like(f), np.ones_like(f)),
        "reduce-scatter": (1 - f, f),
        "allgather": (f, 1 - f),
        "alltoall": (f * (1 - f) * p, f * (1 - f) * p),
        "broadcast": (np.zeros_like(f), np.ones_like(f)),
    }[kind]


def _slowest(kind, need_out, need_in, nbytes, egress, ingress) -> float:
    """The longest time any group takes to move what it must at its rates (broadcast: the
    least, the root's group unknown); 0 where a group has no link (the fabric's error)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_out = np.where(need_out > 0, need_out * nbytes / egress, 0.0)
        t_in = np.where(need_in > 0, need_in * nbytes / ingress, 0.0)
    t = np.maximum(t_out, t_in)
    if t.size == 0 or not np.isfinite(t).all():
        return 0.0
    return float(t.min() if kind == "broadcast" else t.max())


#: The groups of endpoints whose boundaries :func:`cut_s` holds a job to (where the
#: topology has the level and each of its nodes holds one group's endpoints).
CUT_LEVELS = ("host", "leaf", "unit", "pod")


@dataclass
class LinkSums:
    """What the bounds need of a topology, whatever the job: per node the rate of the links
    out of it and into it; per level of :data:`CUT_LEVELS`, each endpoint's group and per
    group the rate of the links that leave it and enter it. A group is its endpoints' nodes
    and every switch whose links down (to a lower tier) all reach the group (a host's
    scale-up switch; a leaf, for the group of the hosts under it; a pod's spines)."""

    out: np.ndarray
    into: np.ndarray
    cuts: list  # [(level, group of each endpoint, egress, ingress per group, node's group)]

    @classmethod
    def of(cls, topo) -> LinkSums:
        src, dst, rate = topo.link_src, topo.link_dst, _live_rates(topo)
        nodes = len(topo.node_names)
        out = np.bincount(src, weights=rate, minlength=nodes)
        into = np.bincount(dst, weights=rate, minlength=nodes)
        cuts = []
        for level in CUT_LEVELS:
            try:
                group = np.asarray(topo.locality(level), dtype=np.int64)
            except (KeyError, ValueError, AttributeError, TypeError):
                continue
            owner = _owners(topo, group)
            if owner is None:
                continue  # a node holds endpoints of two groups
            crossing = owner[src] != owner[dst]
            size = int(group.max()) + 1
            leaving, entering = crossing & (owner[src] >= 0), crossing & (owner[dst] >= 0)
            egress = np.bincount(owner[src][leaving], weights=rate[leaving], minlength=size)
            ingress = np.bincount(owner[dst][entering], weights=rate[entering], minlength=size)
            cuts.append((level, group, egress[:size], ingress[:size], owner))
        return cls(out, into, cuts)


def _live_rates(topo) -> np.ndarray:
    """The links' rates, 0 for a failed leaf-spine cable (``--scenario fail``: the Clos
    topology keeps its links and routes around the dead ones, ``alive``)."""
    rate = np.array(topo.link_rate, dtype=float)
    alive = getattr(topo, "alive", None)
    if alive is None:
        return rate
    ups = topo.ecmp_groups()[0].reshape(alive.shape)[~alive]  # (leaf, spine) -> its uplink
    src, dst = topo.link_src, topo.link_dst
    for u in ups:
        rate[u] = 0.0
        rate[(src == dst[u]) & (dst == src[u])] = 0.0  # and its way down
    return rate


def _owners(topo, group: np.ndarray) -> np.ndarray | None:
    """Each node's group (-1: none), tier by tier from the endpoints' nodes up: a switch
    belongs to a group when every node it links to below it does. None where one node
    holds endpoints of two groups."""
    src, dst, tier = topo.link_src, topo.link_dst, np.asarray(topo.node_tier)
    nodes = len(topo.node_names)
    owner = np.full(nodes, -1, dtype=np.int64)
    ep_node = src[topo.endpoint_up]
    owner[ep_node] = group
    if (owner[ep_node] != group).any():
        return None
    ends = np.concatenate([src, dst]), np.concatenate([dst, src])
    for t in range(1, int(tier.max()) + 1 if tier.size else 1):
        a, b = ends
        down = (tier[a] == t) & (tier[b] < t)
        lo = np.full(nodes, nodes + 1, dtype=np.int64)
        hi = np.full(nodes, -2, dtype=np.int64)
        np.minimum.at(lo, a[down], owner[b[down]])
        np.maximum.at(hi, a[down], owner[b[down]])
        mine = (tier == t) & (lo == hi) & (lo >= 0) & (owner < 0)
        owner[mine] = lo[mine]
    return owner


def cut_s(job: Job, sums: LinkSums | None = None, levels=None) -> float:
    """The least time the bytes that must leave or enter a group of endpoints (a host, a
    leaf, a unit, a pod: :class:`LinkSums`) take at the rate of the links that cross its
    boundary (:func:`_needs`), the slowest group's at any level (0 where no group holds
    some but not all ranks)."""
    from dist_logreg.collective import algorithms

    topo, p = job.fabric.topology, job.ranks
    ep = np.asarray(job.host_of, dtype=np.int64)
    sums = sums or LinkSums.of(topo)
    kind = algorithms.get(job.algorithm).collective
    worst = 0.0
    for level, group, egress, ingress, _ in sums.cuts:
        if levels is not None and level not in levels:
            continue
        groups, k = np.unique(group[ep], return_counts=True)
        if groups.size > 1:
            need = _needs(kind, k / p, p)
            t = _slowest(kind, *need, job.nbytes, egress[groups], ingress[groups])
            worst = max(worst, t)
    return worst


def clock_slack_s(job: Job, engine: str) -> float:
    """What an engine's clock may take off a job's time: ns-3 counts whole nanoseconds and
    rounds each hop's serialisation and delay (a 1 B message inside a host is done at its
    start): 1 ns x 2 a link of the fabric's longest path, for each step of the job's (no
    chain of dependent messages is longer: each waits only on earlier steps'); the flow
    engine's, none."""
    from dist_logreg.sim.messages import messages

    clock = CLOCK_S.get(engine, 0.0)
    if not clock or job.ranks < 2 or job.nbytes <= 0:
        return 0.0
    g = messages(job.algorithm, job.ranks, job.nbytes, job.node_of())
    steps = int(g.phase.max()) + 1 if g.size else 0
    return clock * 2 * (int(job.fabric.topology.max_hops) + 1) * steps


#: Each engine's clock (s) where it is not continuous.
CLOCK_S = {"packet": 1e-9}


def check_result(job: Job, result: Result, engine: str = "") -> Result:
    """``result`` if it is physical for ``job``; else ``RuntimeError`` naming the numbers
    (a bug in the engine, never the user's input)."""
    t, bound = result.time_s, lower_bound_s(job)
    what = f"{engine} engine: {job.algorithm}, {job.nbytes} B on {job.ranks} ranks".lstrip()
    if not (np.isfinite(t) and t >= 0):
        raise RuntimeError(f"{what}: time_s is {t} (a bug)")
    if t < bound * (1 - BOUND_RTOL) - clock_slack_s(job, engine):
        from dist_logreg.collective import algorithms

        factor = algorithms.BUSBW_FACTORS[algorithms.get(job.algorithm).collective](job.ranks)
        raise RuntimeError(
            f"{what}: time_s {t:.9g} s is below the job's lower bound {bound:.9g} s "
            f"(busbw {factor * job.nbytes / t if t > 0 else math.inf:.6g} B/s; alpha "
            f"{job.fabric.alpha:g} s + the bytes every rank must send at its links' rate + "
            "hop latency) (a bug)"
        )
    return result


def latency_floor_s(job: Job, latency: bool = True, closest: float | None = None) -> float:
    """No engine finishes before its dependent steps have each paid ``alpha`` and crossed
    the shortest path between two of the job's ranks (``latency=False``: alpha alone). The
    steps: the closed form's latency count (2(p-1) for a ring, log2 p for recursive
    doubling), at least ceil(log2 p) (a step at most doubles the ranks a rank's data has
    reached); without a closed form, that. 0 for one rank. ``closest``: the job's
    :func:`closest_pair_s`, if known."""
    from dist_logreg.collective import algorithms

    p = job.ranks
    if p < 2:
        return 0.0
    alg = algorithms.get(job.algorithm)
    low = math.ceil(math.log2(p))
    form = alg.closed_form
    steps = low if not form or alg.library else max(float(form(p)[0]), low)
    near = (closest_pair_s(job) if closest is None else closest) if latency else 0.0
    return steps * (job.fabric.alpha + near)


def closest_pair_s(job: Job) -> float:
    """The least latency between two of the job's ranks: 0 if two share an endpoint; two
    of the least links at a node two endpoints share (a rail host's GPUs: up to the
    scale-up switch and back); else the shortest path between two of their nodes (one
    Dijkstra from them all, links as undirected edges of their latency)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    topo = job.fabric.topology
    ep = np.asarray(job.host_of, dtype=np.int64)
    if np.unique(ep).size < ep.size:
        return 0.0
    src, dst, lat = topo.link_src, topo.link_dst, np.asarray(topo.link_latency, dtype=float)
    node = src[topo.endpoint_up[ep]]
    nodes, count = np.unique(node, return_counts=True)
    best = np.inf
    if (count > 1).any():  # two endpoints on one node
        shared = nodes[count > 1]
        touching = np.isin(src, shared) | np.isin(dst, shared)
        best = 2 * lat[touching].min()
    if nodes.size > 1:
        n = len(topo.node_names)
        a, b = np.minimum(src, dst), np.maximum(src, dst)
        order = np.lexsort((lat, b, a))  # the least latency of each pair of nodes
        first = np.ones(order.size, bool)
        first[1:] = (a[order][1:] != a[order][:-1]) | (b[order][1:] != b[order][:-1])
        keep = order[first]
        tiny = np.finfo(float).tiny  # csgraph drops explicit zeros: a 0 s link stays a link
        graph = csr_matrix((lat[keep] + tiny, (a[keep], b[keep])), shape=(n, n))
        dist, _, source = dijkstra(
            graph, directed=False, indices=nodes, min_only=True, return_predecessors=True
        )
        ends = source[a[keep]] != source[b[keep]]
        if ends.any():
            k = keep[ends]
            best = min(best, float((dist[a[k]] + lat[k] + dist[b[k]]).min()))
    return 0.0 if not np.isfinite(best) else float(best)


#: :func:`critical_path_s` plays at most this many messages (a ring at 316 ranks).
CRITICAL_MESSAGES = 200_000
#: What "infinitely fast" is to :func:`critical_path_s` (B/s).
_FAST = 1e30


def critical_path_s(job: Job, latency: bool = True) -> float | None:
    """The job's dependency graph played event by event with every link and host
    infinitely fast and every message eager: the longest chain of messages that wait on
    each other, each paying alpha and its path's latency (``latency=False``: alpha alone).
    No engine is faster (bandwidth, sharing, rendezvous and phases only add). None above
    :data:`CRITICAL_MESSAGES` messages."""
    from dist_logreg.sim import exact

    p = job.ranks
    if p < 2:
        return 0.0
    if exact._steps(job.algorithm, p) * p > CRITICAL_MESSAGES:
        return None
    topo = copy.copy(job.fabric.topology)
    topo.link_rate = np.full(len(topo.link_rate), _FAST)
    if not latency:
        topo.link_latency = np.zeros(len(topo.link_latency))
    fab = dataclasses.replace(job.fabric, topology=topo, host_rate=_FAST, gamma=0.0)
    eager = exact.ExactOptions(eager_limit=exact.EAGER, eager_limit_host=exact.EAGER)
    fast = Job(fab, job.host_of, job.algorithm, job.nbytes, exact=True, options=eager)
    return float(exact.simulate(fast, np.asarray(job.host_of, dtype=np.int64))["time_s"])


def ideal_floor_s(job: Job, latency: bool = True) -> float:
    """No engine's ``ideal_s`` (the fabric with only its edge links finite,
    ``Fabric.edge_links``) is faster: :func:`lower_bound_s` of the job on that fabric, its
    other links infinitely fast and no group's cut (a leaf's uplinks are not finite there)."""
    topo = copy.copy(job.fabric.topology)
    topo.link_rate = np.where(job.fabric.edge_links(), topo.link_rate, _FAST)
    fab = dataclasses.replace(job.fabric, topology=topo)
    return lower_bound_s(dataclasses.replace(job, fabric=fab), latency, levels=())


def message_floors_s(job: Job, sums: LinkSums | None = None) -> np.ndarray:
    """No message of the job arrives sooner after its start than its bytes take at the
    most its sender can push (:func:`push_rates`: the links of its endpoint's node, plus
    ``host_rate`` to each other rank of its host; not a switch's): per message of
    :func:`~.messages.messages`, in its order (the packet engine's)."""
    from dist_logreg.sim.messages import messages

    if job.ranks < 2 or job.nbytes <= 0:
        return np.zeros(0)
    sums = sums or LinkSums.of(job.fabric.topology)
    g = messages(job.algorithm, job.ranks, job.nbytes, job.node_of())
    return g.nbytes / push_rates(job, sums)[0][g.src_rank]
