"""The mediums the twelfth and thirteenth attacks left open (issue 29), each a test that
failed before its fix: a ``simulate --run`` output's ``run`` block (M-M3), a step's
forward and backward passes (L-M10), an ``--exact`` row's ideal (M-M1)."""

from __future__ import annotations

import json

import pytest

from tests.test_model_cli import dl
from tests.test_trust_report import one_line

#: 30 steps of one 152 B allreduce at 2 ranks, 30 us of compute a step.
SUMMARY = {
    "steps": 30,
    "world_size": 2,
    "allreduce": {"calls": 30, "bytes": 30 * 152, "algorithm": "ring"},
    "time_s": {"compute": 30 * 3e-5},
}


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    """``simulate --run`` of a (hand-written) train run at 2 and 4 ranks."""
    base = tmp_path_factory.mktemp("run")
    (base / "t").mkdir()
    (base / "t" / "summary.json").write_text(json.dumps(SUMMARY))
    out = base / "s"
    args = ["--run", str(base / "t"), "--fabric", "flat:hosts=4", "--ranks", "2,4"]
    r = dl("simulate", *args, "--algorithm", "ring", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def _edited(src, tmp_path, edit):
    doc = json.loads((src / "simulate.json").read_text())
    edit(doc)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "simulate.json").write_text(json.dumps(doc))
    return dl("report", str(tmp_path / "e"), "--out", str(tmp_path / "r"))


def test_a_genuine_run_block_is_reported_and_predicts_by_hand(run_out, tmp_path):
    doc = json.loads((run_out / "simulate.json").read_text())
    p4 = next(p for p in doc["run"]["predictions"] if p["ranks"] == 4)
    assert p4["compute_s"] == pytest.approx(3e-5 * 2 / 4)  # the global batch over 4 ranks
    r = dl("report", str(run_out), "--out", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr


def _pred(doc):
    return doc["run"]["predictions"][0]


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda d: _pred(d).update(comm_fraction=6.28), "run.predictions[0].comm_fraction"),
        (lambda d: _pred(d).update(step_s=_pred(d)["step_s"] / 10), "run.predictions[0].step_s"),
        (lambda d: d["run"].update(world_size=0.2), "run.world_size"),
        (lambda d: d["run"].update(compute_s_per_step=1.0), "run.predictions[0].compute_s"),
        (lambda d: d["run"].update(calls_per_step=10.0), "run.predictions[0].comm_s"),
        (lambda d: d["run"].update(steps=-1), "run.steps"),
        (lambda d: d["run"].update(overlapped=1), "run.overlapped"),
        (lambda d: d["run"]["predictions"].pop(), "run.predictions"),
        (lambda d: d["run"].pop("bytes_per_call"), "bytes_per_call"),
    ],
)
def test_an_edited_run_block_is_refused(run_out, tmp_path, edit, key):
    """M-M3: a comm fraction of 628 %, a step shorter than its comm, 0.2 ranks: exit 0."""
    r = _edited(run_out, tmp_path, edit)
    assert r.returncode == 2, r.stdout[-500:]
    assert key in one_line(r)


