"""The event-driven engine of ``--exact`` (issue 30, 3): held against the algorithm it
replaced (kept here, slow and plain: every event one scipy reallocation of every flow in
flight) on many random small cases, with every message eager; and MPI's rendezvous rule,
by hand."""

import heapq
import json

import numpy as np
import pytest

from dist_logreg.collective.algorithms import scheduled_keys
from dist_logreg.errors import UsageError
from dist_logreg.sim import maxmin
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.exact import EAGER, ExactOptions, parse_options
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.messages import messages
from dist_logreg.sim.placement import place
from tests.test_simulate_attack import cli, refused

ALL_EAGER = {"eager_limit": "inf", "eager_limit_host": "inf"}


def reference(job, host_of):
    """The previous ``--exact`` loop: a heap of begins and arrivals; at each event every
    flow in flight advanced and all rates recomputed (:func:`maxmin.rates`)."""
    fab = job.fabric
    g = messages(job.algorithm, host_of.size, job.nbytes, job.node_of())
    src_h, dst_h = host_of[g.src_rank], host_of[g.dst_rank]
    a = fab.route_many(src_h, dst_h, g.src_rank * host_of.size + g.dst_rank)
    lat, inter = a @ fab.link_latency, np.diff(a.indptr) > 0
    waits, ready = np.diff(g.dep_indptr).copy(), np.zeros(g.size)
    arrival = np.full(g.size, np.nan)
    after = [[] for _ in range(g.size)]
    for i in range(g.size):
        for j in g.deps(i).tolist():
            after[j].append(i)
    events = [(fab.alpha, 0, int(i)) for i in np.flatnonzero(waits == 0)]
    heapq.heapify(events)
    ids, left, t = np.zeros(0, np.int64), np.zeros(0), 0.0

    def rates():
        sub = a[ids]
        return maxmin.rates(sub, sub.T.tocsr(), fab.link_rate, np.ones(ids.size, bool))

    def advance(dt):
        nonlocal ids, left
        if not ids.size:
            return []
        r = rates()
        left = left - r * dt
        done = left <= maxmin.TOL * np.maximum(r * dt, 1.0)
        out = ids[done].tolist()
        ids, left = ids[~done], left[~done]
        return out

    while events or ids.size:
        t_next = events[0][0] if events else np.inf
        t_fin = t + (float(np.min(left / rates())) if ids.size else np.inf)
        if t_fin < t_next * (1 - maxmin.TOL):
            for i in advance(t_fin - t):
                heapq.heappush(events, (t_fin + lat[i], 1, i))
            t = t_fin
            continue
        for i in advance(t_next - t):
            heapq.heappush(events, (t_next + lat[i], 1, i))
        t, starting = t_next, []
        while events and events[0][0] <= t * (1 + maxmin.TOL):
            _, kind, i = heapq.heappop(events)
            if kind == 0 and inter[i] and g.nbytes[i] > 0:
                starting.append(i)
            elif kind == 0:
                heapq.heappush(events, (t + g.nbytes[i] / fab.host_rate, 1, i))
            else:
                arrival[i] = t
                for j in after[i]:
                    mine = g.src_rank[j] == g.dst_rank[i]
                    ready[j] = max(ready[j], t + g.reduce[i] * fab.gamma if mine else t)
                    waits[j] -= 1
                    if waits[j] == 0:
                        heapq.heappush(events, (ready[j] + fab.alpha, 0, j))
        ids = np.concatenate([ids, np.asarray(starting, np.int64)])
        left = np.concatenate([left, g.nbytes[starting].astype(float)])
    return float(np.max(arrival + g.reduce * fab.gamma)), arrival


def _fabric(rng, hosts):
    common = (
        f"rate={rng.choice([10, 25, 100])}G,alpha={rng.choice([0, 1, 5])}us,"
        f"link-latency={rng.choice([0, 0.5, 1])}us,gamma={rng.choice([0, 0.05])}ns"
    )
    kind = rng.integers(0, 3)
    if kind == 0:
        return f"flat:hosts={hosts},{common}"
    if kind == 1:
        per_leaf = int(rng.integers(1, 5))
        return (
            f"leaf-spine:leaves={-(-hosts // per_leaf)},spines={int(rng.integers(1, 4))},"
            f"hosts-per-leaf={per_leaf},oversubscription={rng.choice([0.5, 1, 2, 4])},"
            f"hash={rng.choice(['l3', 'l4', 'spray'])},hash-seed={int(rng.integers(0, 9))},"
            + common
        )
    return f"fat-tree:k=4,hash={rng.choice(['l4', 'spray'])}," + common


