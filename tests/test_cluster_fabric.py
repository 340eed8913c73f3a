"""The routed leaf-spine fabric: ECMP, the flow map, link counters, calibration.

Root and ``nft`` (Debian package nftables) are needed; elsewhere these skip with the
reason. One 2-leaf x 2-spine x 4-host cluster is shared by the module (built once, with a
short calibration), and every test that builds its own tears it down.
"""

import json
import re
import subprocess

import numpy as np
import pytest

from dist_logreg.ops.cluster import STATE_ROOT
from tests.cluster_tools import cli, leftovers, needs_nft, read_json
from tests.helpers import BIN, mpi_env, run_mpi, train_cmd

NAME, SUBNET = "fabt", "198.18.17.0/24"
COMMON = [
    "--samples",
    "2000",
    "--features",
    "300",
    "--batch-size",
    "100",
    "--steps",
    "12",
    "--seed",
    "6",
]


@pytest.fixture(scope="module")
def fabric():
    r = cli(
        "up",
        "--name",
        NAME,
        "--subnet",
        SUBNET,
        "--topology",
        "leaf-spine",
        "--hosts",
        "4",
        "--rate",
        "400mbit",
        "--calibrate",
        "--calibrate-seconds",
        "0.5",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    yield r.stdout
    cli("down", "--name", NAME)
    assert leftovers(NAME) == []


@pytest.fixture(scope="module")
def trained(fabric, tmp_path_factory):
    """A 4-rank training run across the fabric (one rank per host) with a p2p ring."""
    out = tmp_path_factory.mktemp("fabric") / "run"
    r = cli("run", "--name", NAME, "--", "train", *COMMON, "--allreduce", "ring", "--out", str(out))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r.stdout


@needs_nft
def test_up_builds_routers_and_multipath_routes(fabric):
    state = read_json(STATE_ROOT / NAME / "state.json")
    assert [x.split("-")[1] for x in state["routers"]] == ["s0", "s1", "l0", "l1"]
    assert state["leaf_of"] == {f"{NAME}-h{h}": h // 2 for h in range(4)}
    assert sorted(link["id"] for link in state["links"] if link["cls"] == "uplink") == [
        "l0-s0",
        "l0-s1",
        "l1-s0",
        "l1-s1",
    ]
    route = subprocess.run(
        ["ip", "-n", f"{NAME}-l0", "route", "show", "198.18.17.64/26"],
        capture_output=True,
        text=True,
    ).stdout
    assert route.count("nexthop via") == 2  # one route over both spines
    key = "net.ipv4.fib_multipath_hash_policy"
    policy = subprocess.run(
        ["ip", "netns", "exec", f"{NAME}-l0", "sysctl", "-n", key], capture_output=True, text=True
    )
    assert policy.stdout.strip() == "1"  # --hash l4 is the default


@needs_nft
def test_calibration_is_stored_and_below_the_nominal_rate(fabric):
    cal = read_json(STATE_ROOT / NAME / "state.json")["calibration"]
    assert set(cal["classes"]) == {"host", "uplink"}
    for cls in cal["classes"].values():
        # Shaped to 400 Mbit/s: an unshaped veth would carry several Gbit/s.
        assert 0 < cls["one_way_Gbps"] <= 0.42 and 0 < cls["bidir_Gbps"] <= 0.42
    assert "calibrated uplink" in cli("status", "--name", NAME).stdout


@needs_nft
def test_training_on_the_fabric_gives_the_one_host_model(trained, tmp_path):
    out, _ = trained
    local = run_mpi(4, train_cmd(*COMMON, "--allreduce", "ring", "--out", str(tmp_path / "l")))
    assert local.returncode == 0, local.stderr
    a, b = np.load(tmp_path / "l" / "model.npz"), np.load(out / "model.npz")
    np.testing.assert_allclose(b["coef"], a["coef"], rtol=1e-10)
    fabric = read_json(out / "summary.json")["fabric"]
    # Both classes are 400 Mbit/s nominally: the measured bidirectional ceiling breaks the tie.
    cal = read_json(STATE_ROOT / NAME / "state.json")["calibration"]["classes"]
    slowest = min(cal, key=lambda k: cal[k]["bidir_Gbps"])
    assert fabric["ceiling"]["class"] == slowest and 0 < fabric["busbw_pct_of_ceiling"]


@needs_nft
def test_link_bytes_add_up(trained):
    out, stdout = trained
    links = read_json(out / "links.json")
    traffic = read_json(out / "traffic.json")
    pairs = {(p["src"], p["dst"]): p for p in links["pairs"]}
    for (src, dst), p in pairs.items():
        i, j = int(src[1:]), int(dst[1:])
        if i // 2 == j // 2:
            assert p["same_leaf"] and p["spine_bytes"] == {}  # spine share 0 under one leaf
        else:
            assert not p["same_leaf"] and 0 < sum(p["spine_bytes"].values()) <= p["sent_bytes"]
        # TCP/IP carried at least the payload the ring sent from rank i to rank j.
        assert p["sent_bytes"] >= traffic["bytes"][i][j]
    # The ring's cross-leaf hops (1 -> 2, 3 -> 0) crossed the spines; same-leaf did not.
    assert traffic["bytes"][1][2] > 0 and not pairs[("h1", "h2")]["same_leaf"]
    rows = {row["id"]: row["directions"] for row in links["links"]}
    into = sum(rows[f"l{j}-s{k}"][f"l{j}>s{k}"]["bytes"] for j in (0, 1) for k in (0, 1))
    out_of = sum(rows[f"l{j}-s{k}"][f"s{k}>l{j}"]["bytes"] for j in (0, 1) for k in (0, 1))
    assert into == out_of > 0  # a spine forwards all it gets, and nothing else
    share = links["uplinks"]["spine_share"]
    assert set(share) == {"s0", "s1"} and abs(sum(share.values()) - 1) < 1e-9
    assert links["uplinks"]["line"] in stdout and "of cross-leaf bytes" in stdout


@needs_nft
def test_every_flow_across_leaves_has_its_spine(trained):
    out, stdout = trained
    flows = read_json(out / "flows.json")["maps"][0]
    cross = [f for f in flows["flows"] if f["src_leaf"] != f["dst_leaf"]]
    assert cross and all(f["spine"] in ("s0", "s1") for f in cross)
    for f in cross:  # one spine saw the whole flow: the path did not change mid-flow
        assert list(f["spine_bytes"]) == [f["spine"]] and f["spine_bytes"][f["spine"]] <= f["bytes"]
    assert all(f["spine"] is None for f in flows["flows"] if f["src_leaf"] == f["dst_leaf"])
    assert "spine" in stdout and "TCP flows crossed the spines" in stdout


@needs_nft
def test_hash_l3_sends_every_flow_of_a_host_pair_over_one_spine(tmp_path):
    name = "fabh"
    try:
        r = cli(
            "up",
            "--name",
            name,
            "--subnet",
            "198.18.18.0/24",
            "--topology",
            "leaf-spine",
            "--hosts",
            "2",
            "--hash",
            "l3",
        )
        assert r.returncode == 0, r.stderr
        # 2 ranks per host: 4 rank pairs across the leaves, each its own TCP connection.
        r = cli(
            "run",
            "--name",
            name,
            "--ranks-per-host",
            "2",
            "--",
            "bench",
            "--allreduce",
            "recursive-doubling",
            "--min-bytes",
            "256K",
            "--max-bytes",
            "256K",
            "--iters",
            "3",
            "--out",
            str(tmp_path / "b.json"),
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        flows = read_json(tmp_path / "b.flows.json")["maps"][0]["flows"]
        for src, dst in (("h0", "h1"), ("h1", "h0")):
            mine = [f for f in flows if (f["src"], f["dst"]) == (src, dst)]
            assert len({(f["sport"], f["dport"]) for f in mine}) >= 2  # several connections
            assert len({f["spine"] for f in mine}) == 1, mine  # one path for the address pair
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []


@needs_nft
def test_a_lossy_uplink_drops_and_down_leaves_nothing(tmp_path):
    name = "fabd"
    r = cli(
        "up",
        "--name",
        name,
        "--subnet",
        "198.18.19.0/24",
        "--topology",
        "leaf-spine",
        "--hosts",
        "2",
        "--spines",
        "1",
        "--loss-link",
        "l0-s0=5",
    )
    try:
        assert r.returncode == 0, r.stderr
        assert "loss l0-s0 5.0%" in r.stdout
        assert len(leftovers(name)) == 2 + 2 + 1 + 1 + 2  # hosts, leaves, spine, mgmt bridge+links
        r = cli(
            "run",
            "--name",
            name,
            "--fabric-out",
            str(tmp_path / "f"),
            "--",
            "bench",
            "--allreduce",
            "ring,rabenseifner",
            "--min-bytes",
            "1M",
            "--max-bytes",
            "1M",
            "--iters",
            "30",  # several of the sampler's 0.5 s polls, however loaded the machine
            "--out",
            str(tmp_path / "b.json"),
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        rows = {row["id"]: row for row in read_json(tmp_path / "f" / "links.json")["links"]}
        assert sum(d["loss_drops"] for d in rows["l0-s0"]["directions"].values()) > 0
        assert sum(d["loss_drops"] for d in rows["h0"]["directions"].values()) == 0
        records = json.loads((tmp_path / "b.json").read_text())["records"]
        assert [r["algorithm"] for r in records] == ["ring", "rabenseifner"]  # merged back
        assert all(r["busbw"] > 0 for r in records)
        assert not list(tmp_path.glob("b.part-*"))
        # One flow map per algorithm (each its own job, its own connections). Every flow
        # between the leaves crossed the lossy uplink, and says so; the sender's
        # per-connection counters carry the retransmissions the loss caused.
        maps = read_json(tmp_path / "f" / "flows.json")["maps"]
        assert [m["label"] for m in maps] == ["ring", "rabenseifner"]
        ports = [{(f["sport"], f["dport"]) for f in m["flows"]} for m in maps]
        assert not ports[0] & ports[1]
        cross = [f for m in maps for f in m["flows"] if f["spine"]]
        assert cross and all(f["lossy_links"] == {"l0-s0": 5.0} for f in cross)
        for f in cross:  # its host link, the uplinks out of its leaf and into the other one
            up, down = f"{f['src_leaf']}-s0", f"{f['dst_leaf']}-s0"
            assert f["links"] == [f["src"], up, down, f["dst"]]
        assert sum(f["retransmits"] for f in cross) > 0
        assert re.search(r"h[01]>h[01] crossed l0-s0 \(5% loss\): \d+ retransmission", r.stdout)
        assert "flow map        ring" in r.stdout and "flow map        rabenseifner" in r.stdout
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []


@needs_nft
def test_the_builtin_probe_calibrates_inside_the_namespaces(fabric):
    """The probe used where iperf3 is missing gives the same kind of ceiling."""
    from dist_logreg.ops.cluster import load
    from dist_logreg.ops.cluster.calibrate import calibrate

    cal = calibrate(load(NAME), 0.5, tool="builtin", say=lambda *_: None)
    assert cal["tool"] == "builtin" and set(cal["classes"]) == {"host", "uplink"}
    for cls in cal["classes"].values():
        assert 0 < cls["one_way_Gbps"] <= 0.42 and all(
            0 < x <= 0.42 for x in cls["bidir_each_Gbps"]
        )


@needs_nft
def test_the_report_draws_the_links_and_flows_of_a_cluster_run(trained, tmp_path):
    """`cluster up` -> `cluster run -- train` -> `report`: the fabric plots are there."""
    out, _ = trained
    r = subprocess.run(
        [str(BIN / "dist-logreg"), "report", str(out), "--out", str(tmp_path / "rep")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**mpi_env(), "MPLBACKEND": "Agg"},
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for png in ("links.png", "flows.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 1000
    assert "links.png" in (tmp_path / "rep" / "report.md").read_text()
