"""Rabenseifner's two distance orders: the same closed form, different fabrics' times.

``rabenseifner`` halves at distance 1 first and doubles back from ``p'/2`` (MPICH's order,
SMPI's ``rab_rdb``); ``rabenseifner-far`` halves at ``p'/2`` first and doubles from 1 (the
order this project had before). Both run for real and send what their schedules say
(``tests/test_cost_formulas.py`` holds every flat algorithm of the table). The independent
check of the leaf-spine numbers is SimGrid 3.32, which gave the same two times on the same
fabric (the project's simulation notes).
"""

import threading

import numpy as np
import pytest

from dist_logreg.collective import algorithms as table
from dist_logreg.collective import schedule
from dist_logreg.comm.links import Scratch, Traffic
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.runner import sweep
from tests.test_cost_formulas import Mailbox, link

NEAR, FAR = table.RABENSEIFNER.name, table.RABENSEIFNER_FAR.name
LEAF_SPINE = (
    "leaf-spine:leaves=4,spines=1,hosts-per-leaf=4,oversubscription=4,rate=100G,"
    "alpha=5us,link-latency=1us"
)


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_the_large_halves_go_to_the_nearest_rank_in_the_default_order(p):
    near, _ = schedule.traffic(NEAR, p, 1.0)
    far, _ = schedule.traffic(FAR, p, 1.0)
    for r in range(p):  # half the payload each way, twice (halving, doubling): 1.0 in all
        assert near[r, r ^ 1] == pytest.approx(1.0)
        assert far[r, r ^ (p // 2)] == pytest.approx(1.0)
    # the same bytes per rank, the same messages: only who gets which size differs
    np.testing.assert_allclose(near.sum(axis=1), far.sum(axis=1))
    assert table.RABENSEIFNER.closed_form(p) == table.RABENSEIFNER_FAR.closed_form(p)


def _reduce(name: str, xs: list[np.ndarray]) -> list[np.ndarray]:
    p, fn, box = len(xs), table.get(name).runner_class().algorithm, Mailbox()
    out = [x.copy() for x in xs]
    threads = [
        threading.Thread(
            target=lambda r: fn(link(box, "w", list(range(p)), r, Traffic(p)), out[r], Scratch()),
            args=(r,),
        )
        for r in range(p)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return out


def test_each_order_sums_in_its_own_order():
    """At 4 ranks every element is summed pairwise: distance 1 first gives
    ``(x0 + x1) + (x2 + x3)``, distance 2 first ``(x0 + x2) + (x1 + x3)`` (each chunk's
    owner adds what its partner holds; IEEE addition commutes, so the owner does not
    matter). With 1e16 and 1 (the spacing of doubles at 1e16 is 2) the two orders differ:
    this is the summation order the default changed, and why the invariance tests compare
    trajectories to a tolerance, not bit for bit."""
    a = np.array([1e16, 1.0, -1e16, 1.0])
    xs = [np.full(8, v) for v in a]
    near_want = (a[0] + a[1]) + (a[2] + a[3])
    far_want = (a[0] + a[2]) + (a[1] + a[3])
    assert near_want != far_want and far_want == 2.0  # the far order happens to be exact here
    for x in _reduce(NEAR, xs):
        assert np.all(x == near_want)
    for x in _reduce(FAR, xs):
        assert np.all(x == far_want)


def _time(alg: str) -> float:
    doc = sweep(parse_fabric(LEAF_SPINE), LEAF_SPINE, [16], [alg], [1 << 20])
    return doc["results"][0]["time_s"]


def test_the_orders_on_a_packed_4x4_leaf_spine_at_4_to_1_by_hand():
    """16 ranks, one per host, packed: hosts 0-3 under leaf 0, 4-7 under leaf 1, ... One
    spine; each leaf's uplink is 4 x 100G / 4 = 100 Gb/s (12.5 GB/s, as a host link).

    A step costs ``alpha + hops x 1 us + its bottleneck``: ``alpha`` 5 us; 2 hops inside a
    leaf (host-leaf-host), 4 across (host-leaf-spine-leaf-host). Distances 1 and 2 stay
    inside a leaf: each flow alone on its host link, ``bytes / 12.5 GB/s``. Distances 4 and
    8 cross: all 4 hosts of a leaf send to the same other leaf at once, so 4 flows share the
    one uplink (and the spine's one downlink): ``4 x bytes / 12.5 GB/s``. With ``S = 1 MiB``,
    ``S / 12.5 GB/s = 83.88608 us``; the halving and the doubling visit the same distances
    with the same sizes, so each order's time is twice its halving:

    - distance 1 first: d=1, S/2, in leaf: 5 + 2 + 41.94304 = 48.94304; d=2, S/4: 5 + 2 +
      20.97152 = 27.97152; d=4, S/8 across: 5 + 4 + 4 x 10.48576 = 50.94304; d=8, S/16
      across: 5 + 4 + 4 x 5.24288 = 29.97152. Sum 157.82912, twice: 315.65824 us.
    - distance p/2 first: d=8, S/2 across: 5 + 4 + 4 x 41.94304 = 176.77216; d=4, S/4
      across: 5 + 4 + 4 x 20.97152 = 92.88608; d=2, S/8: 5 + 2 + 10.48576 = 17.48576; d=1,
      S/16: 5 + 2 + 5.24288 = 12.24288. Sum 299.38688, twice: 598.77376 us.

    SimGrid 3.32 gave 315.66 and 598.77 us on the same fabric (the notes' numbers).
    """
    s_over_b = (1 << 20) / 12.5e9
    halves = [1 / 2, 1 / 4, 1 / 8, 1 / 16]
    near = 2 * sum(
        5e-6 + h + (4 if d >= 4 else 1) * f * s_over_b
        for d, f, h in zip([1, 2, 4, 8], halves, [2e-6, 2e-6, 4e-6, 4e-6], strict=True)
    )
    far = 2 * sum(
        5e-6 + h + (4 if d >= 4 else 1) * f * s_over_b
        for d, f, h in zip([8, 4, 2, 1], halves, [4e-6, 4e-6, 2e-6, 2e-6], strict=True)
    )
    assert near == pytest.approx(315.65824e-6, rel=1e-12)
    assert far == pytest.approx(598.77376e-6, rel=1e-12)
    assert _time(NEAR) == pytest.approx(near, rel=1e-9)
    assert _time(FAR) == pytest.approx(far, rel=1e-9)
    assert round(_time(NEAR) * 1e6, 2) == 315.66 and round(_time(FAR) * 1e6, 2) == 598.77