@pytest.mark.parametrize("case", range(60))
def test_equals_the_previous_algorithm_on_random_small_cases(case):
    rng = np.random.default_rng(3000 + case)
    p, per_host = int(rng.integers(2, 17)), int(rng.choice([1, 1, 2]))
    fab = parse_fabric(_fabric(rng, -(-p // per_host)))
    alg = str(rng.choice([a for a in scheduled_keys() if "/" not in a or rng.random() < 0.3]))
    mode = str(rng.choice(["packed", "random"]))
    host_of = place(p, fab, per_host, mode, int(rng.integers(0, 99)))
    nbytes = int(rng.choice([1, 1000, 65537, 3 << 20]))
    job = Job(fab, host_of, alg, nbytes, exact=True, options=ALL_EAGER)
    want, arrivals = reference(job, np.asarray(host_of, np.int64))
    got = get_engine("flow").run(job)
    assert got.time_s == pytest.approx(want, rel=1e-9), (alg, p, nbytes)
    assert np.allclose(got.messages, arrivals, rtol=1e-9, atol=0), (alg, p, nbytes)
    assert got.extra["rendezvous"] == 0


def test_options_default_to_open_mpi_and_are_checked():
    assert parse_options({}) == ExactOptions(65536, 4096)  # btl_tcp / btl_sm eager limits
    assert parse_options({"eager_limit": "inf"}).eager_limit == EAGER
    assert parse_options({"eager_limit_host": "1M"}).eager_limit_host == 1 << 20
    assert parse_options({"transport": "vegas"}) == ExactOptions()  # the packet engine's
    with pytest.raises(UsageError, match="--eager-limit: .*'lots'"):
        parse_options({"eager_limit": "lots"})


def test_rendezvous_by_hand():
    # recursive doubling on 3 ranks, 3000 B, one switch at 1 GB/s, alpha 1 us, no latency,
    # no reduction cost. Step 0: rank 0 folds into 1 (0->1). Step 1: 1->2 (after 0->1) and
    # 2->1 (rank 2 waits for nothing). Step 2: 1->0 (after both).
    # Eager: 0->1 and 2->1 start at 1 us and share rank 1's downlink (0.5 GB/s each):
    # arrive at 1 + 6 = 7 us; 1->2 from 8 us alone, 11 us; 1->0 from 12 us: ends at 15 us.
    # Rendezvous (limit 1K): 2->1 waits for rank 1 to post its receive of step 1 (once
    # 0->1 has arrived, at 4 us): 0->1 runs alone, 1 -> 4 us; 1->2 and 2->1 from 5 us on
    # disjoint links, 8 us; 1->0 from 9 us: 12 us. The message waits; the job gains.
    fab = parse_fabric("flat:hosts=3,rate=8G,alpha=1us,link-latency=0,gamma=0")
    run = lambda **opts: get_engine("flow").run(  # noqa: E731
        Job(fab, place(3, fab), "recursive-doubling", 3000, exact=True, options=opts)
    )
    eager = run(eager_limit="inf")
    rdv = run(eager_limit="1K")
    us = 1e-6
    assert eager.messages == pytest.approx([7 * us, 11 * us, 7 * us, 15 * us])
    assert eager.time_s == pytest.approx(15 * us, rel=1e-12)
    assert rdv.messages == pytest.approx([4 * us, 8 * us, 8 * us, 12 * us])
    assert rdv.time_s == pytest.approx(12 * us, rel=1e-12)
    assert (eager.extra["rendezvous"], rdv.extra["rendezvous"]) == (0, 4)
    default = run()  # 3000 B is under Open MPI's 64 KiB TCP eager limit: eager
    assert default.time_s == eager.time_s


def test_rendezvous_inside_a_host_by_its_own_limit():
    # the same ranks all on one host (host-rate 1 GB/s): 3000 B > the 4 KiB shared-memory
    # limit? no: eager, as above; with --eager-limit-host 1K: rendezvous, as above
    fab = parse_fabric("flat:hosts=1,rate=8G,alpha=1us,link-latency=0,gamma=0,host-rate=1GB/s")
    run = lambda **opts: get_engine("flow").run(  # noqa: E731
        Job(fab, place(3, fab, 3), "recursive-doubling", 3000, exact=True, options=opts)
    )
    assert run().extra["rendezvous"] == 0
    assert run(eager_limit_host="1K").extra["rendezvous"] == 4
    assert run(eager_limit="1K").extra["rendezvous"] == 0  # the network's limit: not here


def test_eager_limit_on_the_command_line():
    base = ["--fabric", "flat:hosts=3,rate=8G,alpha=1us,link-latency=0,gamma=0", "--ranks", "3"]
    base += ["--algorithm", "recursive-doubling", "--bytes", "3000"]
    refused(cli(*base, "--eager-limit", "1K"), "--eager-limit", "--exact")  # read by nothing
    refused(cli(*base, "--exact", "--eager-limit", "lots"), "--eager-limit", "lots")
    times = []
    for limit in ("inf", "1K"):
        r = cli(*base, "--exact", "--eager-limit", limit, "--json")
        assert r.returncode == 0, r.stderr[-600:]
        times.append(json.loads(r.stdout)["results"][0]["time_s"])
    assert times == pytest.approx([15e-6, 12e-6])  # the hand case above
