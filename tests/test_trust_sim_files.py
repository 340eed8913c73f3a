"""Every file the simulator's side reads goes through one checked schema (issue 29, 1):
``simulate.json`` in ``report``, ``flows.json`` in ``simulate --flows``, ``summary.json`` in
``simulate --run``. Each case was a traceback, a hang or a silent acceptance."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_model_cli import dl

FLAT = ["--fabric", "flat:hosts=4,rate=100G", "--ranks", "4", "--algorithm", "ring"]
DATA = Path(__file__).parent / "data" / "simv"


def one_line(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout[-300:], r.stderr[-600:])
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def sim_doc(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    r = dl("simulate", *FLAT, "--bytes", "64K", "--seeds", "2", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads((out / "simulate.json").read_text())


def _report(tmp_path, doc):
    (tmp_path / "s").mkdir(exist_ok=True)
    path = tmp_path / "s" / "simulate.json"
    path.write_text(json.dumps(doc))
    return dl("report", str(path), "--out", str(tmp_path / "o"))


def _set(doc, dotted, value):
    *head, last = dotted.split(".")
    node = doc
    for k in head:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("results.0.time_s_worst", KeyError, ["results[0]", "time_s_worst"]),
        ("results.0.ideal_s", KeyError, ["results[0]", "ideal_s"]),
        ("results.0.bottleneck", KeyError, ["bottleneck"]),
        ("fabric", KeyError, ["fabric"]),
        ("placement", KeyError, ["placement"]),
        ("engine", KeyError, ["engine"]),
        ("results.0.time_s_seeds", [], ["results[0].time_s_seeds", "0"]),
        ("results.0.links", [1, 2], ["results[0].links", "[1, 2]"]),
        ("results.0.ranks", "four", ["results[0].ranks", "'four'"]),
        ("results", [1], ["results[0]", "1"]),
        ("results.0.time_s", "fast", ["results[0].time_s", "'fast'"]),
        ("results.0.time_s", float("nan"), ["results[0].time_s", "nan"]),
        ("results.0.time_s", -1, ["results[0].time_s", "-1"]),
        ("results.0.busbw", float("inf"), ["results[0].busbw", "inf"]),
        ("results.0.bytes", -5, ["results[0].bytes", "-5"]),
        ("results", [], ["results", "0"]),
        ("results.0.packet", {"message_done_s": []}, ["results[0].packet", "queue"]),
    ],
)
def test_a_bad_simulate_json_is_one_line_in_report(tmp_path, sim_doc, key, value, words):
    doc = copy.deepcopy(sim_doc)
    _set(doc, key, value)
    one_line(_report(tmp_path, doc), "simulate.json", *words)


def test_a_good_simulate_json_still_reports(tmp_path, sim_doc):
    r = _report(tmp_path, sim_doc)
    assert r.returncode == 0, r.stderr


def test_a_simulate_json_that_is_a_fifo_does_not_hang(tmp_path):
    (tmp_path / "s").mkdir()
    os.mkfifo(tmp_path / "s" / "simulate.json")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dist_logreg",
            "report",
            str(tmp_path / "s" / "simulate.json"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    one_line(r, "regular file")


# -- flows.json (simulate --flows) ---------------------------------------------------------


def _state(tmp_path, monkeypatch):
    from dist_logreg.ops.cluster import state as cluster_state

    doc = {**json.loads((DATA / "state.json").read_text()), "links": []}
    (tmp_path / "simv").mkdir()
    (tmp_path / "simv" / "state.json").write_text(json.dumps(doc))
    monkeypatch.setattr(cluster_state, "STATE_ROOT", tmp_path)


def _flows(tmp_path, monkeypatch, doc):
    _state(tmp_path, monkeypatch)
    f = tmp_path / "flows.json"
    f.write_text(json.dumps(doc))
    return dl(
        "simulate",
        "--fabric",
        "cluster:simv",
        "--ranks",
        "4",
        "--bytes",
        "1M",
        "--algorithm",
        "ring",
        "--flows",
        str(f),
        "--json",
    )


def _flow_doc():
    return json.loads((DATA / "flows.json").read_text())


def _cross(doc):
    return next(i for i, f in enumerate(doc["flows"]) if f["spine"])


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d["flows"][0].pop("dst"), ["flows[0]", "dst"]),
        (lambda d: d["flows"][0].update(bytes="big"), ["flows[0].bytes", "'big'"]),
        (lambda d: d.update(flows=None), ["flows", "None"]),
        (lambda d: d["flows"][_cross(d)].update(spine="s99"), ["spine", "'s99'", "s0, s1"]),
        (lambda d: d["flows"][_cross(d)].update(src="h99"), ["src", "'h99'", "4 hosts"]),
        (lambda d: d.update(schema="dist-logreg/links/1"), ["schema", "links/1"]),
    ],
)
def test_a_bad_flows_json_is_one_line(tmp_path, monkeypatch, change, words):
    doc = _flow_doc()
    change(doc)
    one_line(_flows(tmp_path, monkeypatch, doc), "--flows", *words)


def test_a_list_is_not_a_flows_json(tmp_path, monkeypatch):
    one_line(_flows(tmp_path, monkeypatch, [1, 2, 3]), "--flows", "list")


def test_flows_json_of_cluster_run_pins_its_maps(tmp_path, monkeypatch):
    """The file ``cluster run`` writes (schema 1: flows inside ``maps``) pins as the older
    single-map file does: it pinned nothing before (it read a top-level ``flows``)."""
    old = _flow_doc()
    new = {
        "schema": "dist-logreg/flows/1",
        "cluster": "simv",
        "hash": "l4",
        "maps": [{"label": "job", "flows": old["flows"]}],
    }
    r = _flows(tmp_path, monkeypatch, new)
    assert r.returncode == 0, r.stderr
    pinned = json.loads(r.stdout)["fabric"]["pinned_paths"]
    assert pinned == len({(f["src"], f["dst"]) for f in old["flows"] if f["spine"]}) > 0


# -- summary.json (simulate --run) ---------------------------------------------------------


def _summary(**change):
    s = {
        "steps": 10,
        "world_size": 2,
        "allreduce": {"calls": 10, "bytes": 10240.0},
        "time_s": {"compute": 0.01},
    }
    for k, v in change.items():
        if k in ("calls", "bytes"):
            s["allreduce"][k] = v
        else:
            s[k] = v
    return s


@pytest.mark.parametrize(
    "change, words",
    [
        ({"bytes": 1e300}, ["allreduce.bytes", "1e+300"]),
        ({"world_size": 10**30}, ["world_size", "1e+30"]),
        ({"steps": True}, ["steps", "True"]),
        ({"steps": 2.5}, ["steps", "2.5"]),
    ],
)
def test_a_bad_run_summary_is_one_line(tmp_path, change, words):
    (tmp_path / "summary.json").write_text(json.dumps(_summary(**change)))
    one_line(dl("simulate", *FLAT, "--run", str(tmp_path)), "--run", *words)


def test_a_run_summary_that_is_a_fifo_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "summary.json")
    r = subprocess.run(
        [sys.executable, "-m", "dist_logreg", "simulate", *FLAT, "--run", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    one_line(r, "--run", "regular file")


@pytest.mark.parametrize(
    "fabric, spine, words",
    [
        ("leaf-spine:leaves=2,spines=2,hosts-per-leaf=2", "s99", ["spine", "'s99'", "s0..s1"]),
        ("flat:hosts=4", "s0", ["spine", "'s0'", "no spines"]),
    ],
)
def test_a_spine_a_preset_fabric_lacks_is_one_line(tmp_path, fabric, spine, words):
    doc = _flow_doc()
    doc["flows"][_cross(doc)]["spine"] = spine
    f = tmp_path / "flows.json"
    f.write_text(json.dumps(doc))
    r = dl("simulate", "--fabric", fabric, "--ranks", "4", "--flows", str(f), "--json")
    one_line(r, "--flows", *words)
