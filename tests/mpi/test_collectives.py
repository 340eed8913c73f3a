"""Reduce-scatter, allgather, broadcast and alltoall (ours and the MPI library's), and the
bench's record and check for each, against numpy oracles computed from size and rank."""

import numpy as np
import pytest

from dist_logreg.bench.sweep import measure
from dist_logreg.collective import algorithms as table
from dist_logreg.collective import schedule
from dist_logreg.collective.algorithms import IMPLEMENTATIONS
from dist_logreg.comm.collectives import make_collective
from dist_logreg.comm.links import bounds
from tests.mpi.conftest import collective_assert

#: Element counts: fewer than ranks, not divisible by 2 or 3, divisible, larger.
COUNTS = [1, 2, 5, 7, 12, 1001]


def _rank_data(n, rank, dtype):
    """What rank ``rank`` holds: distinct per rank and element, exact in float32."""
    return ((np.arange(n) * 7 + 3 * rank) % 29 + 1).astype(dtype) * (rank + 1)


@pytest.mark.mpi
@pytest.mark.parametrize("name", IMPLEMENTATIONS["reduce-scatter"])
@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_reduce_scatter_matches_the_sum_of_every_rank(comm, name, n, dtype):
    p, r = comm.Get_size(), comm.Get_rank()
    total = sum(_rank_data(n, k, dtype) for k in range(p))  # the oracle: every rank's data
    b = bounds(n, p)
    buf = _rank_data(n, r, dtype)
    impl = make_collective("reduce-scatter", name, comm)
    out = buf[b[r] : b[r + 1]] if impl.in_place else np.empty(b[r + 1] - b[r], dtype=dtype)
    impl.bind(buf, out)()
    collective_assert(comm, np.array_equal(out, total[b[r] : b[r + 1]]), f"{name} n={n}")


@pytest.mark.mpi
@pytest.mark.parametrize("name", IMPLEMENTATIONS["allgather"])
@pytest.mark.parametrize("n", COUNTS)
def test_allgather_gives_every_rank_every_chunk(comm, name, n):
    p, r = comm.Get_size(), comm.Get_rank()
    b = bounds(n, p)
    want = np.concatenate([_rank_data(n, k, "float64")[b[k] : b[k + 1]] for k in range(p)])
    buf = np.full(n, -1.0)
    buf[b[r] : b[r + 1]] = want[b[r] : b[r + 1]]
    make_collective("allgather", name, comm).bind(buf)()
    collective_assert(comm, np.array_equal(buf, want), f"{name} n={n}")


@pytest.mark.mpi
def test_p2p_halves_count_the_traffic_the_closed_form_says(comm):
    """Ring: (p-1) messages of S/p; halving/doubling at a power of two: log2(p) messages,
    (p-1)/p * S bytes in all (other p add a fold: up to one more buffer)."""
    p, n = comm.Get_size(), 120  # divisible by 1 to 6 and 8
    for kind, name in [
        ("reduce-scatter", "ring"),
        ("allgather", "ring"),
        ("reduce-scatter", "recursive-halving"),
        ("allgather", "recursive-doubling"),
    ]:
        impl = make_collective(kind, name, comm)
        impl.bind(np.ones(n), None if kind == "allgather" else np.empty(0))()
        sent, msgs = sum(impl.traffic.bytes), sum(impl.traffic.messages)
        if name == "ring" or p & (p - 1) == 0:
            ok = sent == (p - 1) * n * 8 // p and msgs == (
                p - 1 if name == "ring" else (p.bit_length() - 1)
            )
        else:
            ok = sent <= 2 * n * 8  # the fold adds up to one whole buffer
        collective_assert(comm, ok, f"{kind} {name}: {sent} B in {msgs} messages at p={p}")


@pytest.mark.mpi
@pytest.mark.parametrize("collective", list(IMPLEMENTATIONS))
def test_bench_record_of_each_collective_is_validated_and_complete(comm, collective):
    p = comm.Get_size()
    for name in IMPLEMENTATIONS[collective]:
        impl = make_collective(collective, name, comm)
        rec = measure(comm, impl, 1000, "float64", 1, 4, repeats=2, collective=collective)
        factor = 1.0 if collective == "broadcast" else (p - 1) / p
        ok = (
            rec["wrong"] == 0
            and rec["collective"] == collective
            and rec["iters"] == 4
            and rec["repeats"] == 2
            and rec["time_s_min"] <= rec["time_s_p50"] <= rec["time_s_max"]
            and rec["time_s_ci95"] is not None
            and rec["busbw"] == pytest.approx(rec["algbw"] * (factor if p > 1 else 0.0))
            and (collective == "broadcast" or rec["count"] % p == 0)
        )
        collective_assert(comm, ok, f"{collective} {name}: {rec}")


class _Broken:
    """An 'allgather' that does nothing: the check must see the missing chunks."""

    name, in_place = "broken", True

    def bind(self, buf, out=None):
        return lambda: None


@pytest.mark.mpi(min_size=2)
def test_the_wrong_column_sees_a_collective_that_does_nothing(world_comm):
    rec = measure(world_comm, _Broken(), 64, "float64", 0, 2, collective="allgather")
    p, n = world_comm.Get_size(), rec["count"]
    # Each rank misses the other p - 1 chunks of n / p elements (zeros where >= 1 belong).
    collective_assert(world_comm, rec["wrong"] == (p - 1) * n, f"wrong={rec['wrong']} p={p}")


@pytest.mark.mpi
@pytest.mark.parametrize(
    "kind, name", [(c, a) for c in ("reduce-scatter", "allgather") for a in table.scheduled(c)]
)
def test_the_schedule_table_counts_what_our_halves_send(comm, kind, name):
    """The records' phases (collective/halves.py) against the bytes and messages each rank
    really sent to each peer, at any world size (folds included)."""
    p = comm.Get_size()
    n = 60 * p  # whole chunks: the schedules count fractions of the payload
    impl = make_collective(kind, name, comm)
    impl.bind(np.ones(n), None)()
    sent = np.array(comm.allgather(list(impl.traffic.bytes)), dtype=np.float64)
    msgs = np.array(comm.allgather(list(impl.traffic.messages)))
    want_bytes, want_msgs = schedule.traffic(f"{kind}/{name}", p, n * 8)
    ok = np.allclose(sent, want_bytes) and np.array_equal(msgs, want_msgs)
    collective_assert(comm, ok, f"{kind} {name} at p={p}: {sent} vs {want_bytes}")


def test_closed_forms_match_the_schedules_at_powers_of_two():
    """Messages and bytes on the critical path at p = 2, 4, 8 (the fold's approximation
    aside): the closed form's a and b against the schedule's steps."""
    for kind in ("reduce-scatter", "allgather"):
        for name in table.scheduled(kind):
            for p in (2, 4, 8):
                a, b, c = table.get(name, kind).closed_form(p)
                phases = schedule.phases(f"{kind}/{name}", p)
                steps = sum(ph.repeat for ph in phases)
                per_rank = sum(ph.repeat * float(ph.frac.max()) for ph in phases)
                reduce = sum(ph.repeat * ph.reduce for ph in phases)
                assert (a, b, c) == pytest.approx((steps, per_rank, reduce)), (kind, name, p)
