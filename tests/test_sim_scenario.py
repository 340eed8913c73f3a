"""``simulate --scenario`` (issue 30, 2 and 5): a straggler, a degraded or failed link,
background traffic. The independent reasons: a fabric built without the failed spine, a
fabric built at the degraded rate, and the hand arithmetic of a straggler's step."""

import subprocess
import sys

import numpy as np
import pytest

from dist_logreg.collective.algorithms import RABENSEIFNER, RECURSIVE_DOUBLING, RING
from dist_logreg.errors import UsageError
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from dist_logreg.sim.runner import sweep
from dist_logreg.sim.scenario import apply_fabric, apply_workload, parse_scenario
from dist_logreg.sim.step import step_doc
from dist_logreg.sim.workload import parse_workload

ALGS = (RING.name, RABENSEIFNER.name, RECURSIVE_DOUBLING.name)
N = 16 << 20


def time_on(fab, alg, ranks=16, mode="random"):
    job = Job(fab, place(ranks, fab, 1, mode, 0), alg, N)
    return get_engine("flow").run(job).time_s


@pytest.mark.parametrize("alg", ALGS)
def test_a_failed_spine_with_spray_is_the_fabric_without_that_spine(alg):
    four = parse_fabric("leaf-spine:leaves=4,spines=4,hosts-per-leaf=4,hash=spray")
    three = parse_fabric("leaf-spine:leaves=4,spines=3,hosts-per-leaf=4,hash=spray")
    failed = apply_fabric(parse_scenario("fail:spine=1"), four)
    assert time_on(failed, alg) == pytest.approx(time_on(three, alg), rel=1e-12)
    assert time_on(failed, alg) > time_on(four, alg)  # random placement crosses the spines
    # one cable down: never faster than the whole fabric, never slower than without a spine
    one = apply_fabric(parse_scenario("fail:link=leaf0-spine1"), four)
    assert time_on(four, alg) <= time_on(one, alg) * (1 + 1e-12)
    assert time_on(one, alg) <= time_on(three, alg) * (1 + 1e-12)


def test_hashing_avoids_a_failed_cable():
    fab = parse_fabric("leaf-spine:leaves=2,spines=4,hosts-per-leaf=8,hash=l4")
    one = apply_fabric(parse_scenario("fail:link=leaf0-spine2"), fab)
    sh = fab.topology.shape
    _, up0, dn0, _, _ = sh.bases()
    a, b = np.repeat(np.arange(8), 8), np.tile(np.arange(8, 16), 8)
    m = one.route_many(a, b, np.arange(a.size))
    used = np.flatnonzero(np.asarray(m.sum(axis=0)).ravel())
    assert up0 + 0 * 4 + 2 not in used and dn0 + 1 * 4 + 2 not in used
    assert {up0 + s for s in (0, 1, 3)} <= set(used.tolist())  # the three left are used


def test_a_leaf_without_uplinks_is_an_error_naming_it():
    fab = parse_fabric("leaf-spine:leaves=4,spines=2,hosts-per-leaf=4")
    with pytest.raises(UsageError, match="leaf3 loses all its 2 uplinks"):
        apply_fabric(parse_scenario("fail:link=leaf3-spine0+leaf3-spine1"), fab)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dist_logreg",
            "simulate",
            "--fabric",
            "leaf-spine:leaves=4,spines=2,hosts-per-leaf=4",
            "--ranks",
            "16",
            "--scenario",
            "fail:link=leaf3-spine0+leaf3-spine1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "leaf3" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "scenario",
    ["degrade:factor=4,class=host-up", "background:fraction=0.75"],
)
def test_a_degraded_class_and_background_traffic_are_a_slower_fabric(scenario):
    # on one switch every link is a host link: a quarter of it is a 25G fabric
    fast = parse_fabric("flat:hosts=8,rate=100G,link-latency=1us")
    slow = parse_fabric("flat:hosts=8,rate=25G,link-latency=1us")
    fab = apply_fabric(parse_scenario(scenario), fast)
    if "class" in scenario:  # the other direction of the host's cable too
        fab = apply_fabric(parse_scenario("degrade:factor=4,class=host-down"), fab)
    for alg in ALGS:
        assert time_on(fab, alg, 8, "packed") == pytest.approx(
            time_on(slow, alg, 8, "packed"), rel=1e-12
        )


