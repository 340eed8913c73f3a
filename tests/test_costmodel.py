"""The cost model's fit and predictions, on synthetic measurements from known parameters."""

import json

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

from dist_logreg.collective import costfile
from dist_logreg.collective.closed_form import coefficients
from dist_logreg.collective.costfit import Sample, fit, fit_gamma, nnls
from dist_logreg.collective.schedule import Placement, shape
from dist_logreg.errors import UsageError
from dist_logreg.units import parse_link_rate

# alpha_intra, beta_intra, alpha_inter, beta_inter, gamma per segment (COLUMNS order)
LOW = [3e-6, 2e-10, 40e-6, 8e-9, 1e-10]
HIGH = [9e-6, 1e-10, 90e-6, 8.5e-9, 1.5e-10]
ALGS = ["ring", "recursive-doubling", "rabenseifner", "hierarchical", "mpi"]
#: (ranks, ranks per host; 0 = all on one host)
PLACES = [(2, 1), (4, 1), (3, 1), (4, 2), (6, 2), (2, 0), (4, 0), (3, 0)]
SIZES = [2**e for e in range(10, 25)]


def synthetic(params: np.ndarray, breakpoints, noise: float = 0.0, seed: int = 0):
    """Bench-like samples and local-reduction times generated from ``params``."""
    rng = np.random.default_rng(seed)
    samples = []
    for name in ALGS:
        for p, k in PLACES:
            place = Placement.blocks(p, k)
            steps = shape(name, place)
            for n in SIZES:
                t = float((costfile.design(steps, n, breakpoints) * params).sum())
                samples.append(Sample(name, n, place, t * (1 + noise * rng.standard_normal())))
    seg = [costfile.segment_of(n, breakpoints) for n in SIZES]
    reduce = [(n, 1e-6 + n * params[s, 4]) for n, s in zip(SIZES, seg, strict=True)]
    return samples, reduce


def fitted(model: dict, name: str, seg: int) -> list[float]:
    s = model["algorithms"][name]["segments"][seg]
    return [
        s["intra"]["alpha_s"],
        s["intra"]["beta_s_per_byte"],
        s["inter"]["alpha_s"],
        s["inter"]["beta_s_per_byte"],
        model["gamma"][seg]["s_per_byte"],
    ]


def test_nnls_agrees_with_scipy():
    rng = np.random.default_rng(3)
    for _ in range(50):
        A = rng.standard_normal((12, 5))
        b = rng.standard_normal(12)
        x = nnls(A, b)
        ref, _ = scipy_nnls(A, b)
        assert np.all(x >= 0)
        assert np.linalg.norm(A @ x - b) == pytest.approx(np.linalg.norm(A @ ref - b), rel=1e-9)


def test_fit_recovers_known_parameters_within_one_percent():
    params = np.array([LOW])
    samples, reduce = synthetic(params, [], noise=0.002)
    model = fit(samples, reduce, breakpoints=[])
    for name in ALGS:
        np.testing.assert_allclose(fitted(model, name, 0), LOW, rtol=0.01, err_msg=name)
        assert model["algorithms"][name]["residuals"]["median_rel"] < 0.005


def test_fit_finds_the_breakpoint_from_the_data():
    """Parameters change for messages of 64 KiB and up (eager -> rendezvous)."""
    params = np.array([LOW, HIGH])
    samples, reduce = synthetic(params, [65536])
    model = fit(samples, reduce)
    assert len(model["breakpoints"]) == 1
    assert 32768 < model["breakpoints"][0] <= 65536  # same split of every measured message
    for name in ALGS:
        np.testing.assert_allclose(fitted(model, name, 0), LOW, rtol=0.01, err_msg=name)
        np.testing.assert_allclose(fitted(model, name, 1), HIGH, rtol=0.01, err_msg=name)
    # Without a change in the data, one segment is kept.
    one, reduce = synthetic(np.array([LOW]), [], noise=0.002)
    assert fit(one, reduce)["breakpoints"] == []
    # A requested number of segments, or given breakpoints, are obeyed.
    assert len(fit(samples, reduce, segments=3)["breakpoints"]) == 2
    assert fit(samples, reduce, breakpoints=[65536])["breakpoints"] == [65536]


def test_gamma_comes_from_the_local_reduction():
    g = fit_gamma([(n, 2e-6 + 1.25e-10 * n) for n in SIZES], [])
    assert g[0]["s_per_byte"] == pytest.approx(1.25e-10, rel=1e-6)
    assert g[0]["overhead_s"] == pytest.approx(2e-6, rel=1e-6)
    with pytest.raises(UsageError, match="local-reduction"):
        fit_gamma([], [])


def one_segment_model() -> dict:
    samples, reduce = synthetic(np.array([LOW]), [])
    model = fit(samples, reduce, breakpoints=[])
    model["source"] = {"link_rate_bits": 1e9}
    return model


