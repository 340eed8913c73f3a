"""``--exact``'s max-min filling made faster (issue 30, 3): the same numbers as before.

The old filling (a scan of every link of the component at every level) is kept below as
:func:`old_fill`; a child process in plain Python (``DIST_LOGREG_NO_JIT=1``, where the
event loop looks ``fill`` up at each call) plays 50 random jobs with it, and this process
plays them with today's (compiled where numba is installed): every message's arrival
agrees to 1e-9 relative. The cases: ring, recursive doubling, Rabenseifner and the
hierarchical allreduce on a switch, a fat tree and leaf-spines (hashed and sprayed), 1 to 4
ranks per host, packed, spread or random, some with start offsets and some beside a
neighbouring job (both jobs in one loop)."""

import numpy as np
import pytest

from dist_logreg.sim import exact
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from tests.helpers import plain_python

FABRICS = (
    "flat:hosts=16,rate=100G",
    "fat-tree:k=4,rate=100G",
    "leaf-spine:leaves=4,spines=2,hosts-per-leaf=4,oversubscription=2,rate=100G",
    "leaf-spine:leaves=4,spines=2,hosts-per-leaf=4,oversubscription=4,rate=100G,hash=spray",
    "leaf-spine:leaves=2,spines=3,hosts-per-leaf=8,rate=100G,hash=l3",
)
ALGORITHMS = ("ring", "recursive-doubling", "rabenseifner", "hierarchical")
CASES = 50


def cases(n: int = CASES) -> list[dict]:
    """``n`` random jobs (seeded): what :func:`play` needs, as JSON."""
    rng = np.random.default_rng(30)
    out = []
    for k in range(n):
        per = int(rng.integers(1, 5))
        ranks = int(rng.integers(2, 16 * per // (2 if k % 3 == 0 else 1) + 1))
        out.append(
            {
                "fabric": FABRICS[k % len(FABRICS)],
                "ranks": ranks,
                "per": per,
                "mode": ("packed", "spread", "random")[int(rng.integers(3))],
                "algorithm": ALGORITHMS[int(rng.integers(len(ALGORITHMS)))],
                "bytes": int(rng.choice([1000, 70_000, 1 << 20, 3 << 22])),
                "seed": k,
                "offsets": k % 4 == 1,  # ranks start up to 20 us apart
                "neighbour": k % 3 == 0,  # a second job on the hosts left free
            }
        )
    return out


def jobs(c: dict) -> list[Job]:
    fab = parse_fabric(c["fabric"])
    host_of = place(c["ranks"], fab, c["per"], c["mode"], c["seed"])
    rng = np.random.default_rng(c["seed"])
    start = rng.uniform(0, 20e-6, c["ranks"]) if c["offsets"] else None
    out = [Job(fab, host_of, c["algorithm"], c["bytes"], exact=True, start_s=start)]
    if c["neighbour"]:
        free = np.setdiff1d(np.arange(fab.topology.endpoint_host.size), host_of)
        free = free[
            np.isin(
                fab.topology.endpoint_host[free], fab.topology.endpoint_host[host_of], invert=True
            )
        ]
        if free.size >= 2:
            other = rng.permutation(free)[: int(rng.integers(2, free.size + 1))]
            out.append(Job(fab, other, "ring", c["bytes"] // 2 + 1, exact=True))
    return out


def play(c: dict) -> list[float]:
    """Every message's arrival (s), all jobs of the case one after another."""
    js = jobs(c)
    res = exact.simulate_together(js, [np.asarray(j.host_of, np.int64) for j in js])
    return np.concatenate([r["arrivals"] for r in res]).tolist()


def old_fill(
    nl, nf, lk, comp_f, lflows, ldeg, s_route, r_ptr, r_link, r_w, cap, fmark, stamp, new, tol
):
    """Progressive filling (:func:`.maxmin.rates`) of one component: ``new[f]`` per flow.
    ``lk``: ``(comp_l, pos, lleft, lcnt, lsum, full)``, per link (scratch but comp_l)."""
    comp_l, pos, lleft, lcnt, lsum, full = lk
    for k in range(nl):
        pos[comp_l[k]] = k
        lleft[k], lcnt[k], lsum[k] = cap[comp_l[k]], 0, 0.0
    for k in range(nf):
        r = s_route[comp_f[k]]
        for e in range(r_ptr[r], r_ptr[r + 1]):
            j = pos[r_link[e]]
            lcnt[j] += 1
            lsum[j] += r_w[e]
    level, free = 0.0, nf
    while free > 0:
        inc = np.inf
        for j in range(nl):
            if lcnt[j] > 0 and lleft[j] / lsum[j] < inc:
                inc = lleft[j] / lsum[j]
        level += inc
        nfull = 0
        for j in range(nl):
            if lcnt[j] > 0:
                lleft[j] -= inc * lsum[j]
                if lleft[j] <= tol * cap[comp_l[j]]:
                    full[nfull] = j
                    nfull += 1
        if nfull == 0:  # rounding: freeze the tightest link anyway
            least = np.inf
            for j in range(nl):
                if lcnt[j] > 0:
                    least = min(least, lleft[j] / lsum[j])
            for j in range(nl):
                if lcnt[j] > 0 and lleft[j] / lsum[j] <= least * (1 + 1e-6):
                    full[nfull] = j
                    nfull += 1
        for q in range(nfull):
            lnk = comp_l[full[q]]
            for s in range(ldeg[lnk]):
                f = lflows[lnk, s]
                if fmark[f] != stamp:
                    continue
                fmark[f] = -stamp  # frozen
                new[f] = level
                free -= 1
                r = s_route[f]
                for e in range(r_ptr[r], r_ptr[r + 1]):
                    j = pos[r_link[e]]
                    lcnt[j] -= 1
                    lsum[j] = 0.0 if lcnt[j] == 0 else lsum[j] - r_w[e]


CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from dist_logreg.sim import eventloop, jit
assert not jit.AVAILABLE, "DIST_LOGREG_NO_JIT=1 left numba on"
import test_exact_speed_equal as t
shared = []  # per case, the fillings of a component of several flows
def fill(nl, nf, *rest):
    shared[-1] += nf > 1
    return t.old_fill(nl, nf, *rest)
eventloop.fill = fill  # plain Python looks it up at each call
out = []
for c in t.cases():
    shared.append(0)
    out.append(t.play(c))
print(json.dumps({{"arrivals": out, "shared": shared}}))
"""


@pytest.fixture(scope="module")
def old():
    return plain_python(CHILD, timeout=900)


@pytest.mark.parametrize("k", range(CASES))
def test_the_new_filling_gives_the_old_arrivals(old, k):
    c = cases()[k]
    new = np.array(play(c))
    was = np.array(old["arrivals"][k])
    assert new.shape == was.shape and np.all(np.isfinite(new)), c
    assert np.allclose(new, was, rtol=1e-9, atol=0), (c, np.max(np.abs(new - was) / was))


def test_the_cases_share_links(old):
    # the comparison means something only where flows meet: most cases fill components of
    # several flows, many times
    shared = np.array(old["shared"])
    assert (shared > 0).sum() >= 30 and shared.sum() >= 1000, shared
