"""MEDIUM defects of issue 29's third round of attacks (G-M1, F-M1, E-M3, F-M2, F-M3, E-M1,
E-M5), each a test that failed before its fix."""

import json

import numpy as np
import pytest

from tests.helpers import run_mpi, train_cmd

# --- G-M1: --resume with fewer --steps than a completed run ---------------------------------

TRAIN = ["--samples", "400", "--features", "8", "--batch-size", "20", "--checkpoint-every", "5"]


def _train(n, out, steps, *extra):
    return run_mpi(n, train_cmd(*TRAIN, "--steps", str(steps), "--out", str(out), *extra), 120)


def _files(out):
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_resume_never_rewinds_a_completed_run_into_a_summary_of_zeros(tmp_path, n):
    """Attack G-M1: after a completed 20-step run, ``--resume --steps 10`` resumed from the
    checkpoint at step 10, ran no step and replaced summary.json with zeros (steps_run 0,
    0 samples/s, 0 allreduce calls) and model.npz with step 10's."""
    out = tmp_path / "run"
    assert _train(n, out, 20).returncode == 0
    before = _files(out)
    ckpt10 = next((out / "checkpoints").glob("ckpt-00000010-*.npz"))
    params10 = np.load(ckpt10)["params"].copy()  # the model after step 10, saved by the run
    for steps in (10, 12):
        r = _train(n, out, steps, "--resume")
        errors = [x for x in r.stderr.splitlines() if "error" in x]
        assert r.returncode == 2 and len(errors) == 1, r.stderr
        assert "completed 20 steps" in errors[0] and f"--steps {steps}" in errors[0]
        assert "--force" in errors[0]
        assert _files(out) == before  # nothing replaced
    # --force: the first 10 steps again from step 0; every file describes those 10 steps
    r = _train(n, out, 10, "--resume", "--force")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 10 and summary["steps_run"] == 10
    assert summary["resumed_from_step"] == 0
    assert summary["samples_per_s"] > 0 and summary["allreduce"]["calls"] == 10
    rows = [json.loads(x) for x in (out / "steps.jsonl").read_text().splitlines()]
    assert sorted({x["step"] for x in rows}) == list(range(10)) and len(rows) == 10 * n
    model = np.load(out / "model.npz")
    got = np.append(model["coef"].ravel(), model["intercept"].ravel())
    # the same trajectory at the same world size: bitwise the checkpoint's parameters
    np.testing.assert_array_equal(got, params10)
