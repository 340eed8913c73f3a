"""The algorithm table: every module reads it, they agree, and a new algorithm is one module
plus one record (a toy algorithm defined only here)."""

import math

import numpy as np
import pytest
from mpi4py import MPI

from dist_logreg.collective import algorithms as table
from dist_logreg.collective import closed_form, costfile, ecmp, schedule
from dist_logreg.collective.costfit import Sample, fit, fit_gamma
from dist_logreg.collective.schedule import Placement, shape
from dist_logreg.collective.steps import Phase
from dist_logreg.comm.base import Allreduce
from dist_logreg.comm.registry import make_allreduce
from dist_logreg.ops import scale
from dist_logreg.train.config import TrainConfig
from dist_logreg.train.validation import validate

# ---- the toy: "one new module" (this file) and "one new record" (TOY) ----------------------


class LinearAllreduce(Allreduce):
    """Every rank sends its buffer to rank 0, which adds them in rank order and sends the
    sum back to each: ``2(p-1)`` messages of the whole buffer through rank 0."""

    name = "toy-linear"

    def __init__(self, comm):
        self.comm = comm

    def allreduce(self, buf, step=-1):
        comm, tmp = self.comm, np.empty_like(buf)
        if comm.Get_rank() == 0:
            for r in range(1, comm.Get_size()):
                comm.Recv(tmp, r)
                buf += tmp
            for r in range(1, comm.Get_size()):
                comm.Send(buf, r)
        else:
            comm.Send(buf, 0)
            comm.Recv(buf, 0)


def linear_phases(p, node_of):
    """p-1 steps in; one rank sends its whole buffer to rank 0 in each, which reduces it.
    Then p-1 steps out."""
    ins = [Phase(1, np.array([r]), np.array([0]), np.array([1.0]), 1.0) for r in range(1, p)]
    outs = [Phase(1, np.array([0]), np.array([r]), np.array([1.0]), 0.0) for r in range(1, p)]
    return ins + outs


TOY = table.Algorithm(
    name="toy-linear",
    runner=f"{__name__}:LinearAllreduce",
    help="everything through rank 0 (a test's toy)",
    formula="2(p-1) alpha + 2(p-1) n beta + (p-1) n gamma",
    phases=linear_phases,
    closed_form=lambda p: (2.0 * (p - 1), 2.0 * (p - 1), float(p - 1)),
    wire_factor=lambda p: 2.0 * (p - 1) / p,  # the average rank: 2(p-1) buffers over p ranks
)


def totals(steps):
    return (
        sum(s.repeat for s in steps),
        sum(s.repeat * s.load for s in steps),
        sum(s.repeat * s.reduce for s in steps),
    )


def test_the_toy_is_everywhere_while_registered_and_gone_after():
    assert TOY.name not in table.names()
    with table.registered(TOY):
        assert TOY.name in table.names() and table.get(TOY.name) is TOY
        validate(TrainConfig(allreduce=TOY.name))  # the train choices read the table
        with pytest.raises(ValueError, match="already registered"):
            table.register(TOY)
    assert TOY.name not in table.names()
    with pytest.raises(ValueError, match="unknown allreduce algorithm 'toy-linear'"):
        table.get(TOY.name)


@pytest.mark.parametrize("p", [2, 3, 5, 8])
def test_the_toys_schedule_and_closed_form_agree(p):
    """Hand count: rank 0 receives p-1 whole buffers and sends p-1 (one per step)."""
    with table.registered(TOY):
        assert totals(shape(TOY.name, Placement.blocks(p, 1))) == (2 * (p - 1), 2 * (p - 1), p - 1)
        assert closed_form.coefficients(TOY.name, p) == totals(
            shape(TOY.name, Placement.blocks(p, 1))
        )
        nbytes, messages = schedule.traffic(TOY.name, p, 100.0)
        assert nbytes[1:, 0].tolist() == [100.0] * (p - 1) and messages.sum() == 2 * (p - 1)


