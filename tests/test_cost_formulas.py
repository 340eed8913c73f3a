"""The cost formulas against the traffic the algorithms actually send, at p = 2..9.

The algorithms of ``comm/p2p.py`` run for real, one thread per rank, on an in-process
stand-in for the communicator (messages through queues): no launcher, any world size. What
they count (:class:`Traffic`) must equal the schedule the cost model walks
(``collective/schedule.py``), and the schedule's critical path must equal the closed forms of
Thakur, Rabenseifner and Gropp (``collective/closed_form.py``).
"""

import math
import queue
import threading

import numpy as np
import pytest

from dist_logreg.collective import algorithms as table
from dist_logreg.collective.closed_form import coefficients, hierarchical_coefficients, model_time
from dist_logreg.collective.schedule import Placement, shape, traffic
from dist_logreg.comm.links import Link as _P2P
from dist_logreg.comm.links import Scratch as _Scratch
from dist_logreg.comm.links import Traffic
from dist_logreg.comm.p2p import Hierarchical

P_RANGE = range(2, 10)
#: The flat algorithms of the table written on point-to-point calls: name -> function.
FLAT = {
    a.name: a.runner_class().algorithm
    for a in table.of()
    if a.phases is not None and not a.topology_aware
}
#: The algorithms of the table with a closed form.
CLOSED = [a.name for a in table.of() if a.closed_form is not None]
COUNT = 2520  # divisible by 1..9: every chunk of every algorithm is whole


class Mailbox:
    """Point-to-point messages between threads, per communicator, never blocking a send."""

    def __init__(self):
        self.queues: dict = {}
        self.lock = threading.Lock()

    def q(self, key) -> queue.Queue:
        with self.lock:
            return self.queues.setdefault(key, queue.Queue())


class FakeComm:
    """The three calls ``_P2P`` makes (Sendrecv, Send, Recv), on global ranks ``members``."""

    def __init__(self, box: Mailbox, tag: str, members: list[int], me: int):
        self.box, self.tag, self.members, self.me = box, tag, members, me

    def _key(self, src: int, dst: int):
        return (self.tag, self.members[src], self.members[dst])

    def Send(self, buf, dest, tag=0):
        self.box.q(self._key(self.me, dest)).put(np.array(buf, copy=True))

    def Recv(self, buf, source, tag=0):
        buf[...] = self.box.q(self._key(source, self.me)).get(timeout=10)

    def Sendrecv(self, sendbuf, dest, sendtag, recvbuf, source, recvtag):
        self.Send(sendbuf, dest)
        self.Recv(recvbuf, source)


def link(box: Mailbox, tag: str, members: list[int], me: int, tr: Traffic) -> _P2P:
    obj = _P2P.__new__(_P2P)
    obj.comm = FakeComm(box, tag, members, me)
    obj.rank, obj.size = me, len(members)
    obj.to_parent = members
    obj.traffic = tr
    return obj


def run_ranks(p: int, body, count: int = COUNT) -> tuple[list[Traffic], list[np.ndarray]]:
    """Run ``body(rank, traffic, buf)`` on ``p`` threads; rank r holds ``(i % 7 + 1)(r + 1)``."""
    traffics = [Traffic(p) for _ in range(p)]
    bufs = [(np.arange(count) % 7 + 1.0) * (r + 1) for r in range(p)]
    errors = []

    def target(r):
        try:
            body(r, traffics[r], bufs[r])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(r,)) for r in range(p)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads), errors
    expected = (np.arange(count) % 7 + 1.0) * p * (p + 1) / 2
    for b in bufs:
        np.testing.assert_array_equal(b, expected)
    return traffics, bufs


