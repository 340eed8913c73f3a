"""``--scenario neighbour:...`` (issue 30, 2): a second job on the fabric, both jobs'
messages in one event loop. The independent reasons: jobs that share no link cannot slow
each other (a non-blocking switch); two rings through one 2:1 leaf-spine's spine links
share them max-min fairly, the rate computed by hand; a job that starts after the other
has ended runs as if alone. And, of the same issue's list, the sweep's console columns and
``--exact``'s estimate of a workload's runs."""

import json
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
from dist_logreg.sim.runner import with_neighbour
from dist_logreg.sim.scenario import apply_fabric, parse_scenario, place_neighbour
from tests.helpers import plain_python

N = 1 << 20
RATE, LAT, ALPHA = 50e9, 1e-6, 5e-6  # 400G in B/s
LEAF_SPINE = (
    "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4,oversubscription=2,hash=spray,"
    f"rate=400G,link-latency={LAT},alpha={ALPHA}"
)


def together(spec, ranks, alg, scenario, mode="packed"):
    """The ``jobs`` block of a job of ``ranks`` ranks beside the scenario's neighbour."""
    fab = parse_fabric(spec)
    job = Job(fab, place(ranks, fab, 1, mode), alg, N, exact=True)
    res = with_neighbour(job, get_engine("flow").run(job), parse_scenario(scenario))
    return res, res.extra["jobs"]


@pytest.mark.parametrize("alg", [RING.name, RABENSEIFNER.name, RECURSIVE_DOUBLING.name])
def test_jobs_on_disjoint_hosts_of_one_nonblocking_switch_do_not_slow_each_other(alg):
    res, jobs = together("flat:hosts=16,rate=100G", 8, alg, "neighbour:ranks=8")
    assert jobs["first"]["slowdown"] == 1.0 and jobs["neighbour"]["slowdown"] == 1.0
    assert res.time_s == res.extra["alone_s"] == jobs["first"]["alone_s"]
    assert jobs["first"]["hosts"] == jobs["neighbour"]["hosts"] == 8


def test_two_rings_through_a_2_to_1_leaf_spine_share_its_spine_links_by_hand():
    # each job: 4 ranks spread over the 2 leaves, so every ring message crosses the spines.
    # Leaf uplinks: 2 spines x 400G = 800G = 4 hosts x 400G / 2. Alone, 2 flows leave each
    # leaf, sprayed half over each spine link: 1 flow's weight per link, each flow at its
    # NIC's 50 GB/s. Together 4 flows: 2 per spine link, 400G / 2 = 25 GB/s each. The ring's
    # 2(p-1) = 6 steps each move N/4 bytes over 4 hops (host, leaf-up, spine-down, host).
    x = N / 4
    alone = 6 * (ALPHA + x / RATE + 4 * LAT)
    both = 6 * (ALPHA + x / (RATE / 2) + 4 * LAT)
    res, jobs = together(LEAF_SPINE, 4, RING.name, "neighbour:ranks=4,placement=spread", "spread")
    for name in ("first", "neighbour"):
        assert jobs[name]["alone_s"] == pytest.approx(alone, rel=1e-9)
        assert jobs[name]["together_s"] == pytest.approx(both, rel=1e-9)
        assert jobs[name]["slowdown"] == pytest.approx(both / alone, rel=1e-9)
    assert res.time_s == pytest.approx(both, rel=1e-9)
    # packed, each job under its own leaf: no flow crosses the spines, nothing shared
    _, jobs = together(LEAF_SPINE, 4, RING.name, "neighbour:ranks=4")
    assert jobs["first"]["slowdown"] == jobs["neighbour"]["slowdown"] == 1.0


def test_a_neighbour_that_starts_after_the_first_job_ends_slows_nothing():
    _, jobs = together(LEAF_SPINE, 4, RING.name, "neighbour:ranks=4,placement=spread", "spread")
    start = 2 * jobs["first"]["alone_s"]
    _, late = together(
        LEAF_SPINE, 4, RING.name, f"neighbour:ranks=4,placement=spread,start={start}", "spread"
    )
    assert late["neighbour"]["start_s"] == start
    for name in ("first", "neighbour"):
        assert late[name]["slowdown"] == pytest.approx(1.0, rel=1e-12)
        assert late[name]["alone_s"] == pytest.approx(jobs[name]["alone_s"], rel=1e-12)


