"""End-to-end communication study: algorithms, traffic.json, --mpi-algorithm, buckets,
compression, the trace and ``dist-logreg bench``, under mpirun at 1 to 4 ranks."""

import csv
import json

import numpy as np
import pytest

from tests.helpers import BIN, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e]

# 9 features -> a 12-element buffer: divisible by 1, 2, 3 and 4 ranks.
BASE = ["--samples", "900", "--features", "9", "--batch-size", "90", "--steps", "12", "--seed", "4"]
ALGOS = ["ring", "recursive-doubling", "rabenseifner", "hierarchical"]


def train(n, tmp_path, name, *extra):
    out = tmp_path / name
    result = run_mpi(n, train_cmd(*BASE, "--out", str(out), *extra), timeout=90)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    traffic = json.loads((out / "traffic.json").read_text())
    return out, summary, traffic, result.stdout


@pytest.mark.slow  # 6-13 s per world size on a loaded 2-core machine
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_every_algorithm_gives_the_mpi_model_and_counts_traffic(tmp_path, n):
    ref, summary, traffic, out = train(n, tmp_path, "mpi")
    assert traffic["observed"] is False and "not observed" in traffic["note"]
    assert summary["allreduce"]["wire_bytes_observed"] is False
    assert "ESTIMATE" in out
    coef = np.load(ref / "model.npz")["coef"]
    S = 12 * 8
    for name in ALGOS:
        extra = ["--ranks-per-node", "2"] if name == "hierarchical" else []
        d, s, t, _ = train(n, tmp_path, name, "--allreduce", name, *extra)
        np.testing.assert_allclose(np.load(d / "model.npz")["coef"], coef, rtol=1e-10)
        assert s["allreduce"]["algorithm"] == name and t["algorithm"] == name
        matrix = np.array(t["bytes"])
        assert matrix.shape == (n, n) and np.all(np.diag(matrix) == 0)
        assert s["allreduce"]["wire_bytes_total"] == matrix.sum()
        if name == "ring":  # each rank sends 2(p-1)/p * S per step, to its right neighbour
            assert np.all(matrix.sum(axis=1) == 12 * 2 * (n - 1) / n * S)
        if name == "hierarchical":
            assert t["node_of_rank"] == [r // 2 for r in range(n)]
            assert s["allreduce"]["intra_node_bytes"] + s["allreduce"]["inter_node_bytes"] == (
                matrix.sum()
            )


def test_mpi_algorithm_is_forced_and_recorded(tmp_path):
    _, s, _, out = train(2, tmp_path, "forced", "--mpi-algorithm", "recursive-doubling")
    rec = s["allreduce"]["mpi_algorithm"]
    assert rec["requested"] == rec["forced"] == "recursive-doubling"
    assert "coll_tuned_allreduce_algorithm=3" in rec["setting"]
    assert "allreduce [mpi, recursive-doubling]" in out
    _, s, _, _ = train(2, tmp_path, "default")
    assert s["allreduce"]["mpi_algorithm"]["forced"] is None


def test_mpi_algorithm_needs_allreduce_mpi(tmp_path):
    result = run_mpi(
        2,
        train_cmd(*BASE, "--allreduce", "ring", "--mpi-algorithm", "ring", "--out", str(tmp_path)),
        timeout=30,
    )
    assert result.returncode == 2
    assert "--mpi-algorithm: expected --allreduce mpi" in result.stderr


def test_buckets_overlap_and_same_model(tmp_path):
    common = ["--features", "509", "--samples", "600", "--batch-size", "60"]
    ref, _, _, _ = train(3, tmp_path, "whole", *common)
    d, s, _, out = train(3, tmp_path, "buckets", *common, "--bucket-bytes", "1024")
    np.testing.assert_allclose(
        np.load(d / "model.npz")["coef"], np.load(ref / "model.npz")["coef"], rtol=1e-10
    )
    a = s["allreduce"]
    assert a["calls"] == 12 * 4  # 512 elements in buckets of 128
    assert a["bytes"] == 12 * 512 * 8
    assert 0 <= a["overlap_fraction"]["median"] <= 1
    assert "overlap" in out


def test_fp16_compression_saves_bytes_and_keeps_the_loss(tmp_path):
    _, ref, _, _ = train(3, tmp_path, "plain", "--dtype", "float32")
    _, s, _, out = train(3, tmp_path, "fp16", "--dtype", "float32", "--compress", "fp16")
    a = s["allreduce"]
    assert a["bytes"] == 12 * 12 * 2 and a["bytes_saved"] == 12 * 12 * 2
    assert abs(s["final_loss"] - ref["final_loss"]) < 1e-3
    assert "compression   fp16" in out


def test_trace_has_one_track_per_rank(tmp_path):
    d, s, _, _ = train(3, tmp_path, "traced", "--trace", "--allreduce", "ring")
    doc = json.loads((d / "trace.json").read_text())
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in spans} == {0, 1, 2}
    ar = [e for e in spans if e["name"] == "allreduce"]
    assert len(ar) == 3 * 12
    assert all(
        e["args"] == {"step": e["args"]["step"], "bytes": 96, "algorithm": "ring"} for e in ar
    )
    for phase in ("data", "compute", "comm", "update"):
        assert sum(e["name"] == phase for e in spans) == 3 * 12
    sync = s["trace"]["clock_sync"]
    assert sync["offset_ns"][0] == 0 and len(sync["error_ns"]) == 3
    assert all(e["ts"] >= 0 and e["dur"] >= 0 for e in spans)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_bench_table_json_and_validation(tmp_path, n):
    out = tmp_path / "b.json"
    cmd = [
        str(BIN / "dist-logreg"),
        "bench",
        "--allreduce",
        "mpi,ring,hierarchical",
        "--min-bytes",
        "8",
        "--max-bytes",
        "4K",
        "--factor",
        "4",
        "--iters",
        "5",
        "--warmup",
        "1",
        "--dtype",
        "float32",
        "--out",
        str(out),
        "--csv",
        str(tmp_path / "b.csv"),
    ]
    result = run_mpi(n, cmd, timeout=60)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["run"]["world_size"] == n and doc["run"]["tag"] == "b"  # the --out file's name
    assert doc["run"]["command_line"][1:] == cmd[1:]
    records = doc["records"]
    assert [(r["algorithm"], r["bytes"]) for r in records] == [
        (a, b) for a in ("mpi", "ring", "hierarchical") for b in (8, 32, 128, 512, 2048, 4096)
    ]  # 4096: --max-bytes is inclusive
    for r in records:
        assert r["wrong"] == 0 and r["time_s"] > 0 and r["world_size"] == n
        assert r["busbw"] == pytest.approx(r["algbw"] * 2 * (n - 1) / n)
        assert r["time_s_min"] <= r["time_s"] <= r["time_s_max"]
    assert "busbw(GB/s)" in result.stdout and result.stdout.count("ring") >= 5
    rows = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert len(rows) == len(records)
    assert [float(r["time_s_p99"]) for r in rows] == [r["time_s_p99"] for r in records]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_bench_every_collective_validated(tmp_path, n):
    out = tmp_path / "c.json"
    cmd = [
        str(BIN / "dist-logreg"),
        "bench",
        "--collective",
        "allreduce,reduce-scatter,allgather,broadcast,alltoall",
        "--max-bytes",
        "1K",
        "--factor",
        "8",
        "--iters",
        "4",
        "--warmup",
        "1",
        "--repeats",
        "2",
        "--out",
        str(out),
    ]
    result = run_mpi(n, cmd, timeout=90)
    assert result.returncode == 0, result.stderr
    records = json.loads(out.read_text())["records"]
    pairs = list(dict.fromkeys((r["collective"], r["algorithm"]) for r in records))
    assert pairs == [
        ("allreduce", "mpi"),
        ("reduce-scatter", "mpi"),
        ("reduce-scatter", "ring"),
        ("reduce-scatter", "recursive-halving"),
        ("allgather", "mpi"),
        ("allgather", "ring"),
        ("allgather", "recursive-doubling"),
        ("broadcast", "mpi"),
        ("alltoall", "mpi"),
    ]
    factors = {"allreduce": 2 * (n - 1) / n, "broadcast": 1.0}
    for r in records:
        assert r["wrong"] == 0 and r["repeats"] == 2 and r["time_s_ci95"] is not None
        want = factors.get(r["collective"], (n - 1) / n) if n > 1 else 0.0
        assert r["busbw_factor"] == pytest.approx(want)
    if n > 1:
        assert "# crossovers (reduce-scatter)" in result.stdout


