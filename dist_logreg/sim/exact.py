"""``--exact``: the dependency graph, event by event, with max-min fair sharing between events.

Each message (:mod:`.messages`) starts ``alpha`` after every message it depends on has
arrived (and, for a message the sender received, been reduced: ``gamma`` per byte); it then
shares the links it crosses max-min fairly with whatever else is in flight at that moment,
rates recomputed at every start and finish, and arrives its path's hop latency after its
last byte leaves. Nothing waits for a step to end, so a rank that is ahead runs ahead: the
phase-synchronous time is an upper bound of this one whenever sharing does not get worse by
the overlap, and the two are equal where nothing is shared.
"""

from __future__ import annotations

import heapq

import numpy as np
import scipy.sparse as sp

from dist_logreg.sim import maxmin
from dist_logreg.sim.messages import messages

BEGIN, ARRIVE = 0, 1

#: Event-loop seconds per message per rank in flight (each start or finish reallocates the
#: flows in flight): 1-3 us measured at 128-512 ranks on the 2-core development machine
#: under load. :func:`estimate_s` is good to a factor of a few, enough to refuse hours.
SECONDS_PER_MESSAGE_RANK = 2e-6


def estimate_s(algorithm: str, p: int) -> float:
    """Rough wall time of one ``--exact`` run: ``p`` ranks x ``a(p)`` steps messages, each
    costing one reallocation over about ``p`` flows."""
    from dist_logreg.collective.algorithms import get

    if p < 2:
        return 0.0
    form = get(algorithm).closed_form
    steps = form(p)[0] if form else 2 * (p - 1)  # hierarchical: at most the ring's steps
    return SECONDS_PER_MESSAGE_RANK * steps * p * p


def _dependents(g) -> sp.csr_matrix:
    rows = np.repeat(np.arange(g.size), np.diff(g.dep_indptr))
    m = sp.csr_matrix((np.ones(rows.size), (g.dep_indices, rows)), shape=(g.size, g.size))
    return m


class _Flows:
    """The messages in flight between hosts and their max-min rates."""

    def __init__(self, a, cap):
        self.a, self.cap = a, cap
        self.ids = np.zeros(0, dtype=np.int64)
        self.left = np.zeros(0)
        self.rate: np.ndarray | None = np.zeros(0)

    def add(self, ids: list[int], nbytes: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.left = np.concatenate([self.left, nbytes])
        self.rate = None

    def _rates(self) -> np.ndarray:
        if self.rate is None:
            sub = self.a[self.ids]
            self.rate = maxmin.rates(sub, sub.T.tocsr(), self.cap, np.ones(self.ids.size, bool))
        return self.rate

    def next_finish(self) -> float:
        return float(np.min(self.left / self._rates())) if self.ids.size else np.inf

    def advance(self, dt: float) -> np.ndarray:
        """Drain ``dt`` seconds; the ids that finished (removed)."""
        if not self.ids.size:
            return self.ids
        r = self._rates()
        self.left -= r * dt
        done = self.left <= maxmin.TOL * np.maximum(r * dt, 1.0)
        out = self.ids[done]
        if done.any():
            self.ids, self.left, self.rate = self.ids[~done], self.left[~done], None
        return out


def _release(g, after, i, t, reduced, ready, waits, events, alpha) -> None:
    """Message ``i`` arrived at ``t``: its dependents may start ``alpha`` after their last."""
    for j in after.indices[after.indptr[i] : after.indptr[i + 1]].tolist():
        ready[j] = max(ready[j], reduced if g.src_rank[j] == g.dst_rank[i] else t)
        waits[j] -= 1
        if waits[j] == 0:
            heapq.heappush(events, (ready[j] + alpha, BEGIN, int(j)))


def simulate(job, host_of: np.ndarray) -> dict:
    """``{"time_s", "arrivals", "message_count"}`` of one allreduce (a ``Job``), event by
    event; ``host_of``: the job's endpoints as int64."""
    fab = job.fabric
    g = messages(job.algorithm, host_of.size, job.nbytes, job.node_of())
    if g.size == 0:
        return {"time_s": 0.0, "arrivals": np.zeros(0), "message_count": 0}
    src_h, dst_h = host_of[g.src_rank], host_of[g.dst_rank]
    a = fab.route_many(src_h, dst_h, g.src_rank * host_of.size + g.dst_rank)
    lat = a @ fab.link_latency
    inter = np.diff(a.indptr) > 0
    waits = np.diff(g.dep_indptr).copy()
    ready = np.zeros(g.size)
    arrival = np.full(g.size, np.nan)
    after = _dependents(g)
    events = [(fab.alpha, BEGIN, int(i)) for i in np.flatnonzero(waits == 0)]
    heapq.heapify(events)
    flows, t = _Flows(a, fab.link_rate), 0.0
    while events or flows.ids.size:
        t_next = events[0][0] if events else np.inf
        t_fin = t + flows.next_finish()
        if t_fin < t_next * (1 - maxmin.TOL):
            if t_fin <= t:  # a residue whose finish is below the clock's resolution: it ends now
                t_fin = np.nextafter(t, np.inf)
            for i in flows.advance(t_fin - t).tolist():
                heapq.heappush(events, (t_fin + lat[i], ARRIVE, i))
            t = t_fin
            continue
        for i in flows.advance(t_next - t).tolist():  # ends that coincide with the event
            heapq.heappush(events, (t_next + lat[i], ARRIVE, i))
        t = t_next
        starting = []  # every event at this moment first, then one new allocation
        while events and events[0][0] <= t * (1 + maxmin.TOL):
            _, kind, i = heapq.heappop(events)
            if kind == BEGIN and inter[i] and g.nbytes[i] > 0:
                starting.append(i)
            elif kind == BEGIN:
                heapq.heappush(events, (t + g.nbytes[i] / fab.host_rate, ARRIVE, i))
            else:
                arrival[i] = t
                _release(
                    g, after, i, t, t + g.reduce[i] * fab.gamma, ready, waits, events, fab.alpha
                )
        if starting:
            flows.add(starting, g.nbytes[starting].astype(float))
    end = float(np.max(arrival + g.reduce * fab.gamma))
    return {"time_s": end, "arrivals": arrival, "message_count": int(g.size)}
