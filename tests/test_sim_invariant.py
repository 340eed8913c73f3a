"""No engine reports a time below the job's lower bound, nor a busbw above the host link
(issue 29, 2): the invariant every result is checked against, the two cases that broke it
(``--exact`` rounding 62.5 B chunks to 62 B; the packet engine sending 0-byte chunks), and
many random small cases over every algorithm, flow and exact (a few packet ones)."""

import numpy as np
import pytest

from dist_logreg.collective.algorithms import BUSBW_FACTORS, get, scheduled_keys
from dist_logreg.sim import runner
from dist_logreg.sim.bounds import check_result, lower_bound_s
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job, Result
from dist_logreg.sim.messages import messages
from dist_logreg.sim.placement import place
from tests.test_sim_packet import needs_ns3


def _factor(alg, p):
    return BUSBW_FACTORS[get(alg).collective](p)


def test_exact_on_one_switch_is_not_below_the_bound():
    # 16 ranks, 1000 B, no alpha, no latency, 10G: 2 (15/16) 1000 B / 1.25 GB/s = 1.5 us
    fab = parse_fabric("flat:hosts=16,rate=10G,alpha=0,link-latency=0")
    r = get_engine("flow").run(Job(fab, place(16, fab), "ring", 1000, exact=True))
    bound = 2 * 15 / 16 * 1000 / 1.25e9
    assert r.time_s >= bound * (1 - 1e-12)
    assert 2 * 15 / 16 * 1000 / r.time_s <= 1.25e9 * (1 + 1e-12)  # busbw <= the host link
    assert r.extra["phase_sync_s"] == pytest.approx(bound)


def test_no_message_of_a_share_is_zero_bytes():
    g = messages("ring", 16, 2)  # 2 B in 16 chunks: each message still carries a byte
    assert g.nbytes.min() == 1
    g = messages("ring", 16, 1000)
    assert g.nbytes.max() == 63  # the largest chunk of 1000 B in 16 (ceil(62.5))
    assert messages("ring", 8, 1 << 20).nbytes.min() == (1 << 20) // 8  # even splits exact


def test_check_result_refuses_a_result_faster_than_physics():
    fab = parse_fabric("flat:hosts=4,rate=8G,alpha=0,link-latency=0")  # 1 GB/s links
    job = Job(fab, place(4, fab), "ring", 1000)
    bound = 2 * 3 / 4 * 1000 / 1e9
    assert lower_bound_s(job) == pytest.approx(bound)
    fast = Result(bound * 0.99, bound, "host", 0.0, 0.0, {})
    with pytest.raises(RuntimeError, match=r"below the job's lower bound .*\(a bug\)"):
        check_result(job, fast, "flow")
    with pytest.raises(RuntimeError, match="a bug"):
        check_result(job, Result(float("nan"), bound, "host", 0.0, 0.0, {}), "flow")
    assert check_result(job, Result(bound, bound, "host", 0.0, 0.0, {})) is not None


def _random_fabric(rng, ranks):
    rate = float(rng.choice([1, 10, 25, 100, 400]))
    common = (
        f"rate={rate}G,alpha={rng.choice([0, 1, 5])}us,link-latency={rng.choice([0, 0.5, 1])}us"
    )
    if rng.random() < 0.5:
        return f"flat:hosts={ranks + int(rng.integers(0, 3))},{common}", rate * 1e9 / 8
    per_leaf = int(rng.integers(1, 5))
    leaves = -(-ranks // per_leaf) + int(rng.integers(0, 2))
    over = rng.choice([0.5, 1, 2, 4])
    spec = (
        f"leaf-spine:leaves={leaves},spines={int(rng.integers(1, 4))},"
        f"hosts-per-leaf={per_leaf},oversubscription={over},hash={rng.choice(['l3', 'l4'])},"
        + common
    )
    return spec, rate * 1e9 / 8


CASES = 200


@pytest.mark.parametrize("case", range(CASES))
def test_random_small_cases_respect_the_bound(case):
    rng = np.random.default_rng(1000 + case)
    p = int(rng.integers(2, 18))
    spec, rate = _random_fabric(rng, p)
    fab = parse_fabric(spec)
    alg = scheduled_keys()[case % len(scheduled_keys())]
    nbytes = int(np.exp(rng.uniform(0, np.log(1 << 20))))
    exact = bool(case % 2)
    mode = ("packed", "spread", "random")[case % 3]
    # the runner checks every result (check_result raises on a violation)
    row = runner.point(get_engine("flow"), fab, p, 1, mode, case, alg, nbytes, 2, exact)
    alpha = fab.alpha
    want = alpha + _factor(alg, p) * nbytes / rate  # one rank per host, every link at `rate`
    assert row["time_s"] >= want * (1 - 1e-9), (spec, alg, nbytes, p, exact)
    assert row["busbw"] <= rate * (1 + 1e-9), (spec, alg, nbytes, p, exact)
    assert min(row["time_s_seeds"]) >= want * (1 - 1e-9)


@needs_ns3
@pytest.mark.parametrize(
    "alg, p, nbytes", [("ring", 4, 2), ("recursive-doubling", 4, 3), ("ring", 5, 1000)]
)
def test_packet_cases_respect_the_bound_and_pay_their_hops(alg, p, nbytes):
    spec = f"flat:hosts={p},rate=10G"  # alpha 5 us, 1 us per hop
    fab = parse_fabric(spec)
    row = runner.point(get_engine("packet"), fab, p, 1, "packed", 0, alg, nbytes, 1)
    steps = len(messages(alg, p, nbytes).nbytes) // p  # each step waits for the last
    assert row["time_s"] >= steps * (5e-6 + 2e-6) * (1 - 1e-9)  # alpha + two hops per step
    assert row["busbw"] <= 10e9 / 8
