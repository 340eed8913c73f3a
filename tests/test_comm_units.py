"""Communication pieces that need no launcher: buckets, cost model, fp16, bench helpers, trace."""

import json
import math

import numpy as np
import pytest
from mpi4py import MPI

from dist_logreg.bench import sweep as bench
from dist_logreg.collective.closed_form import busbw_factor, model_time, model_wire_bytes
from dist_logreg.comm.base import MPIAllreduce
from dist_logreg.comm.wrappers import FP16Compressed, Instrumented
from dist_logreg.errors import UsageError
from dist_logreg.record.stats import traffic_report
from dist_logreg.record.trace import clock_offset, write_trace
from dist_logreg.train.loop import bucket_ranges
from dist_logreg.units import parse_bytes


@pytest.mark.parametrize("d, elems", [(10, 4), (10, 1), (10, 100), (1, 1), (37, 5), (8, 4)])
def test_bucket_ranges_cover_the_buffer_once(d, elems):
    ranges = bucket_ranges(d + 3, d, elems)
    assert ranges[0][0] == 0 and ranges[-1][1] == d + 3
    assert all(a[1] == b[0] for a, b in zip(ranges[:-1], ranges[1:], strict=True))
    assert all(hi - lo <= elems + 3 for lo, hi in ranges)  # at most the tail rides along
    assert all(lo < d for lo, _ in ranges)  # no bucket of tail slots alone
    assert bucket_ranges(d + 3, d, 0) is None


def test_cost_model_formulas():
    S, p = 1 << 20, 4
    assert model_wire_bytes("ring", S, p) == 2 * 3 / 4 * S
    assert model_wire_bytes("rabenseifner", S, p) == 1.5 * S
    assert model_wire_bytes("recursive-doubling", S, p) == 2 * S
    assert model_wire_bytes("mpi", S, 1) == 0
    a, b = 5e-6, 1e-9
    assert model_time("ring", S, p, a, b) == pytest.approx(6 * a + 1.5 * S * b)
    assert model_time("recursive-doubling", S, p, a, b) == pytest.approx(2 * (a + S * b))
    assert model_time("rabenseifner", S, p, a, b) == pytest.approx(4 * a + 1.5 * S * b)
    assert busbw_factor(3) == pytest.approx(4 / 3)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # the naive cast's
def test_fp16_sum_does_not_overflow_for_large_batches():
    """4096 rows with features near 100 sum to ~4e5, far above float16's 65504."""
    buf = np.full(8, 4096 * 100.0)
    fp16 = FP16Compressed(MPIAllreduce(MPI.COMM_SELF), scale=4096)
    fp16.allreduce(buf)
    np.testing.assert_allclose(buf, 4096 * 100.0, rtol=1e-3)
    naive = (np.full(8, 4096 * 100.0)).astype(np.float16)
    assert np.all(np.isinf(naive))  # what the pre-scaling avoids


def test_fp16_nonblocking_decompresses_on_wait():
    wrapped = Instrumented(FP16Compressed(MPIAllreduce(MPI.COMM_SELF), scale=2.0))
    buf = np.arange(10.0)
    wrapped.start(buf[:6])
    wrapped.start(buf[6:])
    wrapped.wait()
    np.testing.assert_allclose(buf, np.arange(10.0), rtol=1e-3)
    assert list(wrapped.records()["bytes"]) == [12, 8]  # float16 on the wire


@pytest.mark.parametrize(
    "text, value", [("8", 8), ("4K", 4096), ("64M", 64 << 20), ("1GiB", 1 << 30), ("2k", 2048)]
)
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "M", "-4", "4X", "1.5M"])
def test_parse_bytes_rejects(text):
    with pytest.raises(UsageError, match="expected a byte count"):
        parse_bytes(text)


def test_sizes_sweep():
    assert bench.sizes(8, 64, 2) == [8, 16, 32, 64]
    # --max-bytes is inclusive: the last row is always max_bytes itself
    assert bench.sizes(8, 100, 4) == [8, 32, 100]
    assert bench.sizes(8, 1 << 20, 4)[-2:] == [512 << 10, 1 << 20]
    assert bench.sizes(64, 64, 2) == [64]


