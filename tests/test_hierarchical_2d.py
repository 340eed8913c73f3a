"""hierarchical-2d without MPI: its sums, its traffic against its schedule, its schedule's
critical path against its closed form, and the simulator's time worked by hand.

The ranks run for real, one thread per rank, on the in-process communicator of
``tests/test_cost_formulas.py``.
"""

import threading

import numpy as np
import pytest

from dist_logreg.collective import algorithms as table
from dist_logreg.collective.closed_form import coefficients, hierarchical_2d_coefficients
from dist_logreg.collective.schedule import Placement, shape, traffic
from dist_logreg.comm.hierarchical_2d import INTER, Hierarchical2D
from dist_logreg.comm.links import Scratch, Traffic
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.runner import sweep
from tests.test_cost_formulas import COUNT, Mailbox, counted, link, run_ranks, totals

NAME = table.HIERARCHICAL_2D.name


def make(box: Mailbox, p: int, k: int, r: int, t: Traffic, inter: str) -> Hierarchical2D:
    """Rank ``r``'s hierarchical-2d on nodes of ``k`` consecutive ranks (the last one
    smaller when ``k`` does not divide ``p``: then the flat fallback), as its constructor
    would build it."""
    node_of = [m // k for m in range(p)]
    h = Hierarchical2D.__new__(Hierarchical2D)
    h.inter, h._scratch, h.node_of = INTER[inter], Scratch(), node_of
    if len({node_of.count(v) for v in node_of}) > 1:  # nodes of different sizes
        h.fallback = "uneven"
        h._flat = link(box, "world", list(range(p)), r, t)
        return h
    h.fallback = ""
    node = [m for m in range(p) if node_of[m] == node_of[r]]
    rail = [m for m in range(p) if m % k == r % k]
    h._node = link(box, f"node{node_of[r]}", node, node.index(r), t)
    h._rail = link(box, f"rail{r % k}", rail, rail.index(r), t)
    return h


@pytest.mark.parametrize("inter", table.INTER_CHOICES)
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("p", range(2, 10))
def test_it_sums_and_sends_what_the_schedule_says(p, k, inter):
    """Nodes of k ranks; where k does not divide p, the fallback (inter over all ranks)."""
    box = Mailbox()
    tr, _ = run_ranks(p, lambda r, t, buf: make(box, p, k, r, t, inter).allreduce(buf))
    nbytes, messages = counted(tr)
    record = table.variant(inter, "h2d-under-test")
    assert record.params == (("inter", inter),)
    with table.registered(record):
        want_bytes, want_messages = traffic(record.name, p, COUNT * 8, [m // k for m in range(p)])
    np.testing.assert_allclose(nbytes, want_bytes)
    np.testing.assert_array_equal(messages, want_messages)


@pytest.mark.parametrize("k, p", [(2, 4), (3, 9), (4, 8), (2, 6)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_any_count_is_the_exact_sum_with_the_same_bits_everywhere(k, p, dtype):
    """1 to 1001 elements: fewer than the ranks of a node, and not divisible by it."""
    for count in [1, 2, 3, 5, 7, 64, 997, 1001]:
        rng = np.random.default_rng(count)
        xs = [rng.standard_normal(count).astype(dtype) for _ in range(p)]
        want = np.sum(np.array(xs, dtype=np.float64), axis=0)
        box, out = Mailbox(), [x.copy() for x in xs]
        threads = [
            threading.Thread(
                target=lambda r, box=box, out=out: make(box, p, k, r, Traffic(p), "ring").allreduce(
                    out[r]
                ),
                args=(r,),
            )
            for r in range(p)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        tol = 1e-5 if dtype == "float32" else 1e-12
        for r in range(p):
            np.testing.assert_allclose(out[r], want, rtol=tol, atol=tol)
            assert out[r].tobytes() == out[0].tobytes(), (count, r)


def test_inside_a_node_and_across_rails_by_hand():
    """p = 8, k = 4, S = 2520 x 8 bytes: each rank sends 2(k-1)/k S = 1.5 S to the next rank
    of its node and 2(H-1)/H x S/k = S/4 to its rail partner on the other node, nothing to
    the other ranks of that node."""
    p, k, s = 8, 4, COUNT * 8
    nbytes, _ = traffic(NAME, p, s, [r // k for r in range(p)])
    for r in range(p):
        nxt = (r // k) * k + (r + 1) % k
        assert nbytes[r, nxt] == pytest.approx(1.5 * s)
        assert nbytes[r, (r + k) % p] == pytest.approx(s / 4)
        assert np.count_nonzero(nbytes[r]) == 2


@pytest.mark.parametrize("inter", table.INTER_CHOICES)
@pytest.mark.parametrize("k, hosts", [(2, 2), (4, 4), (3, 8), (8, 2), (1, 4), (4, 1)])
def test_the_steps_are_its_closed_form(k, hosts, inter):
    """One NIC per host (Placement.blocks): the k rails share it, so b_inter is inter's
    coefficient on the whole payload; the intra steps are the ring halves on n/k chunks."""
    with table.registered(table.variant(inter, "h2d-under-test")):
        steps = shape("h2d-under-test", Placement.blocks(k * hosts, k))
    intra = totals([s for s in steps if not s.inter])
    inter_ = totals([s for s in steps if s.inter])
    want = hierarchical_2d_coefficients(k, hosts, inter, nics_per_node=1)
    assert intra[:2] == pytest.approx((want["a_intra"], want["b_intra"]))
    assert inter_[:2] == pytest.approx((want["a_inter"], want["b_inter"]))
    assert intra[2] + inter_[2] == pytest.approx(want["c"])
    per_rail = hierarchical_2d_coefficients(k, hosts, inter)  # one NIC per rank
    assert per_rail["b_inter"] * k == pytest.approx(want["b_inter"])


def test_with_a_ring_across_every_element_is_reduced_p_minus_one_times():
    for k, h in [(2, 3), (4, 4), (8, 16)]:
        c = hierarchical_2d_coefficients(k, h)["c"]
        assert c == pytest.approx(coefficients("ring", k * h)[2])


def test_the_simulator_on_a_flat_fabric_by_hand():
    """4 hosts x 4 ranks, one switch, 100G links, host-rate 800G (100 GB/s), alpha 5 us,
    link latency 1 us, S = 1 MiB. Inside a host no link is touched: 3 reduce-scatter and 3
    allgather steps of S/4 at 100 GB/s, 5 + 2.62144 us each. Across: a ring of 4 hosts on
    each rail's S/4, 6 steps of S/16 per flow, the 4 rails' flows sharing the host's one
    link: 5 + 2 x 1 + 4 x 65536 B / 12.5 GB/s = 7 + 20.97152 us each. Total
    6 x 7.62144 + 6 x 27.97152 = 213.55776 us."""
    spec = "flat:hosts=4,rate=100G,link-latency=1us,alpha=5us,host-rate=800G"
    doc = sweep(parse_fabric(spec), spec, [16], [NAME], [1 << 20], per_host=4)
    want = 6 * (5e-6 + (1 << 18) / 100e9) + 6 * (7e-6 + 4 * (1 << 16) / 12.5e9)
    assert want == pytest.approx(213.55776e-6, rel=1e-12)
    assert doc["results"][0]["time_s"] == pytest.approx(want, rel=1e-9)


def test_an_unknown_inter_algorithm_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="expected inter one of"):
        table.variant("hierarchical")