def test_the_neighbour_sits_on_hosts_the_first_job_does_not_use():
    fab = parse_fabric("leaf-spine:leaves=2,spines=2,hosts-per-leaf=4")
    first = place(3, fab)
    for mode in ("packed", "spread", "random"):
        other = place_neighbour(parse_scenario(f"neighbour:ranks=5,placement={mode}"), fab, first)
        assert other.size == 5 and not np.isin(other, first).any(), mode
    with pytest.raises(UsageError) as err:
        place_neighbour(parse_scenario("neighbour:ranks=6"), fab, first)
    msg = str(err.value)
    assert "6 ranks" in msg and "8 hosts" in msg and "leaving 5" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "spec, words",
    [
        ("neighbour:placement=packed", "ranks: expected a whole number"),
        ("neighbour:ranks=2,placement=near", "placement: expected one of packed"),
        ("neighbour:ranks=2,algorithm=magic", "algorithm: expected an algorithm"),
        ("neighbour:ranks=2,start=-1", "start"),
        ("neighbour:ranks=2,size=1M", "size: expected one of the keys"),
    ],
)
def test_a_bad_neighbour_is_one_line_naming_the_key(spec, words):
    with pytest.raises(UsageError) as err:
        parse_scenario(spec)
    assert f"--scenario {spec}" in str(err.value) and words in str(err.value), err.value


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dist_logreg", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


BASE = ("--fabric", LEAF_SPINE, "--ranks", "4", "--placement", "spread", "--algorithm", "ring")
SCEN = ("--bytes", "1M", "--scenario", "neighbour:ranks=4,placement=spread")