@pytest.mark.parametrize("n", [2, 3])
def test_bench_p2p_pairs(tmp_path, n):
    out = tmp_path / "p.json"
    pairs = "0:1" if n == 2 else "0:1,2:0"
    cmd = [
        str(BIN / "dist-logreg"),
        "bench",
        "--p2p",
        "latency,bw,bibw",
        "--pairs",
        pairs,
        "--max-bytes",
        "4K",
        "--factor",
        "32",
        "--iters",
        "4",
        "--warmup",
        "1",
        "--window",
        "4",
        "--out",
        str(out),
    ]
    result = run_mpi(n, cmd, timeout=90)
    assert result.returncode == 0, result.stderr
    records = json.loads(out.read_text())["records"]
    npairs = len(pairs.split(","))
    assert len(records) == 3 * npairs * 3  # tests x pairs x sizes (8, 256, 4096)
    for r in records:
        assert r["wrong"] == 0 and r["GBps"] > 0
        moved = r["bytes"] * {"latency": 1, "bw": 4, "bibw": 8}[r["p2p"]]
        assert r["GBps"] == pytest.approx(moved / r["time_s"] / 1e9)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--allreduce", "mpi,bogus"], "--allreduce: expected a comma list"),
        (["--min-bytes", "lots"], "expected a byte count"),
        (["--min-bytes", "1M", "--max-bytes", "1K"], "--max-bytes: expected >= --min-bytes"),
        (["--factor", "1"], "--factor: expected an integer >= 2"),
        (["--collective", "allreduce,gossip"], "--collective: expected a comma list"),
        (["--repeats", "0"], "--repeats: expected an integer >= 1"),
        (["--p2p", "latency", "--pairs", "0:5"], "--pairs: expected two different ranks below"),
        (["--p2p", "latency", "--pairs", "0-1"], "--pairs: expected rank pairs such as"),
        (["--p2p", "pingpong"], "--p2p: expected a comma list of latency, bw, bibw"),
    ],
)
def test_bench_bad_arguments(args, message):
    result = run_mpi(2, [str(BIN / "dist-logreg"), "bench", *args], timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
