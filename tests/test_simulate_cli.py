"""``dist-logreg simulate`` end to end: JSON shape, --out, exit statuses, report, replay."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dist_logreg.collective import algorithms
from dist_logreg.sim import from_cluster as cluster
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place

OURS = algorithms.scheduled()  # ring, recursive-doubling, rabenseifner, hierarchical


def cli(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "dist_logreg", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_json_has_the_issues_keys(tmp_path):
    r = cli(
        "--fabric",
        "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4,rate=100G",
        "--ranks",
        "4,8",
        "--bytes",
        "64K,1M",
        "--seeds",
        "3",
        "--json",
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert json.loads((tmp_path / "simulate.json").read_text()) == doc
    assert {"fabric", "placement", "results"} <= set(doc)
    assert len(doc["results"]) == 2 * len(OURS) * 2
    for res in doc["results"]:
        for key in (
            "algorithm",
            "bytes",
            "ranks",
            "time_s",
            "time_s_seeds",
            "ideal_s",
            "busbw",
            "bottleneck",
            "max_flows_per_uplink",
            "collisions",
            "links",
        ):
            assert key in res
        assert len(res["time_s_seeds"]) == 3 and res["time_s"] >= res["ideal_s"] * (1 - 1e-12)
        assert set(res["links"]["host-up"]) == {"max_util", "mean_util"}
    assert doc["fabric"]["params"]["rate"] == {"value": 100e9 / 8, "unit": "B/s", "source": "spec"}
    assert doc["fabric"]["params"]["alpha"]["source"] == "default"


def test_table_and_bad_input():
    r = cli("--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "1M", "--algorithm", OURS[0])
    assert r.returncode == 0 and "busbw" in r.stdout and "from default" in r.stdout
    bad = cli("--fabric", "flat:hosts=4,rate=fast", "--ranks", "4")
    assert bad.returncode == 2 and "rate: expected a rate" in bad.stderr and "'fast'" in bad.stderr
    assert cli("--fabric", "flat:hosts=4", "--ranks", "5").returncode == 2
    assert cli("--fabric", "flat:hosts=4", "--ranks", "4", "--algorithm", "nope").returncode == 2
    assert cli("--fabric", "flat:hosts=4", "--ranks", "0").returncode == 2


def test_report_draws_simulate_json(tmp_path):
    assert (
        cli(
            "--fabric",
            "flat:hosts=8",
            "--ranks",
            "4,8",
            "--bytes",
            "1M",
            "--out",
            str(tmp_path / "s"),
        ).returncode
        == 0
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dist_logreg",
            "report",
            str(tmp_path / "s"),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r" / "1-sim-time.png").stat().st_size > 1000
    assert "Simulated allreduce" in (tmp_path / "r" / "report.md").read_text()


def test_run_predicts_step_time(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    summary = {
        "world_size": 2,
        "steps": 10,
        "allreduce": {"calls": 10, "bytes": 10 * 4096},
        "time_s": {"compute": 0.5, "comm": 0.1, "total": 0.6},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    r = cli(
        "--fabric",
        "flat:hosts=8,rate=100G",
        "--ranks",
        "8",
        "--run",
        str(run),
        "--json",
        "--algorithm",
        OURS[0],
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    pred = doc["run"]["predictions"][0]
    assert doc["results"][0]["bytes"] == 4096
    assert pred["compute_s"] == pytest.approx(0.05 * 2 / 8)  # per step, the batch over 8 ranks
    assert pred["comm_s"] == pytest.approx(doc["results"][0]["time_s"])
    assert (tmp_path / "nothing").exists() is False
    assert (
        cli(
            "--fabric", "flat:hosts=8", "--ranks", "8", "--run", str(tmp_path / "nothing")
        ).returncode
        == 2
    )


def test_cluster_state_and_flow_map_replay():
    # the shapes cluster up writes (state.json) and cluster run records (flows.json)
    state = {
        "spec": {
            "name": "simv",
            "hosts": 4,
            "topology": "leaf-spine",
            "rate": "400mbit",
            "uplink_rate": "400mbit",
            "leaves": 2,
            "spines": 2,
            "hash": "l4",
        },
        "calibration": {"classes": {"host": {"bidir_Gbps": 0.38}, "uplink": {"bidir_Gbps": 0.36}}},
    }
    preset, over = cluster.overrides(state)
    assert preset == "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2"
    flows = {
        "flows": [
            {"src": "h0", "dst": "h2", "spine": "s1", "bytes": 9000},
            {"src": "h0", "dst": "h2", "spine": "s0", "bytes": 10},
            {"src": "h1", "dst": "h3", "spine": "s1", "bytes": 9000},
            {"src": "h0", "dst": "h1", "spine": None, "bytes": 9000},
        ]
    }
    pins = cluster.pinned(flows, ["s0", "s1"])
    assert pins == {(0, 2): 1, (1, 3): 1}
    fab = parse_fabric(preset, **over)
    assert fab.link_rate[0] == pytest.approx(0.38e9 / 8)
    import dataclasses

    pinned = dataclasses.replace(fab, pinned=pins)
    for key in range(10):  # every connection of a pinned pair takes the measured spine
        ids = pinned.route(0, 2, key)[0][0]
        up = [int(i) for i in ids if pinned.link_class[i] == 2]
        assert (up[0] - pinned.shape.bases()[1]) % 2 == 1
    # both cross-leaf flows of a distance-2 step on spine 1: they share its uplink
    host_of = place(4, pinned)
    t = get_engine("flow").run(Job(pinned, host_of, OURS[0], 1 << 20)).time_s
    assert t > 0


def test_replay_of_a_flow_map_recorded_on_the_emulated_leaf_spine():
    # recorded by `cluster run -- bench` on a 4-host, 2 x 2 leaf-spine (--hash l4): the map
    # put h2>h0, h3>h1 and h0>h2 on spine s0 and h1>h3 on s1
    data = Path(__file__).parent / "data" / "simv"
    state = json.loads((data / "state.json").read_text())
    spines = [r.split("-", 1)[1] for r in state["routers"] if r.split("-", 1)[1].startswith("s")]
    pins = cluster.pinned(json.loads((data / "flows.json").read_text()), spines)
    assert {k: pins[k] for k in [(2, 0), (3, 1), (0, 2), (1, 3)]} == {
        (2, 0): 0,
        (3, 1): 0,
        (0, 2): 0,
        (1, 3): 1,
    }
    preset, over = cluster.overrides(state)
    fab = dataclasses.replace(parse_fabric(preset, **over), pinned=pins)
    rd = OURS[1]
    r = get_engine("flow").run(Job(fab, place(4, fab), rd, 1 << 24))
    # the distance-2 step: h2>h0 and h3>h1 share leaf 1's uplink to s0, so that step takes
    # twice the distance-1 step (one flow per host link)
    rate = fab.link_rate[0]
    step1 = fab.alpha + 2 * fab.link_latency[0] + (1 << 24) / rate
    step2 = (
        fab.alpha + 4 * fab.link_latency[0] + 2 * (1 << 24) / fab.link_rate[fab.link_class == 2][0]
    )
    assert r.max_flows_per_uplink == 2 and r.bottleneck in ("leaf-up", "spine-down")
    assert r.time_s == pytest.approx(step1 + step2, rel=1e-9)


def test_cost_model_supplies_alpha_and_gamma(tmp_path):
    # a model fitted (collective/costfit.py) to synthetic measurements of known parameters:
    # alpha_inter 40 us, gamma 0.1 ns/B; the one-switch ring must then be its closed form
    from dist_logreg.collective import costfile
    from dist_logreg.collective.closed_form import model_time
    from tests.test_costmodel import one_segment_model

    model = one_segment_model()
    path = tmp_path / "model.json"
    costfile.save(model, path)
    ring = OURS[0]
    alpha = model["algorithms"][ring]["segments"][0]["inter"]["alpha_s"]
    gamma = model["gamma"][0]["s_per_byte"]
    r = cli(
        "--fabric",
        "flat:hosts=5,rate=100G,link-latency=0",
        "--ranks",
        "5",
        "--bytes",
        "3M",
        "--algorithm",
        ring,
        "--cost-model",
        str(path),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert alpha == pytest.approx(40e-6, rel=0.01) and gamma == pytest.approx(1e-10, rel=0.01)
    want = model_time(ring, 3 << 20, 5, alpha, 8 / 100e9, gamma)
    assert doc["results"][0]["time_s"] == pytest.approx(want, rel=1e-9)
    assert doc["fabric"]["params"]["alpha"]["source"].startswith("cost model")
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    bad = cli(
        "--fabric", "flat:hosts=5", "--ranks", "5", "--cost-model", str(tmp_path / "bad.json")
    )
    assert bad.returncode == 2 and "bad.json" in bad.stderr
