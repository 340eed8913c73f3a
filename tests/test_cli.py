"""End-to-end: the ``dist-logreg`` command under mpirun at 1, 2 and 3 ranks."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import BIN, WORLD_SIZES, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e]

# 101 rows per step: not divisible by 2 or 3, so ranks get uneven slices.
COMMON = [
    "--samples",
    "2000",
    "--features",
    "12",
    "--batch-size",
    "101",
    "--steps",
    "40",
    "--lr",
    "0.5",
    "--momentum",
    "0.5",
    "--seed",
    "3",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same training flags at every world size; returns {n: (result, out_dir)}."""
    out = {}
    for n in WORLD_SIZES:
        d = tmp_path_factory.mktemp(f"run{n}")
        out[n] = (run_mpi(n, train_cmd(*COMMON, "--out", str(d)), timeout=90), d)
    return out


@pytest.mark.parametrize("n", WORLD_SIZES)
def test_train_writes_the_output_contract(runs, n):
    result, d = runs[n]
    assert result.returncode == 0, result.stderr
    model = np.load(d / "model.npz", allow_pickle=False)
    assert model["coef"].shape == (12,) and model["intercept"].shape == ()
    s = json.loads((d / "summary.json").read_text())
    assert s["world_size"] == n and s["steps"] == 40
    a = s["allreduce"]
    assert a["calls"] == 40
    assert a["bytes"] == 40 * (12 + 3) * 8  # payload per rank: (features + 3) float64 per step
    assert 0 < a["latency_s"]["p50"] <= a["latency_s"]["p99"]
    for key in ("compute", "comm", "total", "data", "update"):
        assert s["time_s"][key] >= 0
    assert s["time_s"]["comm"] <= s["time_s"]["total"]
    assert 0 <= s["comm_fraction"]["median"] <= 1
    lines = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 40 * n  # one record per allreduce call per rank
    assert {r["rank"] for r in lines} == set(range(n))
    assert all(r["bytes"] == 120 and r["seconds"] > 0 and 0 <= r["step"] < 40 for r in lines)
    config = json.loads((d / "config.json").read_text())
    assert config["batch_size"] == 101 and config["seed"] == 3


@pytest.mark.parametrize("n", WORLD_SIZES)
def test_rank0_prints_progress_and_summary(runs, n):
    result, d = runs[n]
    out = result.stdout
    assert out.count("dist-logreg train:") == 1  # rank 0 only
    assert "step 40/40" in out and "samples/s" in out
    for needle in (
        "final loss",
        "accuracy",
        "allreduce [mpi]",
        "p50",
        "p99",
        "busbw",
        "comm fraction",
        str(d),
    ):
        assert needle in out, needle


def test_world_size_invariance_end_to_end(runs):
    """Invariant 2: 1, 2 and 3 ranks give the same model up to summation order."""
    models = {n: np.load(d / "model.npz") for n, (_, d) in runs.items()}
    for n in WORLD_SIZES[1:]:
        np.testing.assert_allclose(models[n]["coef"], models[1]["coef"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(models[n]["intercept"], models[1]["intercept"], rtol=1e-10)
    losses = {
        n: json.loads((d / "summary.json").read_text())["final_loss"] for n, (_, d) in runs.items()
    }
    assert max(losses.values()) - min(losses.values()) < 1e-10


def test_config_file_and_flag_precedence(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("steps = 5\nbatch_size = 64\nfeatures = 4\nsamples = 500\nlr = 0.1\n")
    result = run_mpi(
        2, train_cmd("--config", str(cfg), "--steps", "7", "--out", str(tmp_path / "o")), timeout=60
    )
    assert result.returncode == 0, result.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["steps"] == 7 and s["batch_size"] == 64 and s["data"]["features"] == 4


def test_file_data_and_epochs(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    y = (X[:, 0] > 0).astype(float)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    result = run_mpi(
        3,
        train_cmd(
            "--data",
            str(tmp_path),
            "--batch-size",
            "50",
            "--epochs",
            "2",
            "--out",
            str(tmp_path / "o"),
        ),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["steps"] == 12 and s["epochs"] == 2  # 300 / 50 = 6 steps per epoch
    assert s["final_accuracy"] > 0.9  # a separable rule is learned


def test_help_explains_every_option():
    out = subprocess.run(
        [str(BIN / "dist-logreg"), "train", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    for flag in (
        "--samples",
        "--features",
        "--batch-size",
        "--steps",
        "--epochs",
        "--lr",
        "--l2",
        "--momentum",
        "--seed",
        "--dtype",
        "--data",
        "--out",
        "--config",
        "--label-column",
        "--log-every",
        "--check-every",
        "--allreduce",
        "--mpi-algorithm",
        "--ranks-per-node",
        "--bucket-bytes",
        "--compress",
        "--trace",
        "--checkpoint-every",
        "--checkpoint-dir",
        "--keep-checkpoints",
        "--resume",
        "--comm-timeout",
        "--inject-fault",
    ):
        assert flag in out, flag
    assert "GLOBAL" in out
    module = subprocess.run(
        [sys.executable, "-m", "dist_logreg", "--help"], capture_output=True, text=True, timeout=30
    )
    assert module.returncode == 0 and "train" in module.stdout


def test_default_out_dir_is_created_and_printed(tmp_path):
    result = run_mpi(
        1,
        train_cmd("--samples", "200", "--features", "3", "--batch-size", "20", "--steps", "3"),
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    made = list((tmp_path / "runs").iterdir())
    assert len(made) == 1 and (made[0] / "summary.json").exists()
    assert str(made[0].relative_to(tmp_path)) in result.stdout
