"""Adding a topology is one class and one preset record: a two-switch line, defined only
here, run through the flow engine, ``--exact`` and the packet engine, against hand
computation (docs/extending.md, "Add a topology")."""

import importlib.util

import numpy as np
import pytest

from dist_logreg.sim import spec
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from dist_logreg.sim.runner import sweep
from dist_logreg.sim.text import lines
from dist_logreg.sim.topology.base import Ecmp, csr, ordered

HAVE_NS3 = (
    importlib.util.find_spec("ns") is not None and importlib.util.find_spec("cppyy") is not None
)


class Line:
    """``n`` hosts on switch A, ``n`` on switch B, one cable between A and B.

    Nodes: hosts ``0..2n-1``, A ``2n``, B ``2n+1``. Links: host-up ``e`` (host e -> its
    switch), host-down ``2n + e``, trunk A->B ``4n``, B->A ``4n + 1``.
    """

    class_names = ("host-up", "host-down", "trunk")
    uplink_classes = ("trunk",)

    def __init__(self, n: int, rate: float, trunk_rate: float, latency: float):
        self.n, self.hosts = n, 2 * n
        h = np.arange(2 * n)
        sw = 2 * n + h // n
        self.link_src = np.concatenate([h, sw, [2 * n, 2 * n + 1]])
        self.link_dst = np.concatenate([sw, h, [2 * n + 1, 2 * n]])
        self.link_rate = np.concatenate([np.full(4 * n, rate), [trunk_rate] * 2])
        self.link_latency = np.full(self.link_src.size, latency)
        self.link_class = np.repeat(np.arange(3, dtype=np.int8), [2 * n, 2 * n, 2])
        self.node_names = tuple(f"host{i}" for i in h) + ("swA", "swB")
        self.node_tier = np.concatenate([np.zeros(2 * n, np.int8), [1, 1]])
        self.endpoint_host, self.endpoint_up, self.endpoint_down = h, h, 2 * n + h
        self.max_hops = 3

    def route_many(self, src, dst, keys, ecmp: Ecmp):
        a, b = np.asarray(src), np.asarray(dst)
        trunk = 4 * self.n + (a >= self.n)  # A->B leaving A, B->A leaving B
        cols = np.stack([a, 2 * self.n + b, trunk], axis=1)
        cross = (a // self.n != b // self.n).astype(float)
        w = np.stack([np.ones(a.size), np.ones(a.size), cross], axis=1)
        w[a == b] = 0.0
        return csr((cols, w), a.size, self.link_src.size)

    def paths(self, src, dst):
        ids = self.route_many([src], [dst], [0], Ecmp()).indices
        return [ordered(self, src, ids)] if src != dst else []

    def ecmp_groups(self):
        return []  # no switch has a choice

    def locality(self, level):
        e = np.arange(2 * self.n)
        return {"host": e, "leaf": e // self.n, "pod": e * 0}[level]

    def describe(self):
        return {"hosts_per_switch": self.n}

    def summary(self):
        return f"2 switches x {self.n} hosts, one trunk"


def build_line(values: dict, source: dict) -> Line:
    """The record's ``build``: the line a parsed spec describes."""
    trunk = values.get("trunk-rate", values["rate"])
    return Line(values["hosts-per-switch"], values["rate"], trunk, values["link-latency"])


RECORD = spec.Preset(
    "line",
    f"{__name__}:build_line",
    {
        "hosts-per-switch": (spec.count, None, "hosts", "hosts on each of the two switches"),
        "trunk-rate": (spec.bytes_per_s, None, "B/s", "the A-B cable (default: rate)"),
    },
    "two switches in a line",
)


@pytest.fixture
def line(monkeypatch):
    monkeypatch.setitem(spec.PRESETS, RECORD.name, RECORD)
    return parse_fabric("line:hosts-per-switch=2,rate=80G,trunk-rate=40G,link-latency=1us")


N = 4 << 20
R, RT, L, ALPHA = 10e9, 5e9, 1e-6, 5e-6  # B/s host links and trunk, s per hop, s per message


def test_the_record_is_a_preset_with_its_keys(line):
    assert line.hosts == 4 and line.links == 10 and line.class_names[2] == "trunk"
    assert line.link_rate[8] == RT and line.source["trunk-rate"] == "spec"
    assert [int(i) for i in line.route(1, 2)[0][0]] == [1, 8, 6]  # up, trunk, down
    assert [p.tolist() for p in line.topology.paths(3, 0)] == [[3, 9, 4]]
    assert place(4, line, 1, "spread").tolist() == [0, 2, 1, 3]  # leaf by leaf


@pytest.mark.parametrize("exact", [False, True])
def test_ring_by_hand(line, exact):
    # ranks 0,1 on A, 2,3 on B: every step, 1->2 and 3->0 cross the trunk alone (one flow
    # each way, 3 hops) at 5 GB/s; the in-switch flows (2 hops, 10 GB/s) finish first. Six
    # steps of N/4. --exact: rank 1's trunk message waits for its previous one, which is
    # last to arrive every step, so nothing overlaps: the same time.
    r = get_engine("flow").run(Job(line, place(4, line), "ring", N, exact=exact))
    want = 6 * (ALPHA + 3 * L + N / 4 / RT)
    assert r.time_s == pytest.approx(want, rel=1e-9)
    assert r.ideal_s == pytest.approx(6 * (ALPHA + 3 * L + N / 4 / R), rel=1e-9)
    assert r.bottleneck == "trunk" and r.collisions == 0 and r.max_flows_per_uplink == 0


def test_recursive_doubling_shares_the_trunk(line):
    # distance 1: in-switch pairs (2 hops, N at 10 GB/s); distance 2: 0<->2 and 1<->3, two
    # flows each way on the trunk: 2.5 GB/s each.
    r = get_engine("flow").run(Job(line, place(4, line), "recursive-doubling", N))
    want = (ALPHA + 2 * L + N / R) + (ALPHA + 3 * L + N / (RT / 2))
    assert r.time_s == pytest.approx(want, rel=1e-9)
    assert r.extra["cross_leaf_bytes"] == pytest.approx(4 * N)  # two flows of N each way


def test_the_sweep_and_its_table_name_the_toy(line):
    doc = sweep(line, "line:...", [4], ["ring"], [N])
    assert doc["fabric"]["shape"] == {"hosts_per_switch": 2}
    assert doc["fabric"]["switches"] == 2 and doc["fabric"]["params"]["trunk-rate"]["unit"] == "B/s"
    assert "(2 switches x 2 hosts, one trunk)" in lines(doc)[0]


@pytest.mark.skipif(not HAVE_NS3, reason="ns-3 not installed: pip install -e '.[packet]'")
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_packet_engine_builds_the_toy(line):
    r = get_engine("packet").run(Job(line, place(4, line), "ring", N))
    trunk = {d["link"]: d for d in r.extra["packet"]["links_detail"] if d["class"] == "trunk"}
    payload = 6 * N / 4  # rank 1's six messages to rank 2 cross A->B, nothing else does
    assert payload <= trunk["swA>swB"]["wire_bytes"] <= 1.1 * payload  # headers and ACKs
    assert r.time_s == pytest.approx(6 * (ALPHA + 3 * L + N / 4 / RT), rel=0.15)