def test_the_command_names_each_job_and_the_phase_synchronous_engine_refuses():
    out = cli(*BASE, *SCEN)
    assert out.returncode == 2 and "add --exact" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = cli(*BASE, *SCEN, "--exact", "--json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)["results"][0]
    assert set(row["jobs"]) == {"first", "neighbour"} and row["jobs"]["neighbour"]["start_s"] == 0
    assert row["slowdown"] == pytest.approx(row["time_s"] / row["alone_s"], rel=1e-12)
    text = cli(*BASE, *SCEN, "--exact").stdout
    assert "first job" in text and "neighbour job" in text and "slowdown" in text


# background:permutation on the rail family (a neighbour's traffic as constant flows): a
# rail fabric's links to the fabric are NICs, not GPUs. Routed per GPU, several GPUs' flows
# left one NIC through PXN (1.5 x its rate at F = 0.5) and the NIC sat at the 1% floor.
@pytest.mark.parametrize("f", [0.5, 0.9])
def test_a_permutation_on_a_rail_fabric_leaves_each_link_its_hand_count(f):
    # 2 hosts, one per unit, 8 rails: the cycle is 0 -> 1 -> 0 whatever the seed. Every NIC
    # sends one flow of f x R to its rail's NIC on the other host and receives one: its up
    # and down links keep (1 - f) R. Each flow crosses its rail's leaf in one unit, sprayed
    # over the 2 spines: each leaf uplink (and spine downlink) carries f R / 2 of its R / 2.
    # Nothing crosses the scale-up switch (same rail: no PXN relay).
    spec = "rail:hosts-per-unit=1,units=2,spines=2,hash=spray"
    fab = parse_fabric(spec)
    kept = apply_fabric(parse_scenario(f"background:permutation={f},seed=3"), fab).link_rate
    nic = fab.link_rate[fab.topology.endpoint_up][0]
    carried = {"nic-up": f * nic, "nic-down": f * nic, "leaf-up": f * nic / 2}
    carried["spine-down"] = carried["leaf-up"]
    for c, name in enumerate(fab.class_names):
        mine = fab.link_class == c
        want = fab.link_rate[mine] - carried.get(name, 0.0)  # scale-up links: untouched
        assert kept[mine] == pytest.approx(want, rel=1e-12), name
        assert np.all(want > 0.01 * fab.link_rate[mine]), name  # nothing at the floor


@pytest.mark.parametrize(
    "spec", ["rail:hosts-per-unit=4,spines=2", "tor:hosts-per-unit=8,spines=2", "superpod-h100"]
)
def test_a_permutation_on_the_rail_family_floors_no_nic(spec):
    fab = parse_fabric(spec)
    kept = apply_fabric(parse_scenario("background:permutation=0.5"), fab).link_rate
    for name in ("nic-up", "nic-down"):
        mine = fab.link_class == fab.class_names.index(name)
        assert kept[mine] == pytest.approx(0.5 * fab.link_rate[mine], rel=1e-12), name
    # (a hashed uplink may still meet several flows and reach the floor: ECMP collisions)


def test_a_sweep_table_has_fabric_and_placement_columns_when_they_vary(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'fabric = ["flat:hosts=8,rate=100G", "leaf-spine:leaves=2,spines=1,hosts-per-leaf=4"]\n'
        'ranks = [4]\nalgorithm = ["ring"]\nbytes = ["1M"]\nplacement = ["packed", "spread"]\n'
    )
    out = cli("--sweep", str(grid))
    assert out.returncode == 0, out.stderr
    text = out.stdout.splitlines()
    head = next(i for i, line in enumerate(text) if "algorithm" in line and "ranks" in line)
    assert text[head].split()[:3] == ["fabric", "placement", "algorithm"]
    rows = [line.split()[:3] for line in text[head + 1 : head + 5]]
    assert rows == [
        ["F1", "packed", "ring"],
        ["F1", "spread", "ring"],
        ["F2", "packed", "ring"],
        ["F2", "spread", "ring"],
    ]
    assert "F2 = leaf-spine:leaves=2,spines=1,hosts-per-leaf=4" in text
    # one axis: no extra column
    grid.write_text('fabric = "flat:hosts=8"\nranks = [2, 4]\nalgorithm = "ring"\nbytes = "1M"\n')
    out = cli("--sweep", str(grid))
    assert any(line.startswith("algorithm ") for line in out.stdout.splitlines()), out.stdout


def test_the_exact_estimate_counts_the_workloads_buckets_not_bytes(tmp_path):
    # a ring at 16384 ranks: 2(p-1) x p messages per run, about 1074 s each at 2 us a
    # message (more without numba): 4 distinct bucket sizes are over the 3600 s limit,
    # the one --bytes size was not (the estimate counted --bytes: it would have run)
    work = tmp_path / "w.json"
    work.write_text(json.dumps({"bucket-sizes": ["1M", "2M", "3M", "4M"], "forward": "1ms"}))
    args = ("--fabric", "flat:hosts=16384", "--ranks", "16384", "--algorithm", "ring")
    out = cli(*args, "--exact", "--workload", str(work))  # --bytes: refused with it (J-M2)
    assert out.returncode == 2, out.stderr
    assert "4 size(s)" in out.stderr and "expected at most 3600 s" in out.stderr, out.stderr


CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from dist_logreg.sim import jit
assert not jit.AVAILABLE, "DIST_LOGREG_NO_JIT=1 left numba on"
import test_sim_neighbour as t
res, jobs = t.together(t.LEAF_SPINE, 4, "ring", "neighbour:ranks=4,placement=spread", "spread")
print(json.dumps(jobs))
"""


def test_two_jobs_in_plain_python_give_the_compiled_numbers():
    plain = plain_python(CHILD)
    _, jobs = together(LEAF_SPINE, 4, RING.name, "neighbour:ranks=4,placement=spread", "spread")
    for name in ("first", "neighbour"):
        for key in ("alone_s", "together_s"):
            assert plain[name][key] == pytest.approx(jobs[name][key], rel=1e-12), (name, key)
