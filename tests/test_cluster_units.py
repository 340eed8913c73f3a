"""The emulated network's pure parts, without root: checks, plans, rules, reports, probe."""

import json
import re
import subprocess
import sys

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import counters, flows, jobs, leafspine, lifecycle, nft, shaping
from dist_logreg.ops.cluster.postprocess import fabric_lines
from dist_logreg.ops.cluster.state import Cluster, Link, Spec
from dist_logreg.units import rate_bits


def fabric_state(leaves=2, spines=2, hosts=4) -> Cluster:
    """The state ``up`` would record for a small leaf-spine (nothing is built)."""
    c = Cluster(Spec(name="fab", hosts=hosts, topology="leaf-spine", leaves=leaves, spines=spines))
    c.hosts = [f"fab-h{h}" for h in range(hosts)]
    c.routers = [f"fab-s{k}" for k in range(spines)] + [f"fab-l{j}" for j in range(leaves)]
    c.leaf_of = {h: i * leaves // hosts for i, h in enumerate(c.hosts)}
    c.addresses = {h: f"198.18.0.{i + 1}" for i, h in enumerate(c.hosts)}
    for j in range(leaves):
        for k in range(spines):
            c.links.append(
                Link(
                    f"l{j}-s{k}",
                    "uplink",
                    [f"fab-l{j}", f"s{k}", f"l{j}"],
                    [f"fab-s{k}", f"l{j}", f"s{k}"],
                )
            )
    return c


def test_default_buckets_shape_every_message_of_64_kib_and_up():
    for rate in ("100mbit", "400mbit", "1gbit"):
        # what passes unshaped after a pause is under 15% of a 64 KiB message, so it takes
        # at least 0.85 of its wire time (the goal of issue 21)
        assert shaping.default_burst(rate) <= 0.15 * 65536
        assert shaping.default_burst(rate) >= 2 * shaping.FRAME  # tbf needs a whole frame
    # and the shaper's timer may fire 100 us late at 500 Mbit/s before tokens are lost
    assert shaping.default_burst("500mbit") / (500e6 / 8) >= 100e-6
    assert shaping.default_burst("10gbit") == int(10e9 / 8 * 20e-6)  # 20 us at high rates
    assert shaping.default_queue("1gbit") == 125_000  # 1 ms
    assert shaping.default_queue("100mbit") == 65536  # at least 64 KiB


@pytest.mark.parametrize(
    "spec, message",
    [
        (Spec(name="Fab"), "--name: expected 1-8 lower-case letters"),
        (Spec(name="fab-1"), "--name: expected 1-8 lower-case letters"),
        (Spec(name="fabulous9"), "--name: expected 1-8 lower-case letters"),
        (Spec(subnet="10.1.0.0/24"), "expected a subnet of 198.18.0.0/15"),
        (Spec(subnet="nonsense"), "--subnet: expected an IPv4 network"),
        (Spec(topology="mesh"), "--topology: expected one of flat, two-tier, leaf-spine"),
        (Spec(topology="leaf-spine", hosts=4, spines=0), "--spines: expected 1..64"),
        (Spec(topology="leaf-spine", hosts=1), "--leaves: expected 2..1"),
        (Spec(topology="leaf-spine", hosts=130), "--hosts: 130 hosts (65 per leaf) do not fit"),
        (Spec(loss_links={"l0-s0": 1}), "--loss-link: expected a link among h0, h1, got 'l0-s0'"),
        (Spec(loss_links={"h0": 101}), "--loss-link h0: expected a percentage in [0, 100]"),
        (Spec(queue=100), "--queue: expected at least 1514 bytes"),
        (Spec(hash="l7"), "--hash: expected l3 or l4"),
    ],
)
def test_bad_specs_are_refused_before_anything_is_built(spec, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        lifecycle.check(spec)


def test_link_names_per_topology():
    assert lifecycle.link_ids(Spec(hosts=2)) == ["h0", "h1"]
    assert lifecycle.link_ids(Spec(hosts=2, topology="two-tier")) == ["h0", "h1", "l0", "l1"]
    ids = lifecycle.link_ids(Spec(hosts=2, topology="leaf-spine", spines=3))
    assert ids == ["h0", "h1", "l0-s0", "l0-s1", "l0-s2", "l1-s0", "l1-s1", "l1-s2"]


def test_leaf_spine_address_plan():
    blocks, fabric, mgmt = leafspine.plan("198.18.0.0/24", 3, 9)
    assert str(fabric) == "198.18.0.0/25" and str(mgmt) == "198.18.0.128/25"
    assert [str(b) for b in blocks] == ["198.18.0.0/27", "198.18.0.32/27", "198.18.0.64/27"]
    assert all(b.subnet_of(fabric) for b in blocks)
    assert leafspine._p2p(1, 0, 2) == ("198.18.64.4", "198.18.64.5")  # one /31 per uplink


def test_loss_rules_drop_the_asked_share_and_count_it():
    text = nft.loss_rules("fab", {"s0": 1.0, "fab-h0": 0.25})
    assert 'type filter hook ingress device "s0"' in text
    assert "numgen random mod 1000000 < 10000 counter drop" in text  # 1%
    assert "chain in_fab_h0" in text and "< 2500 counter drop" in text  # 0.25%
    assert text.startswith("table netdev dlr_fab {")
    flow = nft.flow_rules("fab", "output", "eth0")
    assert 'oifname "eth0" meta l4proto tcp update @flows' in flow and "counter;" in flow


def _flow(src, dst, sport, nbytes, spine, c):
    leaf = {h[len("fab-") :]: f"l{j}" for h, j in c.leaf_of.items()}
    return {
        "src": src,
        "dst": dst,
        "sport": sport,
        "dport": 1024,
        "bytes": nbytes,
        "src_leaf": leaf[src],
        "dst_leaf": leaf[dst],
        "spine": spine,
        "spine_bytes": {spine: nbytes} if spine else {},
        "elephant": nbytes >= flows.ELEPHANT_MIN,
    }


def test_pairs_add_what_each_spine_saw():
    c = fabric_state()
    fl = [
        _flow("h0", "h2", 1, 500, "s1", c),
        _flow("h0", "h2", 2, 300, "s0", c),
        _flow("h0", "h1", 3, 700, None, c),
    ]
    pairs = {(p["src"], p["dst"]): p for p in flows.pairs(fl)}
    assert pairs[("h0", "h2")]["spine_bytes"] == {"s0": 300, "s1": 500}
    assert pairs[("h0", "h2")]["sent_bytes"] == 800 and not pairs[("h0", "h2")]["same_leaf"]
    assert pairs[("h0", "h1")]["same_leaf"] and pairs[("h0", "h1")]["spine_bytes"] == {}


def test_flow_map_takes_the_spine_from_the_spines_counters():
    c = fabric_state()
    key = ("198.18.0.1", "198.18.0.3", 40000, 1024)  # h0 -> h2, across the leaves
    local = ("198.18.0.1", "198.18.0.2", 40001, 1024)  # h0 -> h1, under leaf 0
    sent = {"fab-h0": {key: (1000, 10), local: (50, 1)}}
    forwarded = {"fab-s0": {}, "fab-s1": {key: (990, 10)}}
    fl = flows.flow_map(c, sent, forwarded, per_host=2)
    assert fl[0]["spine"] == "s1" and fl[0]["spine_bytes"] == {"s1": 990}
    assert fl[0]["src_ranks"] == [0, 1] and fl[0]["dst_ranks"] == [4, 5]
    assert fl[1]["spine"] is None  # same leaf
    assert "(same leaf)" not in "".join(flows.table(fl[:1])) and "s1" in flows.table(fl)[1]


def _links(loads: dict[str, int]) -> list[dict]:
    rows = {}
    for direction, nbytes in loads.items():
        a, b = direction.split(">")
        link = f"{a}-{b}" if a.startswith("l") else f"{b}-{a}"
        rows.setdefault(link, {"id": link, "class": "uplink", "directions": {}})
        rows[link]["directions"][direction] = {"bytes": nbytes}
    return list(rows.values())


def test_the_uplink_summary_line():
    c = fabric_state()
    links = _links(
        {
            "l0>s0": 29,
            "l0>s1": 71,
            "s0>l1": 29,
            "s1>l1": 71,
            "l1>s0": 0,
            "l1>s1": 0,
            "s0>l0": 0,
            "s1>l0": 0,
        }
    )
    out = counters.uplink_summary(c, links)
    assert out["uplink_max_over_mean"] == pytest.approx(71 / 25)
    assert out["line"] == "uplinks: max/mean load 2.84; spine s1 carried 71% of cross-leaf bytes"
    quiet = counters.uplink_summary(c, _links({"l0>s0": 0, "s0>l0": 0}))
    assert quiet["line"] == "uplinks: no cross-leaf traffic"


def test_tcp_table_counts_what_changed():
    before = {"tcp": {"h0": {"OutSegs": 100, "RetransSegs": 1, "InSegs": 5}}}
    after = {"tcp": {"h0": {"OutSegs": 300, "RetransSegs": 5, "InSegs": 9}}}
    t = counters.tcp_table(before, after)
    assert t["total"]["RetransSegs"] == 4 and t["total"]["retrans_pct"] == pytest.approx(2.0)


def test_run_outputs_follow_the_program(tmp_path):
    prog, result, links, fl = jobs.outputs(["train", "--out", str(tmp_path / "r")], None)
    assert links == tmp_path / "r" / "links.json" and fl == tmp_path / "r" / "flows.json"
    prog, result, links, fl = jobs.outputs(["bench", f"--out={tmp_path / 'b.json'}"], None)
    assert links == tmp_path / "b.links.json" and fl == tmp_path / "b.flows.json"
    prog, result, links, _ = jobs.outputs(["bench"], str(tmp_path / "f"))
    assert prog[-2] == "--out" and prog[-1].startswith("runs/bench-") and prog[-1].endswith(".json")
    assert links == tmp_path / "f" / "links.json"


def test_mpirun_pins_mpi_and_the_launcher_to_their_networks():
    c = fabric_state()
    c.mpi_net, c.oob_net = "198.18.0.0/25", "198.18.0.128/25"
    cmd = jobs.mpirun_command(c, 2, ["dist-logreg", "train"], tcp_links=2)
    assert cmd[cmd.index("btl_tcp_if_include") + 1] == "198.18.0.0/25"
    assert cmd[cmd.index("oob_tcp_if_include") + 1] == "198.18.0.128/25"
    assert cmd[cmd.index("-n") + 1] == "8" and cmd[-2:] == ["dist-logreg", "train"]


def test_fabric_lines_put_retransmissions_next_to_the_latency_tail():
    c = fabric_state()
    report = {
        "tcp": {"total": {"OutSegs": 1000, "RetransSegs": 12, "retrans_pct": 1.2}},
        "uplinks": {"line": "uplinks: max/mean load 1.00"},
    }
    block = {"allreduce_latency_s": {"p50": 0.001, "p99": 0.02, "max": 0.2}, "ceiling": None}
    lines = fabric_lines(c, report, [], block)
    assert "12 of 1,000 segments retransmitted (1.20%)" in lines[1]
    assert "allreduce latency p50 1.00 ms  p99 20.00 ms  max 200.00 ms" in lines[1]
    assert any("no calibrated ceiling" in x for x in lines)


def test_the_builtin_probe_measures_a_tcp_stream():
    """Server and client on loopback (no namespaces needed): bytes arrive both ways."""
    probe = [sys.executable, "-m", "dist_logreg.ops.cluster.probe"]
    server = subprocess.Popen([*probe, "serve", "2"], stdout=subprocess.PIPE, text=True)
    try:
        port = server.stdout.readline().split()[-1]
        client = subprocess.run(
            [*probe, "client", "127.0.0.1", port, "0.3", "1", "1"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        got_server = json.loads(server.stdout.readline())
        got_client = json.loads(client.stdout)
    finally:
        server.wait(timeout=30)
    for got in (got_server, got_client):
        assert got["bytes"] > 1 << 20 and 0.2 < got["seconds"] < 10


def test_rates_parse():
    assert rate_bits("400mbit") == 4e8
