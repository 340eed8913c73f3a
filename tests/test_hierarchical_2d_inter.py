"""``hierarchical-2d:INTER``: the name that picks hierarchical-2d's algorithm across nodes,
in the table, on the command line (bad values: one line, exit 2), and in the simulator
against its closed form on a rail fabric where no link carries two flows."""

import subprocess

import numpy as np
import pytest

from dist_logreg.collective import algorithms as table
from dist_logreg.collective.closed_form import hierarchical_2d_coefficients
from dist_logreg.collective.schedule import traffic
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from tests.helpers import BIN

TWO_D = table.HIERARCHICAL_2D.name


@pytest.mark.parametrize("inter", table.INTER_CHOICES)
def test_the_name_picks_the_algorithm_across_nodes(inter):
    """Rank r and r + k (place r on the two nodes) exchange what ``inter`` sends on 2 ranks
    with a k-th of the payload; inside a node, the ring halves of the default."""
    name = f"{TWO_D}:{inter}"
    record = table.get(name)
    assert record.name == name and record.params == (("inter", inter),)
    assert table.get(name) is record and table.known(name) and name in table.INTER_SPELLINGS
    p, k, s = 8, 4, 4096.0
    node_of = [r // k for r in range(p)]
    got, _ = traffic(name, p, s, node_of)
    default, _ = traffic(TWO_D, p, s, node_of)
    flat, _ = traffic(inter, 2, s / k)
    for r in range(k):
        assert got[r, r + k] == pytest.approx(flat[0, 1])
        assert got[r + k, r] == pytest.approx(flat[1, 0])
    inside = np.array([[node_of[i] == node_of[j] for j in range(p)] for i in range(p)])
    np.testing.assert_allclose(got[inside], default[inside])


@pytest.mark.parametrize(
    "bad", [f"{TWO_D}:", f"{TWO_D}:hierarchical", f"{TWO_D}:ring:ring", f"{TWO_D}:Ring"]
)
def test_a_bad_inter_algorithm_names_the_spellings(bad):
    assert not table.known(bad)
    with pytest.raises(ValueError, match=f"expected {TWO_D}:ring or"):
        table.get(bad)


def test_the_closed_form_takes_the_spelled_name():
    for inter in table.INTER_CHOICES:
        spelled = hierarchical_2d_coefficients(4, 8, f"{TWO_D}:{inter}")
        assert spelled == hierarchical_2d_coefficients(4, 8, inter)
    assert hierarchical_2d_coefficients(4, 8, TWO_D) == hierarchical_2d_coefficients(4, 8)


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--allreduce", f"{TWO_D}:bogus", "--steps", "1"],
        ["train", "--allreduce", f"{TWO_D}:{table.HIERARCHICAL.name}", "--steps", "1"],
        ["bench", "--allreduce", f"{table.RING.name},{TWO_D}:bogus"],
        ["simulate", "--fabric", "flat:hosts=4", "--ranks", "4", "--algorithm", f"{TWO_D}:x"],
    ],
)
def test_a_bad_value_on_the_command_line_is_one_line_and_exit_2(command):
    r = subprocess.run(
        [str(BIN / "dist-logreg"), *command], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{TWO_D}:" in lines[0], r.stderr
    assert ("--algorithm" if command[0] == "simulate" else "--allreduce") in lines[0]


ALPHA, L, LS = 5e-6, 1e-6, 0.5e-6  # s: per message, per network hop, per scale-up hop
R, RS = 100e9 / 8, 800e9 / 8  # B/s: a NIC, a GPU's scale-up link
N = 3 << 20


@pytest.mark.parametrize("inter", table.INTER_CHOICES)
@pytest.mark.parametrize("hosts, k", [(2, 2), (3, 2), (4, 4), (5, 2)])
def test_the_simulator_is_the_closed_form_where_nothing_is_shared(inter, hosts, k):
    """One unit of a rail fabric, k GPUs and k NICs per host: the ring inside a host takes
    its GPUs' scale-up links (alpha + 2 scale-up hops + bytes at RS, one flow per link);
    across, rank j of every host talks only to rank j of another host, on rail j's leaf
    (alpha + 2 network hops + bytes at R, one flow per NIC). So the time is the closed
    form with alpha_intra = alpha + 2 LS, beta_intra = 1/RS, alpha_inter = alpha + 2 L,
    beta_inter = 1/R (hosts = 3 and 5: the fold steps of the halving algorithms)."""
    spec = (
        f"rail:hosts-per-unit={hosts},units=1,rails={k},gpus-per-host={k},spines=1,"
        "rate=100G,scaleup-rate=800G,link-latency=1us,scaleup-latency=0.5us,alpha=5us"
    )
    fab = parse_fabric(spec)
    name = f"{TWO_D}:{inter}"
    r = get_engine("flow").run(Job(fab, place(hosts * k, fab), name, N))
    c = hierarchical_2d_coefficients(k, hosts, name)
    want = (
        c["a_intra"] * (ALPHA + 2 * LS)
        + c["b_intra"] * N / RS
        + c["a_inter"] * (ALPHA + 2 * L)
        + c["b_inter"] * N / R
    )
    assert r.time_s == pytest.approx(want, rel=1e-9)
    assert r.extra["cross_leaf_bytes"] == 0.0 and r.max_flows_per_uplink <= 1


def test_simulate_reports_each_spelling_as_its_own_row():
    """The default (a ring across) and the spelled ring are the same schedule; Rabenseifner
    across 4 hosts takes 2 lg 4 = 4 steps across instead of 6: fewer alphas."""
    from dist_logreg.sim.runner import sweep

    spec = "rail:hosts-per-unit=4,rails=2,gpus-per-host=2,spines=1,alpha=50us"
    names = [TWO_D, f"{TWO_D}:{table.RING.name}", f"{TWO_D}:{table.RABENSEIFNER.name}"]
    doc = sweep(parse_fabric(spec), spec, [8], names, [1 << 10])
    got = {r["algorithm"]: r["time_s"] for r in doc["results"]}
    assert list(got) == names
    assert got[names[0]] == pytest.approx(got[names[1]], rel=1e-12)
    assert got[names[2]] < got[names[1]]
