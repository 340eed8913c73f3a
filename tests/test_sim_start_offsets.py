"""``Job.start_s`` in ``--exact`` (issue 30, 2 and 5): rank r's first sends start at its
offset, and a message from r waits for r's start. The independent reasons: closed forms of
a 2-rank exchange with one late rank (eager: the early rank's message is not held back;
rendezvous: it waits for the late receiver to post), and a shift of every rank by the same
offset, which shifts every event by it. Both paths of the loop: compiled by numba here,
plain Python in a child process (``DIST_LOGREG_NO_JIT=1``), the same numbers."""

import numpy as np
import pytest

from dist_logreg.collective.algorithms import RABENSEIFNER, RECURSIVE_DOUBLING, RING
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from tests.helpers import plain_python

N = 1 << 20
RATE = 12.5e9  # 100G in B/s
LAT, ALPHA, GAMMA = 1e-6, 5e-6, 1e-11
FLAT2 = f"flat:hosts=2,rate=100G,link-latency={LAT},alpha={ALPHA},gamma={GAMMA}"
EAGER, RDV = {"eager_limit": "inf"}, {"eager_limit": "64K"}


def run(spec, alg, ranks, start, options):
    """(time_s, per-message arrivals) of one exact job."""
    fab = parse_fabric(spec)
    job = Job(fab, place(ranks, fab), alg, N, exact=True, options=dict(options))
    job.start_s = None if start is None else np.asarray(start, dtype=float)
    r = get_engine("flow").run(job)
    return r.time_s, np.asarray(r.messages).tolist()


CASES = [  # (fabric, algorithm, ranks, start offsets, options)
    (FLAT2, RECURSIVE_DOUBLING.name, 2, None, EAGER),
    (FLAT2, RECURSIVE_DOUBLING.name, 2, [0.0, 3e-4], EAGER),
    (FLAT2, RECURSIVE_DOUBLING.name, 2, [0.0, 3e-4], RDV),
    ("leaf-spine:leaves=2,spines=1,hosts-per-leaf=4", RING.name, 8, [2e-4] * 8, RDV),
    (
        "leaf-spine:leaves=2,spines=1,hosts-per-leaf=4",
        RABENSEIFNER.name,
        8,
        [0.0, 0, 0, 1e-4, 0, 0, 0, 0],
        EAGER,
    ),
]


def test_a_2_rank_exchange_with_one_late_rank_is_its_closed_form():
    # recursive doubling at p = 2: one exchange of N bytes each way, each on its own
    # links (0's up, 1's down and back): nothing shared. Rank 1 starts d late.
    d = 3e-4
    one = ALPHA + N / RATE + 2 * LAT  # start, bytes at the link's rate, two hops
    alone, _ = run(FLAT2, RECURSIVE_DOUBLING.name, 2, None, EAGER)
    assert alone == pytest.approx(one + GAMMA * N, rel=1e-9)
    # eager: rank 0's message leaves at alpha and arrives as if alone; rank 1's d later
    t, arr = run(FLAT2, RECURSIVE_DOUBLING.name, 2, [0.0, d], EAGER)
    assert sorted(arr) == pytest.approx([one, d + one], rel=1e-9)
    assert t == pytest.approx(d + one + GAMMA * N, rel=1e-9)
    # rendezvous (1 MiB > 64 KiB): rank 0's message waits for rank 1 to post its receive
    t, arr = run(FLAT2, RECURSIVE_DOUBLING.name, 2, [0.0, d], RDV)
    assert arr == pytest.approx([d + one, d + one], rel=1e-9)
    assert t == pytest.approx(d + one + GAMMA * N, rel=1e-9)


@pytest.mark.parametrize("alg", [RING.name, RABENSEIFNER.name, RECURSIVE_DOUBLING.name])
@pytest.mark.parametrize("options", [EAGER, RDV], ids=["eager", "rendezvous"])
def test_every_rank_late_by_the_same_offset_shifts_the_whole_allreduce(alg, options):
    # every dependency and every start moves by c: so does every event, sharing included
    # (a 2:1 leaf-spine, 8 ranks over both leaves: flows share the spine links)
    spec, c = "leaf-spine:leaves=2,spines=1,hosts-per-leaf=4", 2e-4
    t0, a0 = run(spec, alg, 8, None, options)
    t1, a1 = run(spec, alg, 8, [c] * 8, options)
    assert t1 == pytest.approx(t0 + c, rel=1e-9)
    assert np.allclose(np.asarray(a1), np.asarray(a0) + c, rtol=1e-9, atol=0)


def test_offsets_of_wrong_length_are_refused():
    fab = parse_fabric(FLAT2)
    job = Job(fab, place(2, fab), RING.name, N, exact=True, start_s=np.zeros(3))
    with pytest.raises(ValueError, match="expected 2 finite offsets"):
        get_engine("flow").run(job)


CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from dist_logreg.sim import jit
assert not jit.AVAILABLE, "DIST_LOGREG_NO_JIT=1 left numba on"
import test_sim_start_offsets as t
print(json.dumps([t.run(*c) for c in t.CASES]))
"""


def test_numba_and_plain_python_give_the_same_numbers():
    pytest.importorskip("numba")
    plain = plain_python(CHILD)
    for case, (t, arr) in zip(CASES, plain, strict=True):
        tj, aj = run(*case)
        assert t == pytest.approx(tj, rel=1e-12), case
        assert np.allclose(arr, aj, rtol=1e-12, atol=0), case