def test_prediction_is_the_closed_form_with_the_fitted_parameters():
    model = one_segment_model()
    a, b, g = LOW[2], LOW[3], LOW[4]
    for name in ("ring", "recursive-doubling", "rabenseifner", "mpi"):
        for p in (2, 5, 512, 4096):
            ca, cb, cc = coefficients(name, p)
            want = ca * a + cb * 1e6 * b + cc * 1e6 * g
            got = costfile.predict(model, name, 1e6, Placement.blocks(p, 1))
            assert got["time_s"] == pytest.approx(want, rel=1e-6), (name, p)
            assert got["alpha_s"] + got["beta_s"] + got["gamma_s"] == pytest.approx(got["time_s"])


def test_link_rate_replaces_inter_host_beta_keeping_alpha():
    """Fit at 1 Gbit/s, predict at 400 Gbit/s: beta scales by 1/400, alpha stays."""
    model = one_segment_model()
    p, n = 64, 16 << 20
    ca, cb, cc = coefficients("ring", p)
    want = ca * LOW[2] + cb * n * LOW[3] / 400 + cc * n * LOW[4]
    got = costfile.predict(model, "ring", n, Placement.blocks(p, 1), link_rate=400e9)
    assert got["time_s"] == pytest.approx(want, rel=1e-6)
    # Unknown fit rate: the serialization time 8 / rate, and a note saying so.
    del model["source"]["link_rate_bits"]
    got = costfile.predict(model, "ring", n, Placement.blocks(p, 1), link_rate=100e9)
    assert got["beta_s"] == pytest.approx(cb * n * 8 / 100e9)
    assert any("serialization" in note for note in got["notes"])


@pytest.mark.parametrize("over", [1, 2, 4])
def test_two_tier_slowdown_follows_the_uplink_load(over):
    """4 hosts, 2 per leaf, uplink = rate * 2 / X. Ring: one flow per uplink direction,
    slowed by X/2 when X > 2. Recursive doubling's distance-2 step puts 2 flows on each
    uplink: that step takes 2 * X / 2 = X times as long."""
    model = one_segment_model()
    flat = Placement.blocks(4, 1)
    tier = Placement.blocks(4, 1, hosts_per_leaf=2, oversubscription=over)
    n = 64 << 20
    b = LOW[3]

    def beta(name, place):
        return costfile.predict(model, name, n, place)["beta_s"]

    assert beta("ring", tier) / beta("ring", flat) == pytest.approx(max(1, over / 2))
    rd_flat = 2 * n * b
    assert beta("recursive-doubling", tier) == pytest.approx(rd_flat / 2 * (1 + over))


def test_single_host_fit_stands_in_for_inter_host_and_says_so():
    samples, reduce = synthetic(np.array([LOW]), [])
    one_host = [s for s in samples if s.place.hosts == 1]
    model = fit(one_host, reduce, breakpoints=[])
    assert model["algorithms"]["ring"]["segments"][0]["inter"] is None
    got = costfile.predict(model, "ring", 1e6, Placement.blocks(8, 1))
    assert got["notes"] and "inter-host" in got["notes"][0]
    assert got["time_s"] == pytest.approx(
        sum(
            c * x
            for c, x in zip(
                coefficients("ring", 8), (LOW[0], 1e6 * LOW[1], 1e6 * LOW[4]), strict=True
            )
        )
    )
    assert not costfile.predict(model, "ring", 1e6, Placement.blocks(8, 0))["notes"]


def test_crossover_between_latency_and_bandwidth_algorithms():
    model = one_segment_model()
    place = Placement.blocks(16, 1)
    (size, before, after), *_ = costfile.crossovers(
        model, ["ring", "recursive-doubling"], place, 8, 1 << 26
    )
    assert (before, after) == ("recursive-doubling", "ring")
    t = {a: costfile.predict(model, a, size, place)["time_s"] for a in (before, after)}
    assert t[before] == pytest.approx(t[after], rel=0.02)


def test_model_file_errors(tmp_path):
    bad = tmp_path / "m.json"
    with pytest.raises(UsageError, match="not found"):
        costfile.load(bad)
    bad.write_text("{nope")
    with pytest.raises(UsageError, match="not a readable JSON"):
        costfile.load(bad)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(UsageError, match="expected a cost model"):
        costfile.load(bad)
    bad.write_text(json.dumps({"format": costfile.FORMAT, "version": 1, "breakpoints": []}))
    with pytest.raises(UsageError, match="gamma: expected a list of 1 size segment"):
        costfile.load(bad)
    good = tmp_path / "good.json"
    costfile.save(one_segment_model(), good)
    model = costfile.load(good)
    with pytest.raises(UsageError, match="no fit for 'nccl'; it has ring"):
        costfile.predict(model, "nccl", 8, Placement.blocks(2, 1))


RATES = [
    ("25G", 25e9),
    ("400G", 400e9),
    ("100M", 100e6),
    ("1gbit", 1e9),
    ("100mbit", 100e6),
    ("10Gbps", 10e9),
]


@pytest.mark.parametrize("text, bits", RATES)
def test_parse_link_rate(text, bits):
    assert parse_link_rate(text) == bits


@pytest.mark.parametrize("text", ["", "G", "-1G", "fast", "0"])
def test_parse_link_rate_rejects(text):
    with pytest.raises(UsageError, match="expected a link rate such as 25G"):
        parse_link_rate(text)
