"""The topology protocol: what the engines, placement, statistics and ns-3 builder may ask.

A topology is nodes and directed links. Nodes ``0..hosts-1`` are hosts, the rest switches
(``node_names``, ``node_tier``: 0 for a host, 1, 2, ... up the switch tiers). A rank sits
on an **endpoint**, not a host: a NIC on the Clos topologies (one per host), a GPU on the
rail family (several per host, each routed to its rail's NIC); ``endpoint_host[e]`` is the
host of endpoint ``e``, ``endpoint_up[e]``/``endpoint_down[e]`` the NIC links leaving and
reaching it (an optional ``edge_classes`` names more link classes the hosts own, such as
a scale-up domain's: the ideal time keeps them finite). An optional ``size_hint(endpoints)``
says what to change for the fabric to hold that many endpoints. Links are equal-length
arrays: ``link_src``, ``link_dst`` (nodes), ``link_rate`` (B/s), ``link_latency`` (s),
``link_class`` (index into ``class_names``). An empty row for two ranks of one endpoint.

Routing is :meth:`Topology.route_many`: for flows ``src -> dst`` (endpoints) with
connection keys, a flows x links CSR matrix of weights (1 on each link of the one path the
hash picks, ``1/n`` on each of ``n`` sprayed paths; on the Clos topologies an empty row for
two endpoints of one host). :class:`Ecmp` says how a switch with a choice picks (the
fabric's ``hash``, ``hash-seed``, ``hash-polarize`` and pinned pairs), and
:meth:`Ecmp.choose` is the hash every implementation uses. :meth:`Topology.ecmp_groups`
lists the links among which one switch chooses (the collision statistics count flows
beyond an even spread over them); :meth:`Topology.locality` groups endpoints by ``host``,
``leaf`` or ``pod``.

Implementations: :mod:`.clos` (flat, leaf-spine, fat-tree, clos3), :mod:`.rail` (rail,
rail3, tor and the named presets: multi-GPU hosts, a scale-up domain, rails). Adding one:
``docs/extending.md``, "Add a topology".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.sparse as sp

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


@dataclass(frozen=True)
class Ecmp:
    """How a switch with several equal-cost next hops picks one for a flow.

    ``hash``: ``l3`` (the unordered endpoint pair), ``l4`` (the pair and the connection
    key) or ``spray`` (every path, evenly); ``seed``; ``polarize``: every switch hashes with
    one function and seed (else each salts it with its own node id); ``pinned``:
    ``{(src, dst): choice}`` at the first switch with a choice (paths measured elsewhere).
    """

    hash: str = "l4"
    seed: int = 0
    polarize: bool = False
    pinned: dict = field(default_factory=dict)

    def keys(self, a: np.ndarray, b: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """The flow key each switch hashes, shape (F,) uint64."""
        if self.hash == "l3":
            lo, hi = np.minimum(a, b).astype(np.uint64), np.maximum(a, b).astype(np.uint64)
            return mix((lo << np.uint64(32)) | hi)
        pair = (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)
        return mix(pair ^ mix(np.asarray(keys, dtype=np.uint64) + np.uint64(7)))

    def choose(self, key: np.ndarray, switch, n: int) -> np.ndarray:
        """The next hop (0..n-1) that ``switch`` (node ids, or one) picks for each key."""
        salt = np.uint64(self.seed) * np.uint64(1_000_003)
        if not self.polarize:
            salt = mix(mix(np.asarray(switch, dtype=np.uint64)) ^ salt)
        return (mix(key ^ mix(salt)) % np.uint64(n)).astype(np.int64)

    def pin(self, a: np.ndarray, b: np.ndarray, choice: np.ndarray) -> np.ndarray:
        """``choice`` (F,) with the pinned pairs' choices put in."""
        if not self.pinned:
            return choice
        out = choice.copy()
        for i, pair in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            if pair in self.pinned:
                out[i] = self.pinned[pair]
        return out


class Topology(Protocol):
    """Nodes, links, endpoints, routes: the one thing above the shape's own arithmetic."""

    hosts: int
    class_names: tuple[str, ...]
    #: link classes that leave a leaf for the rest of the fabric (``cross_leaf_bytes``)
    uplink_classes: tuple[str, ...]
    node_names: tuple[str, ...]
    node_tier: np.ndarray
    link_src: np.ndarray
    link_dst: np.ndarray
    link_rate: np.ndarray
    link_latency: np.ndarray
    link_class: np.ndarray
    endpoint_host: np.ndarray
    endpoint_up: np.ndarray
    endpoint_down: np.ndarray
    #: most links on one path between two endpoints
    max_hops: int

    def route_many(self, src, dst, keys, ecmp: Ecmp) -> sp.csr_matrix:
        """Flows x links weights; ``src``, ``dst``, ``keys``: shape (F,)."""
        ...

    def paths(self, src: int, dst: int) -> list[np.ndarray]:
        """Every equal-cost path (link ids in order) from endpoint ``src`` to ``dst``."""
        ...

    def ecmp_groups(self) -> list[np.ndarray]:
        """Arrays (switches, choices) of link ids: the next hops each switch picks among."""
        ...

    def locality(self, level: str) -> np.ndarray:
        """Group id of each endpoint at ``host``, ``leaf`` or ``pod``, shape (E,)."""
        ...

    def describe(self) -> dict:
        """The shape's own numbers, for ``simulate.json`` (``fabric.shape``)."""
        ...

    def summary(self) -> str:
        """The shape in a few words, for the console table."""
        ...


def ordered(topo: Topology, src: int, ids) -> np.ndarray:
    """The link ids of one path in path order, following links from endpoint ``src``."""
    ids = [int(i) for i in ids]
    node = int(topo.endpoint_host[src])
    out = []
    while ids:
        nxt = next(i for i in ids if int(topo.link_src[i]) == node)
        ids.remove(nxt)
        out.append(nxt)
        node = int(topo.link_dst[nxt])
    return np.array(out, dtype=np.int64)


def csr(rows_cols_weights, flows: int, links: int) -> sp.csr_matrix:
    """A flows x links CSR of weights from ``(cols, w)`` both (F, W), -1/0 where none."""
    cols, w = rows_cols_weights
    keep = w > 0
    rows = np.broadcast_to(np.arange(flows)[:, None], cols.shape)[keep]
    m = sp.csr_matrix((w[keep], (rows, cols[keep])), shape=(flows, links))
    m.sum_duplicates()
    return m
