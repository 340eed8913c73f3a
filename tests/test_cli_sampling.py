"""End to end: --shuffle and --sampling from the command line, and per-rank memory."""

import json
import subprocess

import numpy as np
import pytest

from tests.helpers import BIN, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e]


def summary(out):
    return json.loads((out / "summary.json").read_text())


def test_per_rank_files(tmp_path):
    rng = np.random.default_rng(0)
    for rank, rows in enumerate((70, 91)):
        X = rng.standard_normal((rows, 4))
        np.savez(tmp_path / f"part-{rank}.npz", X=X, y=(X[:, 0] > 0).astype(float))
    out = tmp_path / "o"
    pattern = str(tmp_path / "part-{rank}.npz")
    flags = ["--sampling", "sharded", "--batch-size", "20", "--steps", "12", "--out", str(out)]
    r = run_mpi(2, train_cmd("--data", pattern, *flags))
    assert r.returncode == 0, r.stderr
    s = summary(out)
    assert s["data"]["samples"] == 161 and s["data"]["sampling"] == "sharded"
    assert s["epochs"] == 12 / 7  # the smaller shard: 70 rows, 10 per step
    assert len(s["memory"]["peak_rss_bytes_per_rank"]) == 2
    assert "--shuffle rows --sampling sharded" in r.stdout


def test_rank_pattern_needs_sharded_sampling(tmp_path):
    r = run_mpi(1, train_cmd("--data", "part-{rank}.npz", "--steps", "2"))
    assert r.returncode == 2
    assert "--data with {rank}: expected --sampling sharded" in r.stderr


def test_sharded_ranks_hold_a_fraction_of_the_data(tmp_path):
    """Per-rank peak RSS: each rank of a sharded run holds half the set, a global run all."""
    rows, features = 150_000, 64  # 76.8 MB of float64
    flags = [
        "--samples",
        str(rows),
        "--features",
        str(features),
        "--batch-size",
        "1000",
        "--steps",
        "3",
        "--check-every",
        "0",
    ]
    rss = {}
    for sampling in ("global", "sharded"):
        out = tmp_path / sampling
        r = run_mpi(2, train_cmd(*flags, "--sampling", sampling, "--out", str(out)), timeout=120)
        assert r.returncode == 0, r.stderr
        rss[sampling] = summary(out)["memory"]["peak_rss_bytes"]
    data_bytes = rows * features * 8
    assert rss["sharded"]["max"] < rss["global"]["min"] - 0.35 * data_bytes, rss


def test_help_says_the_trajectory_depends_on_p():
    out = subprocess.run(
        [str(BIN / "dist-logreg"), "train", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    assert "--shuffle {rows,blocks,none}" in out and "--sampling {global,sharded}" in out
    assert "depends on the number of ranks" in " ".join(out.split())