def test_the_toy_runs_sums_and_is_fitted_with_its_formula():
    with table.registered(TOY):
        ar = make_allreduce(TOY.name, MPI.COMM_WORLD)
        assert isinstance(ar, LinearAllreduce)
        buf = np.arange(5.0)
        ar.allreduce(buf)
        np.testing.assert_array_equal(buf, np.arange(5.0) * MPI.COMM_WORLD.Get_size())
        # measurements from known parameters: the fit finds them again and names the formula
        a, b, g = 30e-6, 4e-9, 1e-10
        samples = []
        for p in (2, 4):
            place = Placement.blocks(p, 1)
            for n in (1e3, 1e4, 1e5, 1e6):
                ca, cb, cc = closed_form.coefficients(TOY.name, p)
                samples.append(Sample(TOY.name, n, place, ca * a + cb * n * b + cc * n * g))
        reduce = [(n, n * g) for n in (1e3, 1e4, 1e5, 1e6)]
        model = fit(samples, reduce, breakpoints=[])
        inter = model["algorithms"][TOY.name]["segments"][0]["inter"]
        assert inter["alpha_s"] == pytest.approx(a, rel=1e-6)
        assert inter["beta_s_per_byte"] == pytest.approx(b, rel=1e-6)
        assert model["algorithms"][TOY.name]["formula"] == TOY.formula
        assert fit_gamma(reduce, [])[0]["s_per_byte"] == pytest.approx(g, rel=1e-6)
        # ... and predicted through the fitted model as through the closed form
        place = Placement.blocks(3, 1)
        want = closed_form.model_time(TOY.name, 5e5, 3, a, b, g)
        assert costfile.predict(model, TOY.name, 5e5, place)["time_s"] == pytest.approx(want)


# ---- the table's readers agree ------------------------------------------------------------


CLOSED = [a.name for a in table.of() if a.closed_form is not None]


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("p", range(2, 10))
def test_scale_predicts_the_closed_form_including_gamma(name, p):
    """``scale``'s plain alpha-beta-gamma model is the closed form of the table, gamma too
    (it had its own gamma factor: log2(3) S instead of 2 S at p = 3 recursive doubling)."""
    alpha, beta, gamma, n = 1e-4, 1e-9, 5e-10, 1 << 20
    model = {"alpha_s": alpha, "beta_s_per_byte": beta, "gamma_s_per_byte": gamma}
    a, b, c = table.get(name).closed_form(p)
    assert scale.predict_allreduce_s(model, name, n, p) == pytest.approx(
        a * alpha + b * n * beta + c * n * gamma
    )


def test_recursive_doubling_at_three_ranks_by_hand():
    """p = 3: rank 0 folds its whole buffer into rank 1 (one message, one reduction), ranks
    1 and 2 exchange (one message, one reduction), rank 1 hands rank 0 the result (one
    message): 3 messages, 3 S sent, 2 S reduced on the critical path."""
    alpha, beta, gamma, n = 1e-4, 1e-9, 5e-10, 1 << 20
    want = 3 * alpha + 3 * n * beta + 2 * n * gamma
    model = {"alpha_s": alpha, "beta_s_per_byte": beta, "gamma_s_per_byte": gamma}
    rd = table.RECURSIVE_DOUBLING.name
    assert scale.predict_allreduce_s(model, rd, n, 3) == pytest.approx(want)
    assert closed_form.model_time(rd, n, 3, alpha, beta, gamma) == pytest.approx(want)
    steps = shape(rd, Placement.blocks(3, 1))
    assert sum(s.repeat * (alpha + s.load * n * beta + s.reduce * n * gamma) for s in steps) == (
        pytest.approx(want)
    )


def test_hierarchical_with_a_plain_model_says_no_closed_form():
    h = table.HIERARCHICAL.name
    assert closed_form.coefficients(h, 4) is None
    assert closed_form.model_time(h, 1000, 4, 1e-6, 1e-9) is None
    assert closed_form.why_not(h).startswith("no closed form for hierarchical: ")
    model = {"alpha_s": 1e-6, "beta_s_per_byte": 1e-9}
    assert scale.predict_allreduce_s(model, h, 1000, 4) is None
    point = {
        "world_size": 2,
        "batch_size": 64,
        "step_s": 0.01,
        "comm_s": 0.002,
        "comm_fraction": 0.2,
        "payload_bytes_per_step": 1000,
        "algorithm": h,
    }
    points = scale.tabulate([point], "strong", model)
    assert "predicted" not in points[0]
    text = scale.format_table(points, "strong", "test")
    assert "model: no closed form for hierarchical" in text


@pytest.mark.parametrize("name", table.scheduled())
@pytest.mark.parametrize("p", [2, 4, 8])
def test_the_ecmp_model_steps_are_the_schedules(name, p):
    """ECMP's steps, flattened, send per rank what the schedule's traffic matrix says."""
    nbytes, _ = schedule.traffic(name, p, 1.0)
    steps = ecmp.schedule(name, p, 1.0)
    sent = np.zeros((p, p))
    for step in steps:
        for a, b, x in step:
            sent[a, b] += x
    np.testing.assert_allclose(sent, nbytes)


def test_every_record_is_complete():
    for a in table.of():
        assert a.name and a.help and a.formula and ":" in a.runner, a
        assert (a.phases is not None and a.closed_form is not None) or a.why, a
        assert a.collective == table.ALLREDUCE
        for p in (2, 3, 8):
            assert a.wire_bytes_factor(p) > 0
    assert table.RECURSIVE_DOUBLING.wire_bytes_factor(8) == math.log2(8)
    assert table.DEFAULT in table.names()
