"""A resumed run keeps the dead attempt's step rows, marked by attempt, and the report says
how many attempts there were (issue 18, part 3)."""

import json

import pytest

from tests.conftest import run_mpi, train_cmd
from tests.test_model_cli import dl

ARGS = [
    "--samples",
    "200",
    "--features",
    "4",
    "--batch-size",
    "20",
    "--steps",
    "30",
    "--checkpoint-every",
    "10",
]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("n", [2, 3])
def test_resumed_run_keeps_the_dead_attempts_steps_and_the_report_counts_attempts(tmp_path, n):
    out = tmp_path / "run"
    first = run_mpi(
        n,
        train_cmd(*ARGS, "--out", str(out), "--inject-fault", f"kill:rank={n - 1}:step=17"),
        timeout=90,
    )
    assert first.returncode != 0
    second = run_mpi(n, train_cmd(*ARGS, "--out", str(out), "--resume"), timeout=90)
    assert second.returncode == 0, second.stderr
    # the dead attempt flushed its step rows at its checkpoint (after step 10)
    for rank in range(n):
        rows = [
            json.loads(x)
            for x in (out / "partial" / f"steps-attempt1-from0-rank{rank}.jsonl")
            .read_text()
            .splitlines()
        ]
        assert [r["step"] for r in rows] == list(range(10)) and {r["attempt"] for r in rows} == {1}
    rep = tmp_path / "rep"
    r = dl("report", str(out), "--out", str(rep))
    assert r.returncode == 0, r.stderr
    md = (rep / "report.md").read_text()
    assert "2 attempts" in md
    assert "attempt 1: steps 0..9" in md and "attempt 2: steps 10..29" in md
