"""Fabric resolution from the library: ``cluster:NAME`` from a cluster's state, a flow map
replayed, a cost model's alpha and gamma; one path, the one the command line takes."""

import json
from pathlib import Path

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim.fabric import cost_model_fabrics, parse_fabric, resolve

DATA = Path(__file__).parent / "data" / "simv"


def state() -> dict:
    return json.loads((DATA / "state.json").read_text())


def test_a_cluster_spec_without_its_state_is_a_usage_error_not_a_crash():
    with pytest.raises(UsageError, match="cluster:x"):
        parse_fabric("cluster:x")
    with pytest.raises(UsageError, match="state"):
        resolve("cluster:x")


def test_a_cluster_state_file_gives_its_leaf_spine_and_calibrated_rates():
    doc = state()
    fab, text = resolve("cluster:simv", cluster_state=doc)
    spec = doc["spec"]
    assert text.startswith("cluster:simv = leaf-spine:")
    assert fab.hosts == spec["hosts"] and fab.shape.spines == spec["spines"]
    cal = doc.get("calibration", {}).get("classes", {})
    if "host" in cal:  # the calibrated bidirectional ceiling wins over the shaped rate
        assert fab.link_rate[0] == pytest.approx(cal["host"]["bidir_Gbps"] * 1e9 / 8)
    assert fab.polarize and fab.source["hash-polarize"].startswith("cluster")


def test_the_users_keys_win_over_the_clusters():
    fab, _ = resolve("cluster:simv,alpha=2ms,rate=1G", cluster_state=state())
    assert fab.alpha == pytest.approx(2e-3) and fab.link_rate[0] == pytest.approx(1e9 / 8)
    assert fab.source["rate"] == "spec"


def test_a_flow_map_pins_each_pair_to_its_spine():
    flows = json.loads((DATA / "flows.json").read_text())
    fab, _ = resolve("cluster:simv", cluster_state=state(), flows=flows)
    assert fab.pinned[(1, 3)] == 1 and fab.pinned[(0, 2)] == 0  # as recorded (spine names)
    spine0 = fab.shape.bases()[1]  # leaf 0's uplink to spine 0
    for key in range(8):
        path = fab.route(1, 3, key)[0][0]
        assert int(path[1]) == spine0 + 1  # leaf 0 -> spine 1, whatever the hash says


def test_a_cost_model_gives_each_algorithm_its_alpha_and_gamma():
    from dist_logreg.collective import costfile
    from tests.test_costmodel import one_segment_model

    model = one_segment_model()
    fab = parse_fabric("flat:hosts=4")
    fabric_for = cost_model_fabrics(fab, model, "model.json")
    got = fabric_for("ring", 1 << 20)
    par, _ = costfile.params(model, "ring")
    assert got.alpha == pytest.approx(par[0, 2]) and got.gamma == pytest.approx(par[0, 4])
    assert got.source["alpha"].startswith("cost model model.json (ring")
    assert fabric_for("ring", 1 << 20) is got  # one fabric per (alpha, gamma)
    assert np.array_equal(got.link_rate, fab.link_rate)


def test_the_command_line_takes_the_same_path(tmp_path, monkeypatch, capsys):
    # a cluster "up" under a temporary state root: the command line reads its state and the
    # flow map, and the fabric it simulates is the library's
    from dist_logreg.cli.main import main
    from dist_logreg.ops.cluster import state as cluster_state

    doc = {**state(), "links": []}
    (tmp_path / "simv").mkdir()
    (tmp_path / "simv" / "state.json").write_text(json.dumps(doc))
    monkeypatch.setattr(cluster_state, "STATE_ROOT", tmp_path)
    flows = DATA / "flows.json"
    argv = [
        "simulate",
        "--fabric",
        "cluster:simv,alpha=2ms",
        "--ranks",
        "4",
        "--bytes",
        "1M",
        "--algorithm",
        "recursive-doubling",
        "--flows",
        str(flows),
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    fab, text = resolve(
        "cluster:simv,alpha=2ms", cluster_state=doc, flows=json.loads(flows.read_text())
    )
    assert out["fabric"]["spec"] == text and out["fabric"]["pinned_paths"] == len(fab.pinned)
    assert out["fabric"]["params"]["alpha"]["value"] == pytest.approx(2e-3)
