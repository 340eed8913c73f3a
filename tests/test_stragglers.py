"""Arrival order, flagged steps and the explanation line, on records made up by hand."""

import numpy as np
import pytest

from dist_logreg.collective.costfit import Sample, fit
from dist_logreg.collective.schedule import Placement
from dist_logreg.record.console import model_lines
from dist_logreg.record.stragglers import annotate, explain, straggler_table

HOSTS, HOST_OF = ["h0", "h1"], [0, 0, 1]


def per_rank(steps=10, late_rank=2, late_step=5, late_ns=300_000_000, offsets=(0, 50, -70)):
    """3 ranks; each enters step i's allreduce at 1 ms * i (+ rank * 1 us, on rank 0's clock);
    ``late_rank`` comes ``late_ns`` late in ``late_step``, where the others wait that long."""
    out = []
    for r in range(3):
        arrive = np.arange(steps) * 1_000_000 + r * 1_000 - offsets[r]  # local clock
        comm = np.full(steps, 10_000)  # about the prediction (9.4 us)
        if r == late_rank:
            arrive[late_step] += late_ns
        else:
            comm[late_step] += late_ns
        marks = np.zeros((steps, 5), dtype=np.int64)
        marks[:, 2] = arrive
        calls = {
            "step": np.arange(steps),
            "bytes": np.full(steps, 1024),
            "start_ns": arrive,
            "ns": comm,
        }
        out.append(
            {
                "rank": r,
                "first_step": 0,
                "marks": marks,
                "comm_ns": comm,
                "calls": calls,
                "clock_offset_ns": offsets[r],
                "clock_error_ns": 500,
            }
        )
    return out


def summary() -> dict:
    return {
        "allreduce": {
            "algorithm": "ring",
            "bytes_per_call": 1024,
            "latency_s": {"p50": 40e-6},
            "transfer_s": {"p50": 20e-6},
            "skew_s": {"p50": 2e-6},
        }
    }


def model(alpha=2e-6, beta=1e-9) -> dict:
    """A ring model with time 4 alpha + 4/3 n beta (+ gamma) at 3 ranks, fitted from
    synthetic points (the fit recovers them exactly)."""
    samples = []
    for p in (2, 3, 4):
        for n in (1024, 8192, 65536, 1 << 20):
            place = Placement.blocks(p, 0)
            t = 2 * (p - 1) * alpha + 2 * (p - 1) / p * n * beta
            samples.append(Sample("ring", n, place, t))
    return fit(samples, [(n, 1e-12 * n) for n in (1024, 8192, 65536, 1 << 20)], breakpoints=[])


def test_the_latest_arrival_is_named_and_by_how_much():
    table = straggler_table(per_rank(), HOSTS, HOST_OF)
    first = table["table"][0]
    # Without the stall rank 2 (entering 1 us after rank 1) is last every step.
    assert first["rank"] == 2 and first["host"] == "h1" and first["last_steps"] == 10
    assert np.median(table["_late"]) == pytest.approx(1e-6)
    assert first["worst_step"] == 5 and first["worst_late_s"] == pytest.approx(0.3 + 1e-6)
    assert table["_late"][5] == pytest.approx(0.3 + 1e-6)
    # Now rank 0 is the slow one at step 5: it is named there, and only there.
    table = straggler_table(per_rank(late_rank=0), HOSTS, HOST_OF)
    assert table["_last"][5] == 0 and list(table["_last"]).count(0) == 1
    assert table["_late"][5] == pytest.approx(0.3 - 2e-6)


def test_flagged_steps_need_a_model_and_name_the_late_rank():
    s = summary()
    assert annotate(s, per_rank(), HOSTS, HOST_OF) is None
    assert "flagged_total" not in s["stragglers"] and "cost_model" not in s
    assert s["placement"] == {"hosts": HOSTS, "host_of_rank": HOST_OF}
    s = summary()
    predict = annotate(s, per_rank(), HOSTS, HOST_OF, model(), "m.json", slow=2.0)
    assert predict(1024) == pytest.approx(4 * 2e-6 + 4 / 3 * 1024 * 1e-9, rel=1e-3)
    st = s["stragglers"]
    assert st["flagged_total"] == 1
    (flag,) = st["flagged_steps"]
    assert flag["step"] == 5 and flag["late_rank"] == 2 and flag["late_host"] == "h1"
    assert flag["late_by_s"] == pytest.approx(0.3, rel=1e-3)
    assert flag["ratio"] > 1000
    m = s["cost_model"]
    assert m["ratio"] == pytest.approx(40e-6 / predict(1024))
    text = "\n".join(model_lines(s))
    assert "measured p50 40.0 us" in text and "(ratio " in text
    assert "rank 2 (host h1) arrived last in 100% of steps" in text
    assert "step 5: 300.0 ms" in text and "rank 2 (host h1) arrived last, +300.0 ms" in text


def test_one_rank_has_no_stragglers():
    s = summary()
    assert annotate(s, per_rank()[:1], ["h0"], [0], model()) is None
    assert "stragglers" not in s


def parts(alpha, beta, gamma, n=1024) -> dict:
    return {
        "time_s": alpha + beta + gamma,
        "alpha_s": alpha,
        "beta_s": beta,
        "gamma_s": gamma,
        "bytes": n,
    }


def test_explanation_says_skew_latency_bandwidth_or_reduction():
    assert explain(parts(8e-6, 1e-6, 1e-6), 14e-6, 10e-6, 4e-6) is None  # within 1.5x
    assert explain(parts(8e-6, 1e-6, 1e-6), 40e-6, 12e-6, 28e-6).startswith("skew")
    assert explain(parts(8e-6, 1e-6, 1e-6), 40e-6, 38e-6, 2e-6).startswith("latency")
    assert explain(parts(1e-6, 8e-6, 1e-6), 40e-6, 38e-6, 2e-6).startswith("bandwidth")
    assert explain(parts(1e-6, 1e-6, 8e-6), 40e-6, 38e-6, 2e-6).startswith("reduction")