def test_summary_columns_from_a_known_matrix():
    from dist_logreg.bench.summary import summarize, t95

    ns = np.array([[1000, 3000, 2000, 2000], [4000, 4000, 4000, 4000]])  # 2 repeats x 4
    s = summarize(ns)
    assert s["time_s"] == pytest.approx(3e-6) and s["time_s_min"] == pytest.approx(1e-6)
    assert s["time_s_max"] == pytest.approx(4e-6) and s["time_s_p50"] == pytest.approx(3.5e-6)
    assert s["iters"] == 4 and s["repeats"] == 2
    # repeat means 2 us and 4 us: sd sqrt(2) us, t(1) = 12.706, half-width 12.706 * 1 us
    assert s["time_s_ci95"] == pytest.approx(12.706e-6)
    assert summarize(ns[:1])["time_s_ci95"] is None and t95(100) == 1.96


def test_best_per_size_names_the_crossovers():
    from dist_logreg.bench.summary import best_per_size

    def rec(alg, n, t):
        return {
            "collective": "allgather",
            "algorithm": alg,
            "bytes": n,
            "time_s_p50": t,
            "time_s": t,
        }

    recs = [rec("mpi", 8, 1), rec("ring", 8, 2), rec("mpi", 1024, 5), rec("ring", 1024, 3)]
    lines = best_per_size(recs + [rec("mpi", 8, 1) | {"collective": "broadcast"}])
    assert lines == [
        "# best per size (allgather, by p50): 8 B mpi, 1.00 KiB ring",
        "# crossovers (allgather): ring overtakes mpi at 1.00 KiB",
    ]


def test_measure_validates_at_one_rank():
    rec = bench.measure(MPI.COMM_SELF, MPIAllreduce(MPI.COMM_SELF), 1000, "float32", 1, 3)
    assert rec["count"] == 250 and rec["bytes"] == 1000 and rec["wrong"] == 0
    assert rec["time_s"] > 0 and rec["busbw"] == 0.0


def test_traffic_report_observed_and_estimated():
    S = 800
    observed = [
        {"sent_bytes": [0, S, 0], "sent_messages": [0, 1, 0]},
        {"sent_bytes": [S, 0, S], "sent_messages": [1, 0, 1]},
        {"sent_bytes": [0, S, 0], "sent_messages": [0, 1, 0]},
    ]
    doc, keys = traffic_report(observed, "recursive-doubling", [0, 0, 1], 10 * S)
    assert doc["observed"] and doc["bytes"][1] == [S, 0, S]
    assert doc["intra_node_bytes"] == 2 * S and doc["inter_node_bytes"] == 2 * S
    assert keys["wire_bytes_total"] == 4 * S
    blind = [{"sent_bytes": None, "sent_messages": None}] * 4
    doc, keys = traffic_report(blind, "mpi", None, 10 * S)
    assert doc["observed"] is False and doc["bytes"] is None
    assert keys["wire_bytes_estimate_per_rank"] == 1.5 * 10 * S
    assert "ESTIMATE" in keys["wire_bytes_note"]


def test_clock_offset_of_rank0_is_zero():
    assert clock_offset(MPI.COMM_SELF) == (0, 0)


def test_trace_file_is_chrome_trace(tmp_path):
    marks = np.array([[100, 200, 300, 400, 450], [500, 600, 700, 800, 850]], dtype=np.int64)
    calls = {
        "step": np.array([0, 1]),
        "bytes": np.array([64, 64]),
        "start_ns": np.array([300, 700]),
        "ns": np.array([100, 100]),
    }
    per_rank = [
        {
            "rank": r,
            "marks": marks + 1000 * r,
            "comm_ns": np.array([100, 100]),
            "calls": {k: v + (1000 * r if k == "start_ns" else 0) for k, v in calls.items()},
            "clock_offset_ns": -1000 * r,
            "clock_error_ns": 5 * r,
            "first_step": 0,
        }
        for r in range(2)
    ]
    sync = write_trace(tmp_path / "t.json", per_rank, "ring", bucketed=False)
    doc = json.loads((tmp_path / "t.json").read_text())
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in spans} == {0, 1}
    names = {e["name"] for e in spans}
    assert names == {"data", "compute", "comm", "update", "allreduce"}
    ar = [e for e in spans if e["name"] == "allreduce"]
    assert all(e["args"]["algorithm"] == "ring" and e["args"]["bytes"] == 64 for e in ar)
    # Offsets applied: both ranks' first data span starts at the same corrected time.
    firsts = sorted(e["ts"] for e in spans if e["name"] == "data" and e["args"]["step"] == 0)
    assert firsts[0] == firsts[1] == 0
    assert sync["error_ns"] == [0, 5] and math.isclose(ar[0]["dur"], 0.1)