def test_a_background_permutation_loads_every_host_link_once():
    # every host sends one flow and receives one: on one switch, F of each host link
    fab = parse_fabric("flat:hosts=8,rate=100G,link-latency=1us")
    perm = apply_fabric(parse_scenario("background:permutation=0.25,seed=5"), fab)
    share = apply_fabric(parse_scenario("background:fraction=0.25"), fab)
    assert np.allclose(perm.link_rate, share.link_rate, rtol=1e-12)
    # on a leaf-spine the flows also take (hashed) uplinks, never more than they carry
    ls = parse_fabric("leaf-spine:leaves=2,spines=2,hosts-per-leaf=4")
    bg = apply_fabric(parse_scenario("background:permutation=0.25,seed=5"), ls)
    taken = ls.link_rate - bg.link_rate
    host = np.isin(ls.link_class, [0, 1])
    assert np.allclose(taken[host], 0.25 * ls.link_rate[host])
    order = np.random.default_rng(5).permutation(8)  # the scenario's cycle, drawn again
    cross = int((order // 4 != np.roll(order, -1) // 4).sum())
    # each flow that leaves its leaf takes F of a host rate on one leaf-up and one spine-down
    assert taken[~host].sum() == pytest.approx(2 * cross * 0.25 * ls.link_rate[0], rel=1e-12)


def test_a_degraded_cable_slows_only_the_flows_through_it():
    fab = parse_fabric("leaf-spine:leaves=2,spines=2,hosts-per-leaf=4,hash=spray")
    sc = parse_scenario("degrade:factor=8,link=leaf0-spine1")
    slow = apply_fabric(sc, fab)
    changed = np.flatnonzero(slow.link_rate != fab.link_rate)
    assert changed.size == 2 and np.allclose(slow.link_rate[changed] * 8, fab.link_rate[changed])
    assert time_on(slow, RING.name, 8) > time_on(fab, RING.name, 8)


def test_a_stragglers_step_waits_for_it_hand_case_at_four_ranks():
    # p = 4, ring, overlap on, each bucket's allreduce far shorter than the compute between
    # two buckets: the step is the slowest rank's compute plus the last allreduce, so a
    # straggler of factor k adds (k - 1) x compute
    fab = parse_fabric("flat:hosts=4,rate=100G")
    w = parse_workload("params=1048576,dtype=fp32,buckets=1M,forward=10ms,backward=20ms")
    res = sweep(fab, "flat", [4], [RING.name], sorted(set(w.sizes())))["results"]
    t = res[0]["time_s"]
    base = step_doc(w, res)["rows"][0]
    k = 3.0
    slow = step_doc(apply_workload(parse_scenario(f"straggler:factor={k},rank=2"), w, 4), res)
    row = slow["rows"][0]
    assert base["step_s"] == pytest.approx(0.030 + t, rel=1e-12)
    assert row["step_s"] == pytest.approx(k * 0.030 + t, rel=1e-12)
    assert row["step_s"] - base["step_s"] == pytest.approx((k - 1) * 0.030, rel=1e-9)
    with pytest.raises(UsageError, match="rank: expected a rank below 4"):
        apply_workload(parse_scenario("straggler:factor=2,rank=4"), w, 4)


def test_the_dependency_graph_delays_a_ring_by_a_late_ranks_offset():
    # p = 4 ring, rank 2 starts d late: every chain of the ring passes through rank 2's
    # first send, and the last step of some rank closes a chain of all 2(p-1) steps from
    # it: the allreduce ends exactly d later (and no later: all shifted by d is feasible)
    fab = parse_fabric("flat:hosts=4,rate=100G")
    host_of = place(4, fab)
    alone = get_engine("flow").run(Job(fab, host_of, RING.name, 1 << 20, exact=True)).time_s
    d = 0.5e-3
    late = Job(fab, host_of, RING.name, 1 << 20, exact=True, start_s=np.array([0, 0, d, 0]))
    assert get_engine("flow").run(late).time_s == pytest.approx(alone + d, rel=1e-9)


@pytest.mark.parametrize(
    "spec, words",
    [
        ("meteor", "kind: expected one of none, straggler"),
        ("straggler:factor=0", "factor: expected a number from 1 to 1e6"),
        ("straggler:factor=2,rank=x", "rank: expected a rank"),
        ("degrade:factor=2", "class|link: expected one of"),
        ("degrade:factor=2,class=warp", "class: expected one of host-up"),
        ("degrade:factor=2,link=leaf0-leaf1", "link: expected two nodes joined by a link"),
        ("fail:link=leaf0-spine9", "link: expected leafL-spineS cables"),
        ("fail:spine=7", "spine: expected a spine from 0 to 1"),
        ("background:fraction=1", "fraction: expected a number > 0 and at most 0.99"),
        ("background:share=0.5", "share: expected one of the keys fraction"),
    ],
)
def test_a_bad_scenario_is_one_line_naming_the_key_and_value(spec, words):
    fab = parse_fabric("leaf-spine:leaves=2,spines=2,hosts-per-leaf=4")
    with pytest.raises(UsageError) as err:
        apply_fabric(parse_scenario(spec), fab)
    assert f"--scenario {spec}" in str(err.value) and words in str(err.value), err.value


def test_a_flat_fabric_has_no_spine_to_fail():
    with pytest.raises(UsageError, match="fail: expected a fabric of the Clos family with spines"):
        apply_fabric(parse_scenario("fail:spine=0"), parse_fabric("flat:hosts=4"))


@pytest.mark.parametrize("spec", ["rail:hosts-per-unit=2,spines=2", "flat:hosts=4"])
def test_a_failed_cable_on_a_fabric_without_clos_spines_is_one_short_line(spec):
    """Found by a new user: the refusal dumped the whole Fabric object into the message."""
    with pytest.raises(UsageError) as err:
        apply_fabric(parse_scenario("fail:spine=1"), parse_fabric(spec))
    msg = str(err.value)
    assert "Fabric(" not in msg and len(msg) < 300 and "degrade" in msg, msg
