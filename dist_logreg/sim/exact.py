"""``--exact``: the dependency graph, event by event, with max-min fair sharing between events.

Each message (:mod:`.messages`) starts ``alpha`` after every message it depends on has
arrived (and, for a message the sender received, been reduced: ``gamma`` per byte); it then
shares the links it crosses max-min fairly with whatever else is in flight at that moment,
rates recomputed at every start and finish, and arrives its path's hop latency after its
last byte leaves. Nothing waits for a step to end, so a rank that is ahead runs ahead: the
phase-synchronous time is an upper bound of this one whenever sharing does not get worse by
the overlap, and the two are equal where nothing is shared.

MPI's rendezvous rule (:class:`ExactOptions`): a message larger than the eager limit of its
transport (Open MPI 5's defaults: 64 KiB over TCP between hosts, ``btl_tcp_eager_limit``;
4 KiB through shared memory inside a host, ``btl_sm_eager_limit``) starts only once its
receiver has posted the receive, i.e. has reached the step that receives it: the receiver's
own previous send has arrived and what it received before that step has arrived and been
reduced. Smaller messages go eagerly, as soon as the sender is ready.

The loop itself is :mod:`.eventloop` (compiled by numba where installed: :mod:`.jit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from dist_logreg.errors import UsageError
from dist_logreg.sim import eventloop, jit, maxmin
from dist_logreg.sim import options as o
from dist_logreg.sim.jit import AVAILABLE, njit
from dist_logreg.sim.messages import depends, messages

#: An eager limit no message reaches: every message eager (``--eager-limit inf``).
EAGER = 1 << 62

#: Seconds per message (compiled by numba; without it plain Python, 40 times more), and,
#: for the algorithms of log(p) steps whose every step crosses the fabric together, per
#: message per rank (one component holds every flow, recomputed at each event): measured
#: at 1024-4096 ranks on the 2-core development machine under a load average of 5-7
#: (docs/simulation.md). :func:`estimate_s` is good to a factor of a few where flows
#: collide and pessimistic where they do not, enough to refuse hours.
SECONDS_PER_MESSAGE = 2e-6 if AVAILABLE else 8e-5
SECONDS_PER_MESSAGE_RANK = 2e-7 if AVAILABLE else 8e-6
#: Bytes of memory per message at the peak of a run: the graph's int64 arrays, its two
#: dependency CSRs, the routes and the event loop's arrays. A fourth attack's ring ran at
#: 2048 ranks (8.4 M messages) under a 4 GiB address-space cap and failed at 4096 (33.5 M):
#: about 300 B a message, rounded up.
BYTES_PER_MESSAGE = 400


def _limit(value, flag: str) -> int:
    """Bytes (``64K``), or ``inf``: no message waits for its receiver."""
    if isinstance(value, int):
        return value
    if str(value).strip().lower() in ("inf", "eager"):
        return EAGER
    return o.size(value, flag)


def _show(n: int) -> str:
    return "inf" if n >= EAGER else o.show_size(n)


@dataclass(frozen=True)
class ExactOptions:
    """The flow engine's options of ``--exact``: where MPI's rendezvous begins."""

    eager_limit: int = o.option(
        64 << 10,
        "--eager-limit",
        _limit,
        "--exact: messages between hosts above this many bytes wait for the receiver to "
        "post its receive (MPI's rendezvous; Open MPI's btl_tcp_eager_limit); inf: none wait",
        show=_show,
        metavar="BYTES",
    )
    eager_limit_host: int = o.option(
        4 << 10,
        "--eager-limit-host",
        _limit,
        "--exact: the same inside a host (Open MPI's btl_sm_eager_limit)",
        show=_show,
        metavar="BYTES",
    )


def parse_options(options) -> ExactOptions:
    """``Job.options`` of the flow engine: an :class:`ExactOptions`, or a mapping whose keys
    of its fields (CLI text or Python values) are read; the rest, another engine's (a job
    may be run through several), is not the flow engine's to check."""
    if isinstance(options, ExactOptions):
        return options
    mine = o.flags(ExactOptions)
    given = options.items() if isinstance(options, dict) else ()
    return ExactOptions(
        **o.read(ExactOptions, {k: v for k, v in given if k in mine and v is not None})
    )


_PREFIX = "flow_"


def add_arguments(parser) -> None:
    """The flow engine's option group (``default=None``: given or not is known)."""
    g = parser.add_argument_group("flow engine, --exact (MPI's eager and rendezvous protocols)")
    o.add_arguments(g, ExactOptions, _PREFIX)


def from_args(args, engine: str, exact: bool) -> ExactOptions | None:
    """``Job.options`` of the flow engine from the command line; an option of this group
    given where nothing reads it (another engine, or no ``--exact``) is refused."""
    given = {
        k.removeprefix(_PREFIX): v
        for k, v in vars(args).items()
        if k.startswith(_PREFIX) and v is not None
    }
    if given and (engine != "flow" or not exact):
        flags = ", ".join(o.flags(ExactOptions)[k].flag for k in sorted(given))
        raise UsageError(
            f"{flags}: only --engine flow with --exact reads this (add --exact, or drop it)"
        )
    return parse_options(given) if engine == "flow" else None


