"""Allreduce algorithms and their traffic counts, at whatever world size mpirun gives.

Expected values are computed from size and rank; asserts are collective.
"""

import math

import numpy as np
import pytest

from dist_logreg.collective import algorithms as table
from dist_logreg.collective import schedule
from dist_logreg.comm.registry import make_allreduce
from dist_logreg.comm.wrappers import FP16Compressed, Instrumented
from dist_logreg.train import data
from dist_logreg.train.config import TrainConfig
from dist_logreg.train.loop import train
from tests.helpers import collective_assert
from tests.oracle import QuietReporter

pytestmark = pytest.mark.mpi
#: Every algorithm in the table, and those written here on point-to-point calls.
ALL, OURS = table.names(), table.scheduled()


def make(name, comm, rpn=None):
    return make_allreduce(name, comm, ranks_per_node=rpn)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 64, 1001])  # below and not divisible by p
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sum_is_right_and_identical_everywhere(name, count, dtype, comm):
    allreduce = make(name, comm)
    try:
        rng = np.random.default_rng(100 * comm.Get_rank() + count)
        x = rng.standard_normal(count).astype(dtype)
        expected = np.sum(np.array(comm.allgather(x), dtype=np.float64), axis=0)
        allreduce.allreduce(x)
        tol = 1e-5 if dtype == "float32" else 1e-12
        collective_assert(comm, np.allclose(x, expected, rtol=tol, atol=tol), name)
        collective_assert(comm, len(set(comm.allgather(x.tobytes()))) == 1, "ranks differ")
    finally:
        allreduce.free()


