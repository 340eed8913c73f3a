"""``dist-logreg train --sync sharded`` end to end under mpirun at 1, 2 and 3 ranks: the
model equals the allreduce mode's, both collectives are recorded, optimizer state per rank
falls as 1/p, and what it cannot do is refused with the reason."""

import json

import numpy as np
import pytest

from tests.conftest import WORLD_SIZES, run_mpi, train_cmd

pytestmark = pytest.mark.e2e

FLAGS = [
    "--samples",
    "600",
    "--features",
    "13",
    "--batch-size",
    "61",
    "--steps",
    "15",
    "--lr",
    "0.3",
    "--momentum",
    "0.9",
    "--seed",
    "4",
]


def _run(tmp_path, n, name, *extra):
    out = tmp_path / name
    result = run_mpi(n, train_cmd(*FLAGS, *extra, "--out", str(out)), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return np.load(out / "model.npz", allow_pickle=False), summary, lines


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", WORLD_SIZES)
@pytest.mark.parametrize("algorithm", ["mpi", "ring", "rabenseifner"])
def test_sharded_equals_allreduce_and_records_both_collectives(tmp_path, n, algorithm):
    base, base_s, _ = _run(tmp_path, n, "allreduce", "--allreduce", algorithm)
    shard, s, lines = _run(tmp_path, n, "sharded", "--allreduce", algorithm, "--sync", "sharded")
    # the same trajectory up to summation order
    assert np.allclose(shard["coef"], base["coef"], rtol=1e-9, atol=1e-12)
    assert np.allclose(shard["intercept"], base["intercept"], rtol=1e-9, atol=1e-12)
    sync = s["sync"]
    assert sync["mode"] == "sharded" and base_s["sync"]["mode"] == "allreduce"
    payload = (13 + 3) * 8  # the packed buffer: d + 1 parameters, loss sum, count
    for name in ("reduce-scatter", "allgather"):
        c = sync["collectives"][name]
        assert c["calls"] == 15 and c["bytes_per_call"] == payload and c["bytes"] == 15 * payload
        assert c["latency_s"]["p50"] > 0
    assert [x["collective"] for x in lines[:4]] == ["reduce-scatter", "allgather"] * 2
    assert len(lines) == 2 * 15 * n and all(x["bytes"] == payload for x in lines)
    # optimizer state: the whole momentum (14 float64) on every rank, or slices of it
    full = 14 * 8
    assert base_s["sync"]["optimizer_state_bytes_per_rank"] == [full] * n
    per = sync["optimizer_state_bytes_per_rank"]
    assert sum(per) == full and max(per) <= -(-14 // n) * 8 + 8  # 1/p, the tail aside


@pytest.mark.parametrize(
    "extra, reason",
    [
        (["--bucket-bytes", "64"], "--bucket-bytes: not with --sync sharded"),
        (["--compress", "fp16"], "--compress fp16: not with --sync sharded"),
        (["--checkpoint-every", "5"], "not with --sync sharded yet"),
        (["--allreduce", "hierarchical"], "--sync sharded runs an allreduce's two halves"),
        (["--allreduce", "recursive-doubling"], "recursive doubling has no reduce-scatter"),
    ],
)
def test_what_sharded_cannot_do_is_refused_with_the_reason(tmp_path, extra, reason):
    result = run_mpi(
        2, train_cmd(*FLAGS, "--sync", "sharded", *extra, "--out", str(tmp_path / "o")), timeout=60
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert reason in result.stderr
