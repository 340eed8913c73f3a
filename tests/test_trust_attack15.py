"""Defects of issue 29's fifteenth attack (Q-...), each a test that failed before its fix."""

from __future__ import annotations

import json

import pytest

from tests.test_model_cli import dl


def _run(tmp_path, **summary):
    (tmp_path / "t").mkdir()
    base = {"steps": 60, "world_size": 2, "time_s": {"compute": 20 * 4e-5}}
    base["allreduce"] = {"calls": 20, "bytes": 20 * 88, "algorithm": "ring"}
    (tmp_path / "t" / "summary.json").write_text(json.dumps({**base, **summary}))
    return tmp_path / "t"


def test_a_resumed_runs_calls_and_compute_are_over_the_steps_it_ran(tmp_path):
    """Q-H1: a run resumed at step 40 of 60 (its summary counts this attempt's 20 steps)
    was "0.333333 allreduce(s) of 88 B per step" with a third of its compute."""
    run = _run(tmp_path, steps_run=20, resumed_from_step=40)
    args = ["--run", str(run), "--fabric", "flat:hosts=4", "--ranks", "2", "--algorithm", "ring"]
    r = dl("simulate", *args, "--out", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    assert "1 allreduce(s) of 88 B per step" in r.stdout
    doc = json.loads((tmp_path / "s" / "simulate.json").read_text())
    assert doc["run"]["calls_per_step"] == 1 and doc["run"]["compute_s_per_step"] == 4e-5
    assert doc["step"]["rows"][0]["compute_s"] == pytest.approx(4e-5)  # the two tables agree
    assert dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r")).returncode == 0


@pytest.mark.parametrize("summary", [{"steps_run": 40}, {"steps": 10**12}])
def test_calls_that_are_not_whole_a_step_are_refused(tmp_path, summary):
    """Q-H1: 20 calls over 40 steps, or 40 over 10^12 ("step 0.00 ns"), were taken."""
    run = _run(tmp_path, **summary)
    r = dl("simulate", "--run", str(run), "--fabric", "flat:hosts=4", "--ranks", "2")
    assert r.returncode == 2
    assert "allreduce.calls / steps_run: expected a whole number of allreduce calls a step" in (
        r.stderr
    )
