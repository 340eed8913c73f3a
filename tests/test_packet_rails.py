"""The packet engine on the rail family: GPUs as ns-3 hosts behind their scale-up switch and
NICs, on the flow engine's own paths (PXN, rails, planes, spraying from the NIC on).

Oracles: the flow engine's time where nothing is shared (the issue's rule for uncongested
RoCE: within 5%), the flow engine's route for every link a connection's data crosses, and
the rail wiring itself (a transfer inside a host never leaves it; one between GPUs of a
rail never reaches a spine). Each case is 2 hosts of 2-4 GPUs and at most 1 MiB; ns-3's
import (about 20 s) is paid once per session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim import packet_graph
from dist_logreg.sim.bounds import check_result, lower_bound_s
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place

HAVE_NS3 = all(importlib.util.find_spec(m) is not None for m in ("ns", "cppyy"))

RAIL = "rail:hosts-per-unit=2,rails=2,gpus-per-host=2,spines=2"
RAIL4 = "rail:hosts-per-unit=2,rails=4,gpus-per-host=4,spines=2"
TOR = "tor:hosts-per-unit=2,rails=2,gpus-per-host=2,spines=1"
RAIL3 = "rail3:hosts-per-unit=1,rails=2,gpus-per-host=2,spines=2,units=2,units-per-pod=1"
PLANES = (
    "rail:units=2,hosts-per-unit=1,rails=2,gpus-per-host=2,spines=4,nic-ports=2,"
    "dual-tor=yes,planes=2"
)
MIB = 1 << 20


def needs_ns3(test):
    """Skip without ns-3; slow (the import alone takes about 20 s); a hard timeout."""
    test = pytest.mark.skipif(
        not HAVE_NS3, reason="ns-3 not installed: pip install -e '.[packet]'"
    )(test)
    return pytest.mark.timeout(300)(pytest.mark.slow(test))


def _job(spec, endpoints, nbytes=MIB, **options):
    fab = parse_fabric(spec)
    opts = {"transport": "roce"} | options
    return Job(fab, np.asarray(endpoints), "ring", nbytes, exact=True, options=opts)


def _link_bytes(job):
    """Wire bytes per directed link (the fabric's ids first) and the transfers."""
    from dist_logreg.sim import ns3net
    from dist_logreg.sim.packet import PacketEngine

    opts, net, tr, _, _ = PacketEngine().prepare(job)
    res = ns3net.run(net, tr, opts.transport_options, stop_s=10.0)
    assert res.complete
    return res.link_bytes, tr


def _classes(job, result) -> set:
    return {d["class"] for d in result.extra["packet"]["links_detail"]}


def test_a_rail_graph_puts_a_node_per_gpu_and_keeps_the_fabrics_link_ids():
    """No ns-3 needed: GPUs are the hosts, the fabric's links keep their ids and ends
    (a host's end moved to the GPU's port or its NIC), every added link is a cable."""
    fab = parse_fabric(RAIL4)
    g = packet_graph.graph_of(fab)
    assert g.hosts == fab.endpoints == 8 and g.fabric_links == fab.links
    inside = g.link_src[: fab.links] < g.edge_nodes
    assert (inside == (fab.node_tier[fab.link_src] == 0)).all()  # a host's own links
    pairs = set(zip(g.link_src.tolist(), g.link_dst.tolist(), strict=True))
    assert all((b, a) in pairs for a, b in pairs)
    # GPU 1 to GPU 6 (host 1, rail 2), PXN: over GPU 2's port (host 0, rail 2) to its NIC
    path = g.path(1, 6, fab.route(1, 6, 0)[0][0])
    nodes = [int(g.link_src[k]) for k in path] + [int(g.link_dst[path[-1]])]
    assert nodes[0] == 1 and nodes[-1] == 6 and nodes[1] == g.gpu_port[1]
    assert g.gpu_port[2] in nodes and g.gpu_port[6] == nodes[-2]
    assert all(
        int(g.link_dst[a]) == int(g.link_src[b]) for a, b in zip(path, path[1:], strict=False)
    )


@needs_ns3
@pytest.mark.parametrize(
    "spec, ends",
    [(RAIL, [0, 2]), (RAIL, [0, 1]), (RAIL, [0, 3]), (TOR, [0, 2]), (RAIL3, [0, 2])],
)
def test_uncongested_roce_takes_the_flow_engines_time_within_5_percent(spec, ends):
    """Two ranks, nothing shared (each direction its own links): the issue's rule."""
    job = _job(spec, ends)
    res = check_result(job, get_engine("packet").run(job), "packet")
    flow = get_engine("flow").run(_job(spec, ends))
    assert res.time_s == pytest.approx(flow.time_s, rel=0.05)


@needs_ns3
@pytest.mark.parametrize("transport", ["roce", "tcp"])
def test_a_transfer_inside_a_host_crosses_only_its_scale_up_links(transport):
    job = _job(RAIL4, [1, 3], transport=transport)
    res = get_engine("packet").run(job)
    assert _classes(job, res) == {"scaleup-up", "scaleup-down"}
    detail = res.extra["packet"]["links_detail"]
    assert all(d["wire_bytes"] >= MIB / 2 for d in detail)  # both halves of the ring, each way


@needs_ns3
@pytest.mark.parametrize("transport", ["roce", "tcp"])
def test_same_rail_gpus_of_two_hosts_meet_on_their_leaf_not_a_spine(transport):
    """GPU 1 of host 0 and GPU 1 of host 1: rail 1's leaf, no scale-up, no spine."""
    job = _job(RAIL4, [1, 5], transport=transport)
    res = get_engine("packet").run(job)
    assert _classes(job, res) == {"nic-up", "nic-down"}
    assert {d["link"] for d in res.extra["packet"]["links_detail"]} == {
        "host0>leaf1",
        "host1>leaf1",
        "leaf1>host0",
        "leaf1>host1",
    }


@needs_ns3
@pytest.mark.parametrize(
    "spec, ends",
    [
        (RAIL4, [1, 6]),  # PXN: over the scale-up switch to rail 2's NIC
        (RAIL4.replace("rail:", "rail:pxn=no,"), [1, 6]),  # rail 1 to rail 2: a spine
        (TOR, [1, 2]),
        (RAIL3, [1, 2]),  # across pods: a core
        (PLANES, [0, 2]),  # a port's plane: its ToR and that plane's spines only
        (PLANES, [1, 3]),
    ],
)
def test_data_crosses_exactly_the_flow_engines_route(spec, ends):
    """Every link carrying a connection's data (more than a quarter of the bytes: ACKs
    carry a few hundred) is on the flow engine's route for that rank pair, either way."""
    job = _job(spec, ends)
    link_bytes, _ = _link_bytes(job)
    fab = job.fabric
    a, b = ends
    route = set(fab.route(a, b, 1)[0][0].tolist()) | set(fab.route(b, a, 2)[0][0].tolist())
    busy = set(np.flatnonzero(link_bytes[: fab.links] > MIB / 4).tolist())
    assert busy == route


@needs_ns3
def test_spraying_takes_a_nics_ports_in_turn_and_still_arrives():
    """hash=spray: pinned to the NIC (PXN hop included); the NIC takes its two ports in
    turn, so each carries half the packets (a packet either way), the other NIC nothing."""
    spec = RAIL.replace("rail:", "rail:hash=spray,nic-ports=2,")
    # selective: the leaf sprays the two ports down at random, out of order (go-back-N
    # would resend much of it)
    job = _job(spec, [0, 2], retransmit="selective")
    link_bytes, tr = _link_bytes(job)
    assert tr.conn_pin is not None and tr.sprayed()
    fab = job.fabric
    ports = np.flatnonzero(
        (fab.link_class == fab.class_names.index("nic-up")) & (fab.link_src == 0)
    )
    nic0, nic1 = link_bytes[ports[:2]], link_bytes[ports[2:]]  # ids by (NIC, port)
    assert abs(nic0[0] - nic0[1]) <= 2 * fab.mtu and nic0.min() > MIB / 4
    assert (nic1 < MIB / 8).all()


@needs_ns3
def test_sprayed_over_two_planes_uncongested_roce_takes_the_flow_engines_time():
    """Each port in its own plane of one spine; the flow engine splits the flow evenly
    over both: so does the NIC, and nothing arrives out of order (no NACK). (A leaf with
    two spines in its plane sprays at random, as every switch: out of order.)"""
    spec = PLANES.replace("rail:", "rail:hash=spray,").replace("spines=4", "spines=2")
    job = _job(spec, [0, 2])
    res = get_engine("packet").run(job)
    flow = get_engine("flow").run(_job(spec, [0, 2]))
    assert res.time_s == pytest.approx(flow.time_s, rel=0.05)
    assert res.extra["packet"]["nacks"] == 0


@needs_ns3
def test_a_roce_qp_is_paced_at_its_paths_nic_not_the_gpus_port():
    """The GPU's one device runs at the scale-up rate plus the NIC's; a QP across hosts
    sends at its NIC port's rate, so the host's own queue holds about a packet, never the
    message (then DCQCN's cuts start from the NIC's rate)."""
    job = _job(RAIL, [0, 2], pfc="on")
    res = get_engine("packet").run(job)
    pk = res.extra["packet"]
    assert pk["peak_host_nic_bytes"] <= 2 * job.fabric.mtu
    assert pk["pause_frames"] == 0 and pk["drops"] == 0


@needs_ns3
def test_a_preset_too_big_is_refused_by_the_wall_time_estimate_in_one_line():
    from dist_logreg.sim.packet import PacketEngine

    fab = parse_fabric("superpod-h100:units=1")
    job = Job(fab, place(256, fab), "ring", 1 << 30, options={"transport": "roce"})
    with pytest.raises(UsageError, match="--engine packet: this run would take") as caught:
        PacketEngine().prepare(job)
    assert "\n" not in str(caught.value)


@needs_ns3
def test_a_small_preset_runs_from_the_cli_never_below_the_jobs_lower_bound(tmp_path):
    """The runner's check applies (check_result); the time is also checked here against
    the bound computed for the same job, and the flow engine's ideal."""
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "dist_logreg", "simulate", "--fabric", "superpod-h100:units=1"]
    cmd += ["--ranks", "16", "--bytes", "256K", "--algorithm", "ring", "--engine", "packet"]
    cmd += ["--transport", "roce", "--json", "--out", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=280, env=env, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads((tmp_path / "simulate.json").read_text())["results"][0]
    fab = parse_fabric("superpod-h100:units=1")
    bound = lower_bound_s(Job(fab, place(16, fab), "ring", 256 << 10))
    assert row["time_s"] >= bound > 0 and row["time_s"] >= row["ideal_s"]
