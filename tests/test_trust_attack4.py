"""``dist-logreg report`` and ``simulate --flows``, fourth attack on issue 29: a scenario
sweep simulate wrote is reported, a spine the fabric lacks is refused, a bench JSON's busbw
above its recorded link rate is refused."""

import json

from tests.test_model_cli import dl


def test_report_reads_a_sweep_that_varies_scenario(tmp_path):
    # N-M13: a sweep row carries the scenario's slowdown, not a neighbour's jobs
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'fabric = "flat:hosts=4"\nranks = 4\nbytes = "64K"\nalgorithm = "ring"\n'
        'scenario = ["none", "background:fraction=0.5"]\n'
    )
    r = dl("simulate", "--sweep", str(grid), "--out", str(tmp_path / "sw"))
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "sw" / "simulate.json").read_text())["results"]
    assert any("slowdown" in row and "jobs" not in row for row in rows)
    r = dl("report", str(tmp_path / "sw"), "--out", str(tmp_path / "rout"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rout" / "report.md").is_file()
