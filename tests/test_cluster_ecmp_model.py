"""The balls-into-bins model behind benchmarks/bench_ecmp.py, checked by hand."""

import numpy as np
import pytest

from dist_logreg.collective.ecmp import Fabric, predict, schedule


@pytest.mark.parametrize("p", [2, 4, 8])
def test_schedules_send_what_the_cost_models_say(p):
    size = 1.0
    expected = {  # bytes each rank sends per allreduce (docs/design.md's cost models)
        "ring": 2 * (p - 1) / p * size,
        "recursive-doubling": np.log2(p) * size,
        "rabenseifner": 2 * (p - 1) / p * size,
    }
    for alg, total in expected.items():
        steps = schedule(alg, p, size)
        for r in range(p):
            sent = sum(n for step in steps for a, _, n in step if a == r)
            assert sent == pytest.approx(total), (alg, r)
        for step in steps:  # every rank sends once per step, never to itself
            assert sorted(a for a, _, _ in step) == list(range(p))
            assert all(a != b for a, b, _ in step)


def test_a_single_flow_per_pair_collides_three_times_in_four():
    """Recursive doubling at 4 ranks, 2 per leaf: at distance 2, two flows leave each leaf.
    Each leaf puts both on one spine with probability 1/2, and the two leaves decide
    independently: P(some collision) = 1 - (1/2)^2."""
    m = predict("recursive-doubling", 1, "l4")
    assert m["exact"] and m["flows"] == 4
    assert m["collision"] == pytest.approx(0.75)
    # Balanced: 2 steps of S at the link rate -> busbw = 1.5 S / 2 S = 0.75. Collided: the
    # distance-2 step pushes 2 S through one uplink: 1.5 S / 3 S = 0.5.
    assert m["ideal"] == pytest.approx(0.75)
    values, counts = np.unique(np.round(m["busbw"], 9), return_counts=True)
    assert dict(zip(values, counts / counts.sum(), strict=True)) == {0.5: 0.75, 0.75: 0.25}


def test_l3_hashes_every_connection_of_a_pair_together():
    one, four = predict("recursive-doubling", 1, "l3"), predict("recursive-doubling", 4, "l3")
    # symmetric: 0<->2 and 1<->3 each take one spine both ways, so the leaves collide
    # together: P = 1/2, not 1 - (1/2)^2
    assert one["collision"] == pytest.approx(0.5)
    assert four["collision"] == pytest.approx(one["collision"])
    assert np.median(four["busbw"]) == pytest.approx(np.median(one["busbw"]))


def test_more_flows_per_pair_spread_the_load_under_l4():
    m = predict("recursive-doubling", 4, "l4")
    # a collision needs all 8 flows leaving a leaf on one spine: 2 / 2^8, at either leaf
    assert m["collision"] == pytest.approx(1 - (1 - 2 / 2**8) ** 2)
    assert np.median(m["busbw"]) > np.median(predict("recursive-doubling", 1, "l4")["busbw"])


def test_the_ring_never_shares_an_uplink_between_pairs_here():
    for k in (1, 2, 4):
        m = predict("ring", k, "l4")
        assert m["collision"] == 0 and np.all(m["busbw"] == pytest.approx(1.0))


def test_a_fabric_spreads_hosts_evenly():
    assert [Fabric(hosts=6, leaves=3).leaf(h) for h in range(6)] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="power of two"):
        schedule("rabenseifner", 6, 1.0)
