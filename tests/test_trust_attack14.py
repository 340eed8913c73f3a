"""Defects of issue 29's fourteenth attack (P-...), each a test that failed before its fix."""

from __future__ import annotations

import json

import pytest

from dist_logreg.cli import simulate_sweep
from dist_logreg.cli.main import main as cli_main_fn
from tests.test_model_cli import dl

#: 30 steps of one 152 B allreduce at 2 ranks, 30 us of compute a step (simulate --run reads it)
SUMMARY = {
    "steps": 30,
    "world_size": 2,
    "allreduce": {"calls": 30, "bytes": 30 * 152, "algorithm": "ring"},
    "time_s": {"compute": 30 * 3e-5},
}


def _grid(tmp_path, kind: str) -> str:
    if kind == "run":
        for name in ("t1", "t2"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "summary.json").write_text(json.dumps(SUMMARY))
        return f'run = ["{tmp_path / "t1"}", "{tmp_path / "t2"}"]\nranks = [2, 4]\n'
    w = "params=1e6,dtype=bf16,buckets=256K,forward=1ms,backward=2ms"
    return f'workload = ["{w}", "{w},sync=sharded"]\nranks = [2, 4]\nexact = true\n'


@pytest.mark.parametrize("kind", ["workload", "run"])
def test_an_interrupted_step_sweep_resumes(tmp_path, monkeypatch, kind):
    """P-H2: ``--resume`` of a ``--workload`` or ``--run`` sweep: ``TypeError: 'NoneType'
    object is not iterable`` (no --bytes to hold the rows to), the points never resumable."""
    grid, out = tmp_path / "g.toml", tmp_path / "out"
    grid.write_text('fabric = "flat:hosts=4"\nalgorithm = "ring"\n' + _grid(tmp_path, kind))
    real = simulate_sweep.run_point

    def stop_at_two(*a):
        if a[3] == 2:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(simulate_sweep, "run_point", stop_at_two)
    assert cli_main_fn(["simulate", "--sweep", str(grid), "--out", str(out)]) == 130
    monkeypatch.setattr(simulate_sweep, "run_point", real)
    r = dl("simulate", "--sweep", str(grid), "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((out / "simulate.json").read_text())
    assert sorted({row["point"] for row in doc["results"]}) == [0, 1, 2, 3]
    assert dl("report", str(out), "--out", str(tmp_path / "rep")).returncode == 0
