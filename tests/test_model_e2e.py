"""Every run compares itself with the model, and names its stragglers (under mpirun)."""

import json

import pytest

from tests.helpers import BIN, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e]

BASE = [
    "--samples",
    "2000",
    "--features",
    "9",
    "--batch-size",
    "60",
    "--steps",
    "12",
    "--log-every",
    "12",
]


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_stalled_rank_is_flagged_and_named(tmp_path, n):
    """rank n-1 sleeps 0.5 s in step 5: that step is flagged, and it is named as the rank
    that arrived last, 0.5 s after the others."""
    late = n - 1
    out = tmp_path / "run"
    fault = f"stall:rank={late}:step=5:seconds=0.5"
    r = run_mpi(
        n,
        train_cmd(*BASE, "--model", "auto", "--inject-fault", fault, "--out", str(out)),
        timeout=90,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    if n == 1:
        assert "stragglers" not in s and "cost_model" not in s
        assert "one rank, no communication to model" in r.stdout
        return
    assert "model auto: mpi fitted on" in r.stdout
    assert "measured p50" in r.stdout and "predicted" in r.stdout
    st = s["stragglers"]
    (flag,) = [f for f in st["flagged_steps"] if f["step"] == 5]
    assert flag["late_rank"] == late and 0.4 < flag["late_by_s"] < 0.7
    assert flag["measured_s"] > 0.4 and flag["ratio"] > 2
    row = next(x for x in st["table"] if x["rank"] == late)
    assert row["worst_step"] == 5 and row["worst_late_s"] > 0.4
    assert f"rank {late} (host " in r.stdout and "flagged" in r.stdout
    m = s["cost_model"]
    assert m["source"] == "auto" and m["predicted_s"] > 0 and m["ratio"] > 0
    steps = lines(out / "steps.jsonl")
    calls = lines(out / "metrics.jsonl")
    assert len(steps) == len(calls) == 12 * n
    assert all(x["predicted_s"] == pytest.approx(m["predicted_s"]) for x in steps + calls)


def test_without_a_model_the_straggler_table_is_still_printed(tmp_path):
    out = tmp_path / "run"
    r = run_mpi(
        3,
        train_cmd(*BASE, "--inject-fault", "stall:rank=1:step=3:seconds=0.4", "--out", str(out)),
        timeout=90,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert "cost_model" not in s and "flagged_total" not in s["stragglers"]
    row = next(x for x in s["stragglers"]["table"] if x["rank"] == 1)
    assert row["worst_step"] == 3 and row["worst_late_s"] > 0.3
    assert "stragglers      the rank" in r.stdout and "flagged" not in r.stdout
    assert "    rank 1 (host " in r.stdout
    assert "predicted_s" not in (out / "steps.jsonl").read_text()


def test_bench_fits_a_model_that_bench_and_train_then_use(tmp_path):
    model, bench_json = tmp_path / "m.json", tmp_path / "b.json"
    sweep = ["--min-bytes", "1K", "--max-bytes", "256K", "--factor", "4", "--iters", "5"]
    bench = [str(BIN / "dist-logreg"), "bench"]
    r = run_mpi(
        2,
        [*bench, "--allreduce", "ring", *sweep, "--out", str(bench_json), "--fit", str(model)],
        timeout=90,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"# wrote {model}" in r.stdout and "ring: 2(p-1) alpha" in r.stdout
    recs = json.loads(bench_json.read_text())["records"]
    assert all(x["reduce_s"] > 0 and x["host_of_rank"] == [0, 0] for x in recs)
    # A second sweep writes a file of its own: bench refuses to replace another run's results.
    bench_json2 = tmp_path / "b2.json"
    r = run_mpi(
        2,
        [
            *bench,
            "--allreduce",
            "ring,mpi",
            *sweep,
            "--model",
            str(model),
            "--out",
            str(bench_json2),
        ],
        timeout=90,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "pred(us)" in r.stdout and "meas/pred" in r.stdout
    recs = json.loads(bench_json2.read_text())["records"]
    ring = [x for x in recs if x["algorithm"] == "ring"]
    assert all(x["predicted_s"] > 0 and x["measured_over_predicted"] > 0 for x in ring)
    assert all(x["predicted_s"] is None for x in recs if x["algorithm"] == "mpi")
    out = tmp_path / "run"
    r = run_mpi(
        2,
        train_cmd(*BASE, "--allreduce", "ring", "--model", str(model), "--out", str(out)),
        timeout=90,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["cost_model"]["source"] == str(model)
    # another --out: train refuses one holding another run's results (issue 29)
    r = run_mpi(2, train_cmd(*BASE, "--model", str(model), "--out", str(out) + "2"), timeout=60)
    assert r.returncode == 2
    assert "--cost-model: the cost model has no fit for 'mpi'; it has ring" in r.stderr
