"""``simulate``'s numbers on the benchmark fabrics, held against the closed forms.

Where nothing is shared (one switch; a leaf-spine or fat tree that is non-blocking and
sprays every flow over every equal-cost path, so no link carries more than its rate), each
step of an algorithm takes ``alpha + hops x link-latency + bytes / rate + reduced bytes x
gamma``: the whole allreduce is the Hockney closed form of
:mod:`dist_logreg.collective.closed_form` plus the hop latency of each step, counted here by
hand from where the step's partners sit. The independent reason is the closed form, not an
earlier run: these numbers held before the topology seam and must hold after it.
"""

import pytest

from dist_logreg.collective.closed_form import model_time
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.runner import sweep

RING, RD, RAB = "ring", "recursive-doubling", "rabenseifner"
N = 3 << 20  # payload bytes per rank
P = 16  # ranks, one per host, packed: rank r on host r
ALPHA, L, BETA, GAMMA = 5e-6, 1e-6, 8 / 100e9, 1 / 20e9
COMMON = "rate=100G,link-latency=1us,alpha=5us,reduce-rate=20GB/s"

#: fabric -> hops of a message between ranks at each distance of recursive doubling
#: (1, 2, 4, 8) and the most hops of a ring step (its neighbours, the wrap-around included)
FABRICS = {
    f"flat:hosts={P},{COMMON}": ([2, 2, 2, 2], 2),
    # 4 hosts under each leaf: distances 1, 2 stay in a leaf; 4 spines at the host rate
    f"leaf-spine:leaves=4,spines=4,hosts-per-leaf=4,hash=spray,{COMMON}": ([2, 2, 4, 4], 4),
    # k=4: 2 hosts per leaf, 2 leaves per pod: distance 2 crosses leaves, 4 and 8 pods
    f"fat-tree:k=4,hash=spray,{COMMON}": ([2, 4, 6, 6], 6),
}


def time_of(spec: str, alg: str) -> float:
    doc = sweep(parse_fabric(spec), spec, [P], [alg], [N])
    return doc["results"][0]["time_s"]


@pytest.mark.parametrize("spec", FABRICS)
def test_ring_is_its_closed_form_with_the_farthest_neighbour_latency(spec):
    # every one of the 2(p-1) steps waits for its farthest message: alpha + hops x L each
    hops = FABRICS[spec][1]
    want = model_time(RING, N, P, ALPHA + hops * L, BETA, GAMMA)
    assert time_of(spec, RING) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("spec", FABRICS)
def test_recursive_doubling_is_its_closed_form_with_each_distances_latency(spec):
    # lg p steps of the whole buffer, one per distance
    hops = FABRICS[spec][0]
    want = model_time(RD, N, P, ALPHA, BETA, GAMMA) + sum(hops) * L
    assert time_of(spec, RD) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("spec", FABRICS)
def test_rabenseifner_is_its_closed_form_with_each_distance_twice(spec):
    # halving visits every distance once, doubling once more, whatever the order
    hops = FABRICS[spec][0]
    want = model_time(RAB, N, P, ALPHA, BETA, GAMMA) + 2 * sum(hops) * L
    assert time_of(spec, RAB) == pytest.approx(want, rel=1e-9)


def test_the_closed_forms_say_what_the_tests_assume():
    # ring: 2(p-1) steps of n/p; recursive doubling: lg p steps of n, each reduced
    assert model_time(RING, N, P, 1.0, 0.0) == 2 * (P - 1)
    assert model_time(RING, N, P, 0.0, 1.0) == pytest.approx(2 * (P - 1) * N / P)
    assert model_time(RD, N, P, 1.0, 1.0, 1.0) == pytest.approx(4 + 4 * N + 4 * N)