def counted(traffics: list[Traffic]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([t.bytes for t in traffics]), np.array([t.messages for t in traffics])


@pytest.mark.parametrize("name", sorted(FLAT))
@pytest.mark.parametrize("p", P_RANGE)
def test_flat_algorithms_send_what_the_schedule_says(name, p):
    box = Mailbox()
    tr, _ = run_ranks(
        p, lambda r, t, buf: FLAT[name](link(box, "w", list(range(p)), r, t), buf, _Scratch())
    )
    nbytes, messages = counted(tr)
    want_bytes, want_messages = traffic(name, p, COUNT * 8)
    np.testing.assert_allclose(nbytes, want_bytes)
    np.testing.assert_array_equal(messages, want_messages)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("p", P_RANGE)
def test_hierarchical_sends_what_the_schedule_says(p, k):
    node_of = [r // k for r in range(p)]
    box = Mailbox()
    leaders = [r for r in range(p) if r % k == 0]

    def body(r, t, buf):
        h = Hierarchical.__new__(Hierarchical)
        members = [m for m in range(p) if node_of[m] == node_of[r]]
        h._node = link(box, f"node{node_of[r]}", members, members.index(r), t)
        h.is_leader = r in leaders
        h._leaders = link(box, "leaders", leaders, leaders.index(r), t) if h.is_leader else None
        h._scratch = _Scratch()
        h.allreduce(buf)

    tr, _ = run_ranks(p, body)
    nbytes, messages = counted(tr)
    want_bytes, want_messages = traffic("hierarchical", p, COUNT * 8, node_of)
    np.testing.assert_allclose(nbytes, want_bytes)
    np.testing.assert_array_equal(messages, want_messages)


@pytest.mark.parametrize("name", sorted(FLAT))
def test_uneven_counts_stay_within_an_element_per_message(name):
    """With 1001 elements chunks differ by one element; the schedule uses n/p."""
    p, count = 7, 1001
    box = Mailbox()
    tr, _ = run_ranks(
        p,
        lambda r, t, buf: FLAT[name](link(box, "w", list(range(p)), r, t), buf, _Scratch()),
        count,
    )
    nbytes, messages = counted(tr)
    want, want_messages = traffic(name, p, count * 8)
    assert np.all(np.abs(nbytes - want) <= 8 * messages)
    np.testing.assert_array_equal(messages, want_messages)


def totals(steps) -> tuple[float, float, float]:
    a = sum(s.repeat for s in steps)
    b = sum(s.repeat * s.load for s in steps)
    c = sum(s.repeat * s.reduce for s in steps)
    return a, b, c


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("p", [*P_RANGE, 16, 33, 100, 1024])
def test_critical_path_of_the_steps_is_the_closed_form(name, p):
    """One rank per host: every step's bottleneck link carries its largest flow."""
    a, b, c = totals(shape(name, Placement.blocks(p, 1)))
    assert (a, b, c) == pytest.approx(coefficients(name, p))
    # The same on one host (every link a shared-memory one).
    assert totals(shape(name, Placement.blocks(p, 0))) == pytest.approx((a, b, c))


def test_closed_forms_as_mpich_states_them():
    lg = math.log2
    for p in (2, 4, 8, 64):  # powers of two: the textbook
        assert coefficients("ring", p) == pytest.approx((2 * (p - 1), 2 * (p - 1) / p, (p - 1) / p))
        assert coefficients("recursive-doubling", p) == pytest.approx((lg(p),) * 3)
        assert coefficients("rabenseifner", p) == pytest.approx(
            (2 * lg(p), 2 * (p - 1) / p, (p - 1) / p)
        )
    # p = 6: fold 2 ranks into 4, exchange whole buffers in and out
    assert coefficients("recursive-doubling", 6) == pytest.approx((4, 4, 3))
    assert coefficients("rabenseifner", 6) == pytest.approx((6, 2 + 1.5, 1 + 0.75))
    assert model_time("ring", 1000, 4, 1e-6, 1e-9, 1e-10) == pytest.approx(
        6e-6 + 1.5 * 1000 * 1e-9 + 0.75 * 1000 * 1e-10
    )


@pytest.mark.parametrize("k, hosts", [(2, 2), (3, 3), (4, 2), (1, 5)])
def test_hierarchical_steps_are_its_closed_form(k, hosts):
    steps = shape("hierarchical", Placement.blocks(k * hosts, k))
    intra = totals([s for s in steps if not s.inter])
    inter = totals([s for s in steps if s.inter])
    want = hierarchical_coefficients(k, hosts)
    assert intra[:2] == pytest.approx((want["a_intra"], want["b_intra"]))
    assert inter[:2] == pytest.approx((want["a_inter"], want["b_inter"]))
    assert intra[2] + inter[2] == pytest.approx(want["c"])