def _steps(algorithm: str, p: int) -> int:
    from dist_logreg.collective.algorithms import get

    form = get(algorithm).closed_form
    return int(form(p)[0]) if form else 2 * (p - 1)  # hierarchical: at most the ring's


def memory_limit() -> int | None:
    """Bytes this process may still take: the smaller of the machine's available memory
    (``MemAvailable``) and the address-space limit (``ulimit -v``); None if unknown."""
    import resource

    limits = []
    try:
        with open("/proc/meminfo") as fh:
            kib = [int(x.split()[1]) for x in fh if x.startswith("MemAvailable:")]
        limits += [k * 1024 for k in kib]
    except (OSError, ValueError, IndexError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        limits.append(int(soft))
    return min(limits) if limits else None


def check_memory(algorithm: str, p: int, also: tuple[str, int] | None = None) -> None:
    """Refuse an ``--exact`` run whose message graph would not fit in memory (estimated
    before it is built: ``p`` x steps messages x :data:`BYTES_PER_MESSAGE`); ``also``: a
    neighbour job ``(algorithm, ranks)`` whose messages share the graph."""
    n = _steps(algorithm, p) * p if p > 1 else 0
    what = f"{algorithm} at {p} ranks"
    if also is not None and also[1] > 1:
        n += _steps(also[0], also[1]) * also[1]
        what += f" with a neighbour's {also[0]} at {also[1]} ranks"
    need, limit = n * BYTES_PER_MESSAGE, memory_limit()
    if limit is not None and need > limit:
        raise UsageError(
            f"--exact: {what} is {n:,} messages, about {need / 2**30:.1f} "
            f"GiB ({BYTES_PER_MESSAGE} B a message); expected at most the {limit / 2**30:.1f} "
            "GiB of memory available: fewer ranks, or drop --exact"
        )


def estimate_s(algorithm: str, p: int) -> float:
    """Rough wall time of one ``--exact`` run: ``p`` ranks x ``a(p)`` steps messages."""
    if p < 2:
        return 0.0
    steps = _steps(algorithm, p)
    shared = steps < p  # few steps, each of every rank's flows across the fabric at once
    return steps * p * (SECONDS_PER_MESSAGE + (SECONDS_PER_MESSAGE_RANK * p if shared else 0.0))


@njit
def dependents(ptr1, idx1, ptr2, idx2, src, dst):
    """Who waits on each message (CSR, the transpose of two dependency CSRs), and whether
    the waiting rank received it (then it waits for the reduction too): the sender of the
    waiting message for ``ptr1/idx1``, its receiver for ``ptr2/idx2`` (rendezvous)."""
    m = src.size
    indptr = np.zeros(m + 1, np.int64)
    for k in range(idx1.size):
        indptr[idx1[k] + 1] += 1
    for k in range(idx2.size):
        indptr[idx2[k] + 1] += 1
    for i in range(m):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    after, reduced = np.empty(indptr[m], np.int64), np.empty(indptr[m], np.bool_)
    for i in range(m):
        for k in range(ptr1[i], ptr1[i + 1]):
            j = idx1[k]
            after[fill[j]], reduced[fill[j]] = i, dst[j] == src[i]
            fill[j] += 1
        for k in range(ptr2[i], ptr2[i + 1]):
            j = idx2[k]
            after[fill[j]], reduced[fill[j]] = i, dst[j] == dst[i]
            fill[j] += 1
    return indptr, after, reduced


def routes(fab, host_of: np.ndarray, g):
    """Each message's route (an index into the distinct rank pairs' routes, each routed
    once) and those routes as a flows x links CSR."""
    p = host_of.size
    keys = g.src_rank * p + g.dst_rank
    if p <= 8192:  # a table of every pair: no sort of millions of keys
        seen = np.zeros(p * p, bool)
        seen[keys] = True
        pairs = np.flatnonzero(seen)
        index = np.zeros(p * p, np.int64)
        index[pairs] = np.arange(pairs.size)
        route = index[keys]
    else:
        pairs, route = np.unique(keys, return_inverse=True)
    a = fab.route_many(host_of[pairs // p], host_of[pairs % p], pairs)
    return route.astype(np.int64), a


def ready_at(start_s, p: int, src, dst, rdv) -> np.ndarray:
    """Per message, the earliest time it may be ready: its sender's start offset (a message
    from rank r waits for r's start), and for a rendezvous message also its receiver's (no
    receive is posted before the receiver starts); zeros without offsets."""
    if start_s is None:
        return np.zeros(src.size)
    st = np.asarray(start_s, dtype=float).ravel()
    if st.size != p or not np.all(np.isfinite(st)) or np.any(st < 0):
        raise ValueError(f"Job.start_s: expected {p} finite offsets >= 0 s, got {st.tolist()}")
    return np.where(rdv, np.maximum(st[src], st[dst]), st[src]).astype(float)


def _prepare(job, host_of: np.ndarray) -> dict:
    """One job's message graph, routes, rendezvous dependencies and ready times."""
    fab, opts = job.fabric, parse_options(job.options)
    g = messages(job.algorithm, host_of.size, job.nbytes, job.node_of())
    route, a = routes(fab, host_of, g)
    inter = np.diff(a.indptr) > 0
    limit = np.where(inter, opts.eager_limit, opts.eager_limit_host)[route]
    rdv = g.nbytes > limit
    start = np.concatenate([[0], np.flatnonzero(np.diff(g.phase)) + 1, [g.size]]).astype(np.int64)
    ptr2, idx2 = jit.interruptible(
        depends, g.src_rank, g.dst_rank, start, np.int64(host_of.size), rdv
    )
    ready0 = ready_at(job.start_s, host_of.size, g.src_rank, g.dst_rank, rdv)
    return {"g": g, "route": route, "a": a, "rdv": rdv, "ptr2": ptr2, "idx2": idx2, "r0": ready0}


def _cat_csr(parts, shift) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices)`` pieces one after another, the indices of piece k moved by
    ``shift[k]`` (its first row's number overall); one piece as it is (no copy: at 4096
    ranks a ring's are hundreds of MB, and a fresh copy took seconds)."""
    if len(parts) == 1 and shift[0] == 0:
        return np.asarray(parts[0][0], np.int64), np.asarray(parts[0][1], np.int64)
    ptr, idx, base = [np.zeros(1, np.int64)], [], 0
    for (p, i), s in zip(parts, shift[: len(parts)], strict=True):
        ptr.append(np.asarray(p[1:], np.int64) + base)
        idx.append(np.asarray(i, np.int64) + s)
        base += int(p[-1])
    return np.concatenate(ptr), np.concatenate(idx) if idx else np.zeros(0, np.int64)


def _join(ps: list, key: str, shift=None) -> np.ndarray:
    """The message graphs' ``key`` arrays one after another, piece k plus ``shift[k]``;
    one piece as it is (no copy)."""
    arrays = [getattr(x["g"], key) for x in ps]
    if shift is not None:
        arrays = [a + shift[k] if shift[k] else a for k, a in enumerate(arrays)]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def simulate_together(jobs: list, hosts: list) -> list[dict]:
    """Several jobs on one fabric (``jobs[0].fabric``), their message graphs in one event
    loop: each job's ``{"time_s", "arrivals", "message_count", "rendezvous"}``, its
    ``time_s`` the end of its last message (from 0, start offsets included)."""
    fab = jobs[0].fabric
    ps = [_prepare(j, np.asarray(h, dtype=np.int64)) for j, h in zip(jobs, hosts, strict=True)]
    sizes = [x["g"].size for x in ps]
    moff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    roff = np.concatenate([[0], np.cumsum([x["a"].shape[0] for x in ps])]).astype(np.int64)
    koff = np.concatenate([[0], np.cumsum([h.size for h in hosts])]).astype(np.int64)
    cat = lambda key: _join(ps, key)  # noqa: E731
    src, dst = _join(ps, "src_rank", koff), _join(ps, "dst_rank", koff)
    p1, i1 = _cat_csr([(x["g"].dep_indptr, x["g"].dep_indices) for x in ps], moff)
    p2, i2 = _cat_csr([(x["ptr2"], x["idx2"]) for x in ps], moff)
    a = sparse.vstack([x["a"] for x in ps], format="csr")
    reduce = cat("reduce")
    out = [{"time_s": 0.0, "arrivals": np.zeros(n), "message_count": n} for n in sizes]
    for k, x in enumerate(ps):
        out[k]["rendezvous"] = int(x["rdv"].sum())
    if moff[-1] == 0:
        return out
    arrays = (
        cat("nbytes"),
        reduce,
        np.concatenate([x["route"] + roff[k] for k, x in enumerate(ps)]),
        np.diff(p1) + np.diff(p2),  # waits
        *jit.interruptible(dependents, p1, i1, p2, i2, src, dst),
        a.indptr.astype(np.int64),
        a.indices.astype(np.int64),
        a.data.astype(float),
        np.asarray(a @ fab.link_latency, dtype=float),
        np.diff(a.indptr) > 0,
        np.asarray(fab.link_rate, dtype=float),
    )
    ready0 = np.concatenate([x["r0"] for x in ps])
    consts = (float(fab.alpha), float(fab.gamma), float(fab.host_rate), maxmin.TOL)
    arrival = jit.interruptible(eventloop.run, arrays, *consts, ready0)
    done = arrival + reduce * fab.gamma
    for k in range(len(ps)):
        mine = slice(moff[k], moff[k + 1])
        out[k]["arrivals"] = arrival[mine]
        out[k]["time_s"] = float(np.max(done[mine], initial=0.0))
    return out


def simulate(job, host_of: np.ndarray) -> dict:
    """``{"time_s", "arrivals", "message_count", "rendezvous"}`` of one allreduce (a
    ``Job``), event by event; ``host_of``: the job's endpoints as int64."""
    return simulate_together([job], [host_of])[0]