@pytest.fixture(scope="module")
def step_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("step") / "s"
    spec = "params=1e6,buckets=256K,forward=1ms,backward=2ms,overlap=yes"
    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--workload", spec]
    r = dl("simulate", *args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize(
    "key, value", [("forward_s", 1.0), ("backward_s", 0.0), ("overlap", False)]
)
def test_a_step_workload_not_its_spec_is_refused(step_out, tmp_path, key, value):
    """L-M10: a 1 s forward pass drawn beside a 3 ms step, exit 0."""
    r = _edited(step_out, tmp_path, lambda d: d["step"]["workload"].update({key: value}))
    assert r.returncode == 2, r.stdout[-500:]
    assert f"step.workload.{key}" in one_line(r)


@pytest.fixture(scope="module")
def exact_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("exact") / "s"
    args = ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4", "--ranks", "8"]
    r = dl("simulate", *args, "--bytes", "1M", "--exact", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def _row(d):
    return d["results"][0]


def _ideal_x100(d):
    """The ideal 100 times longer, its ratio with it (the edit the attack made, whole)."""
    _row(d).update(ideal_s=_row(d)["ideal_s"] * 100, ratio_to_ideal=_row(d)["ratio_to_ideal"] / 100)


@pytest.mark.parametrize(
    "edit, key",
    [
        (_ideal_x100, "results[0].ideal_s"),
        (lambda d: _row(d).update(ratio_to_ideal=100.0), "results[0].ratio_to_ideal"),
        (lambda d: _row(d).update(phase_sync_s="fast"), "results[0].phase_sync_s"),
    ],
)
def test_an_exact_rows_ideal_is_held_to_its_phase_synchronous_run(exact_out, tmp_path, edit, key):
    """M-M1: "time 85.457 us, ideal 8.546 ms" drawn, exit 0. The ideal is the phase-
    synchronous run's with only the edge links finite: no phase of it is slower than that
    run's (and the genuine file, the row's ratio time/ideal, is accepted)."""
    doc = json.loads((exact_out / "simulate.json").read_text())
    r = _row(doc)
    assert r["ideal_s"] <= r["phase_sync_s"] and r["ratio_to_ideal"] == pytest.approx(
        r["time_s"] / r["ideal_s"]
    )
    assert dl("report", str(exact_out), "--out", str(tmp_path / "g")).returncode == 0
    got = _edited(exact_out, tmp_path, edit)
    assert got.returncode == 2, got.stdout[-500:]
    assert key in one_line(got)


def test_a_cost_model_axis_records_each_rows_model(tmp_path):
    """L-M6: a sweep over two cost models recorded the first's alpha and gamma (3.455 us) for
    rows simulated with the second's (34.5 us). Each row's model is now in ``cost_models``
    and the fabric's alpha and gamma say "per row"; the rows' times are each model's own
    (a ring of 1 KiB at 4 ranks: 6 steps of alpha; 10x the alpha is slower)."""
    from tests.test_simulate_attack import _model

    paths = []
    for name, alpha in (("a", 3e-6), ("b", 30e-6)):
        (tmp_path / name).mkdir()
        paths.append(_model(tmp_path / name, {"ring": alpha, "recursive-doubling": alpha / 3}))
    grid = tmp_path / "g.toml"
    grid.write_text(
        f'fabric = "flat:hosts=4"\ncost-model = ["{paths[0]}", "{paths[1]}"]\nranks = 4\n'
        'algorithm = ["ring", "recursive-doubling"]\nbytes = "1K"\n'
    )
    r = dl("simulate", "--sweep", str(grid), "--out", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "s" / "simulate.json").read_text())
    got = {m["path"]: m["alpha_s"] for m in doc["cost_models"]}  # every algorithm's (Q-M4)
    assert got == {
        str(paths[0]): {"ring": 3e-6, "recursive-doubling": 1e-6},
        str(paths[1]): {"ring": 30e-6, "recursive-doubling": 10e-6},
    }
    alpha = doc["fabric"]["params"]["alpha"]
    assert alpha["value"] is None and "each row" in alpha["source"]
    t = {row["cost-model"]: row["time_s"] for row in doc["results"] if row["algorithm"] == "ring"}
    assert t[str(paths[1])] - t[str(paths[0])] == pytest.approx(6 * 27e-6, rel=1e-6)
    assert dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r")).returncode == 0


# --- the lows ------------------------------------------------------------------------------


def test_a_small_wall_time_estimate_is_shown_in_its_unit():
    """M-L1: ``--max-wall 1ms`` read "about 0.0 h of wall time (0 s > --max-wall 0 s)"."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:  # the packet engine's module loads ns-3
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    from dist_logreg.sim.packet import _wall

    assert _wall(0.077) == "77 ms" and _wall(12.0) == "12 s"
    assert _wall(9000.0) == "2.5 h"  # hours from 6 minutes, as before


@pytest.mark.parametrize("value", ["2T", "0", "x"])
def test_a_neighbours_bytes_are_bounded_as_bytes_is(value):
    """L-L5: ``neighbour:...,bytes=2T`` was refused as over "ns-3's limit" (no ns-3 there)
    while saying 0 is allowed (0 was then refused by report: L-H24)."""
    from dist_logreg.errors import UsageError
    from dist_logreg.sim.scenario import parse_scenario

    with pytest.raises(UsageError) as exc:
        parse_scenario(f"neighbour:ranks=4,bytes={value}")
    assert "bytes: expected 1 byte to 1T bytes per rank (as --bytes)" in str(exc.value)
    assert "ns-3" not in str(exc.value)
    assert parse_scenario("neighbour:ranks=4,bytes=1T").values["bytes"] == 1 << 40


@pytest.mark.parametrize("name", ["config.json", "traffic.json", "links.json", "flows.json"])
def test_a_runs_optional_file_that_is_a_fifo_is_named(tmp_path, name):
    """L-L6: a FIFO config.json was skipped silently (every other file of a run said so)."""
    import os

    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "run")
    (run / name).unlink(missing_ok=True)
    os.mkfifo(run / name)
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    assert r.returncode == 2
    assert f"{run / name}: expected a regular file, got a FIFO" in one_line(r)


def test_an_empty_config_file_is_refused(tmp_path):
    """M-L2: ``train --config empty.json`` (0 bytes) trained 200 steps with every default."""
    (tmp_path / "empty.json").write_text("")
    r = dl("train", "--config", str(tmp_path / "empty.json"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and not (tmp_path / "o").exists()
    assert "expected at least one setting (key = value, TOML), got none" in one_line(r)


def test_the_step_tables_columns_stay_apart_at_any_length():
    """L-L4: ``4126001.017ms     0.595ms126000.720ms126000.423ms`` (3 million calls a step)."""
    from dist_logreg.sim.step import step_lines

    w = {"spec": "s", "buckets": 1, "gradient_bytes": 8, "sync": "allreduce", "overlap": True}
    row = {"algorithm": "ring", "ranks": 4, "comm_fraction": 1.0, "efficiency": 1.0}
    row |= {"step_s": 4126.001017, "compute_s": 5.95e-4, "comm_s": 126.00072, "exposed_s": 126.0}
    line = step_lines({"workload": w, "rows": [row]})[-1]
    assert line.split()[2:6] == ["4126001.017ms", "0.595ms", "126000.720ms", "126000.000ms"]