@pytest.mark.parametrize("rpn", [1, 2, 3])
def test_hierarchical_with_ranks_per_node(rpn, comm):
    p, rank = comm.Get_size(), comm.Get_rank()
    h = make("hierarchical", comm, rpn)
    x = np.full(10, rank + 1.0)
    h.allreduce(x)
    collective_assert(comm, np.all(x == p * (p + 1) / 2))
    collective_assert(comm, h.node_of == [r // rpn for r in range(p)], str(h.node_of))


@pytest.mark.parametrize("inter", table.INTER_CHOICES)
@pytest.mark.parametrize("rpn", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_hierarchical_2d_sums_any_count_on_any_nodes(inter, rpn, dtype, comm):
    """Nodes of rpn ranks (the last smaller, or none whole: the flat fallback), every
    inter-node algorithm, 1 to 1001 elements: the exact sum, the same bits on every rank."""
    p = comm.Get_size()
    with table.registered(table.variant(inter, "h2d-under-test")) as record:
        h = make(record.name, comm, rpn)
    try:
        sizes = {h.node_of.count(v) for v in h.node_of}
        collective_assert(comm, bool(h.fallback) == (len(sizes) > 1), h.fallback)
        collective_assert(comm, h.node_of == [r // rpn for r in range(p)], str(h.node_of))
        for count in [1, 2, 3, 5, 7, 64, 1001]:
            rng = np.random.default_rng(100 * comm.Get_rank() + count)
            x = rng.standard_normal(count).astype(dtype)
            expected = np.sum(np.array(comm.allgather(x), dtype=np.float64), axis=0)
            h.allreduce(x)
            tol = 1e-5 if dtype == "float32" else 1e-12
            collective_assert(comm, np.allclose(x, expected, rtol=tol, atol=tol), str(count))
            collective_assert(comm, len(set(comm.allgather(x.tobytes()))) == 1, "ranks differ")
    finally:
        h.free()


def test_hierarchical_2d_sends_what_its_schedule_says(comm):
    """Two ranks per node: inside a node 2(k-1)/k S to the next rank, across only to the
    rank of the same place (its rail); the whole matrix is the schedule's."""
    p, k, n = comm.Get_size(), 2, 120
    h = make(table.HIERARCHICAL_2D.name, comm, k)
    h.allreduce(np.ones(n))
    sent, msgs = traffic_matrix(h, comm)
    want, want_msgs = schedule.traffic(table.HIERARCHICAL_2D.name, p, n * 8, h.node_of)
    collective_assert(comm, np.allclose(sent, want) and np.array_equal(msgs, want_msgs), str(sent))
    if not h.fallback:
        node = h.node_of
        crossing = [(i, j) for i in range(p) for j in range(p) if sent[i, j] and node[i] != node[j]]
        collective_assert(comm, all(i % k == j % k for i, j in crossing), str(crossing))
    h.free()


def traffic_matrix(allreduce, comm):
    return np.array(comm.allgather(list(allreduce.traffic.bytes))), np.array(
        comm.allgather(list(allreduce.traffic.messages))
    )


def test_ring_traffic_matches_the_formula(comm):
    p = comm.Get_size()
    ring = make("ring", comm)
    n = 120  # divisible by 1..6: every chunk the same size
    ring.allreduce(np.ones(n))
    sent, msgs = traffic_matrix(ring, comm)
    S = n * 8
    expected = np.zeros((p, p))
    expected_msgs = np.zeros((p, p))
    if p > 1:
        for i in range(p):
            expected[i, (i + 1) % p] += 2 * (p - 1) / p * S  # each rank: 2(p-1)/p * S, rightwards
            expected_msgs[i, (i + 1) % p] += 2 * (p - 1)
    collective_assert(comm, np.array_equal(sent, expected), str(sent))
    collective_assert(comm, np.array_equal(msgs, expected_msgs), str(msgs))


def test_recursive_doubling_and_rabenseifner_traffic(comm):
    p = comm.Get_size()
    n = 96
    S = n * 8
    rd, rs = make("recursive-doubling", comm), make("rabenseifner", comm)
    rd.allreduce(np.ones(n))
    rs.allreduce(np.ones(n))
    rd_sent, _ = traffic_matrix(rd, comm)
    rs_sent, _ = traffic_matrix(rs, comm)
    if p & (p - 1) == 0:  # power of two: the textbook costs
        collective_assert(comm, np.all(rd_sent.sum(axis=1) == math.log2(p) * S), str(rd_sent))
        collective_assert(comm, np.all(rs_sent.sum(axis=1) == 2 * (p - 1) / p * S), str(rs_sent))
    else:  # folded: the first 2*extra ranks pair up around a power-of-two core
        p2 = 1 << (p.bit_length() - 1)
        extra = p - p2
        for i in range(0, 2 * extra, 2):  # the even rank of each pair sends its whole buffer
            collective_assert(comm, rd_sent[i].sum() == S and rd_sent[i, i + 1] == S)
            collective_assert(comm, rd_sent[i + 1, i] == S)  # ... and gets the result back
        core = [r for r in range(p) if not (r < 2 * extra and r % 2 == 0)]
        core_sent = rd_sent[np.ix_(core, core)].sum(axis=1)
        collective_assert(comm, np.all(core_sent == math.log2(p2) * S), str(rd_sent))
        core_sent = rs_sent[np.ix_(core, core)].sum(axis=1)
        collective_assert(comm, np.all(core_sent == 2 * (p2 - 1) / p2 * S), str(rs_sent))


def test_hierarchical_separates_intra_and_inter_node_bytes(comm):
    p = comm.Get_size()
    k = 2
    h = make("hierarchical", comm, k)
    n = 60
    S = n * 8
    h.allreduce(np.ones(n))
    sent, _ = traffic_matrix(h, comm)
    node = h.node_of
    intra = sum(sent[i, j] for i in range(p) for j in range(p) if node[i] == node[j])
    inter = sent.sum() - intra
    sizes = [node.count(v) for v in sorted(set(node))]
    leaders = len(sizes)
    # Each member sends S to its leader and gets S back; the leaders run a ring.
    collective_assert(comm, intra == sum(2 * (m - 1) * S for m in sizes), f"{intra} {sent}")
    collective_assert(comm, inter == 2 * (leaders - 1) * S, f"{inter} {sent}")
    # Only leaders cross node boundaries.
    non_leaders = [r for r in range(p) if r % k]
    collective_assert(
        comm, all(sent[r, j] == 0 for r in non_leaders for j in range(p) if node[j] != node[r])
    )


def _train(comm, allreduce, **kw):
    ds = data.synthetic(600, 37, seed=8, dtype=kw.get("dtype", "float64"))
    cfg = TrainConfig(batch_size=61, steps=15, lr=0.4, seed=8, momentum=0.3, **kw)
    return train(comm, allreduce, cfg, ds, QuietReporter())


@pytest.mark.parametrize("name", OURS)
def test_training_with_each_algorithm_equals_mpi(name, comm):
    ref = _train(comm, make(table.MPI.name, comm))
    rpn = 2 if table.get(name).topology_aware else None
    got = _train(comm, Instrumented(make(name, comm, rpn)))
    collective_assert(comm, np.allclose(got.params, ref.params, rtol=1e-10, atol=1e-13))
    collective_assert(comm, len(set(comm.allgather(got.params.tobytes()))) == 1)


@pytest.mark.parametrize("name", ["mpi", "ring"])
@pytest.mark.parametrize("bucket_bytes", [8, 40, 96, 1 << 20])
def test_bucketed_training_equals_unbucketed(name, bucket_bytes, comm):
    ref = _train(comm, make("mpi", comm))
    wrapped = Instrumented(make(name, comm))
    got = _train(comm, wrapped, bucket_bytes=bucket_bytes)
    collective_assert(comm, np.allclose(got.params, ref.params, rtol=1e-10, atol=1e-13))
    rec = wrapped.records()
    # Every element of the 40-element buffer is reduced exactly once per step.
    collective_assert(comm, np.all(rec["ns"] > 0) and rec["bytes"].sum() == 15 * 40 * 8)
    collective_assert(comm, np.array_equal(np.unique(rec["step"]), np.arange(15)))
    collective_assert(comm, len(set(comm.allgather(got.params.tobytes()))) == 1)


def test_fp16_compression_is_close_and_halves_bytes_again(comm):
    ref = _train(comm, make("mpi", comm), dtype="float32")
    for inner in ("mpi", "ring"):
        wrapped = Instrumented(FP16Compressed(make(inner, comm), scale=61))
        got = _train(comm, wrapped, dtype="float32")
        collective_assert(comm, abs(got.final_loss - ref.final_loss) < 2e-3, inner)
        collective_assert(comm, np.all(wrapped.records()["bytes"] == 40 * 2))  # float16 payload
        collective_assert(comm, len(set(comm.allgather(got.params.tobytes()))) == 1)
    bucketed = Instrumented(FP16Compressed(make("mpi", comm), scale=61))
    got = _train(comm, bucketed, dtype="float32", bucket_bytes=64)
    collective_assert(comm, abs(got.final_loss - ref.final_loss) < 2e-3, "bucketed fp16")
