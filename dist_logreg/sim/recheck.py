"""A ``simulate.json`` held to the engines' own bounds, for ``dist-logreg report`` (``cli/``
hands it :func:`check`: ``report/`` never imports ``sim/``). Each fabric block is rebuilt as
``simulate`` built it (its spec; a fabric file's or a cluster's keys from ``params``; a cost
model's alpha as 0: a fitted alpha is per size segment) and must agree with it key by key,
shape and counts included; each row's every seed, a neighbour's job and a step's buckets
are held to ``bounds.lower_bound_s`` and ``bounds.latency_floor_s`` of their placements on the
fabric they ran on (the scenario applied). A :class:`~dist_logreg.schema.Invalid` names
the key and both values.
"""

from __future__ import annotations

import contextlib

from dist_logreg import schema
from dist_logreg.errors import UsageError
from dist_logreg.sim import busy, packet_floor
from dist_logreg.sim.bounds import (
    BOUND_RTOL,
    LinkSums,
    clock_slack_s,
    closest_pair_s,
    critical_path_s,
    ideal_floor_s,
    latency_floor_s,
    lower_bound_s,
)
from dist_logreg.sim.fabric import Fabric, rebuild
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from dist_logreg.sim.scenario import apply_fabric, apply_workload, parse_scenario, place_neighbour
from dist_logreg.sim.step import check_slowdowns
from dist_logreg.sim.stepcheck import (
    agree,
    block_workload,
    check_rows,
    collectives_of,
    scheduled,
    spec_workload,
)
from dist_logreg.sim.workload import MAX_BUCKETS, predict_steps, run_workload

#: Relative slack: the engines' own (``BOUND_RTOL``) and JSON's 17 significant digits.
RTOL = max(BOUND_RTOL, 1e-9)
#: A random placement is redrawn per seed: the first this many seeds get their own bound,
#: the rest the least of those.
SEED_CAP = 32
#: A placement's closest pair of ranks and critical path (s), one check's (CRITICAL_RUNS).
_CLOSEST: dict = {}
CRITICAL_RUNS = 256


_S = schema.number(0.0, 1e12, "a finite number of seconds")
_PREDICTION = {"algorithm": schema.text(), "ranks": schema.count(1, 10**7, "ranks")}
_PREDICTION |= dict.fromkeys(("compute_s", "comm_s", "step_s"), _S)
#: ``simulate --run``'s ``run`` block: the train run's numbers and the step they predict.
RUN_BLOCK = schema.table(
    {
        "path": schema.text(),
        "world_size": schema.count(1, 10**6, "a number of ranks"),
        "steps": schema.count(1, 10**12, "a whole number of steps"),
        "calls_per_step": schema.number(0.0, MAX_BUCKETS, "calls a step", above=True),
        "bytes_per_call": schema.count(1, 1 << 40, "a whole number of bytes"),
        "compute_s_per_step": _S,
        "overlapped": schema.flag(),
        "predictions": schema.items(
            schema.table({**_PREDICTION, "comm_fraction": schema.number(0.0, 1.0, "a fraction")}),
            1,
        ),
        "assumption": schema.text(),
    }
)


def check(doc: dict) -> None:
    """:class:`schema.Invalid` for a fabric block not what its spec builds, a row (any seed)
    below the job's bounds, a step not what its buckets and results give (:func:`_steps`)."""
    runs = _Runs(doc)
    _CLOSEST.clear()
    head = doc.get("fabric") or {}
    for j, block in enumerate(doc.get("fabrics") or []):  # a sweep's: its rows read "fabric"
        if isinstance(block, dict) and block.get("spec") == head.get("spec") and block != head:
            raise schema.Invalid(f"fabrics[{j}]", "expected the file's fabric block (its spec's)")
    for i, r in enumerate(doc["results"]):
        where = f"results[{i}]"
        _row(*runs.of(r, where), r, runs.placement, where)
    _steps(doc, runs)
    check_slowdowns(doc["results"], "time_s", "results")
    step = doc.get("step")
    if isinstance(step, dict) and isinstance(step.get("rows"), list):
        check_slowdowns(step["rows"], "step_s", "step.rows")


class _Runs:
    """The fabric each row ran on (its block rebuilt once, its scenario applied once)."""

    def __init__(self, doc: dict):
        self.doc, self.placement = doc, doc.get("placement") or {}
        self.fabrics: dict[int, Fabric] = {}
        self.built: dict[tuple, tuple[Fabric, LinkSums]] = {}

    def of(self, r: dict, where: str) -> tuple[Fabric, LinkSums, str]:
        block, name = _block_of(self.doc, r, where)
        if id(block) not in self.fabrics:
            self.fabrics[id(block)] = rebuild(block, name)
        text = _scenario_of(self.doc, r, where)
        if (id(block), text) not in self.built:  # the fabric as the row ran on it
            fab = _with_scenario(self.fabrics[id(block)], text, where)
            self.built[id(block), text] = fab, LinkSums.of(fab.topology)
        return (*self.built[id(block), text], text)

    def bounds(self, r: dict, where: str, colls) -> dict:
        """``{collective: (a, c)}``: a collective of ``b`` bytes on the row ``r``'s ranks
        and fabric takes at least ``a + c b`` s whatever the seed's placement (the bound is
        alpha and hops + a rate term linear in the bytes; the least of each over the
        placements)."""
        fab, sums, text = self.of(r, where)
        n = r.get("seeds", self.placement.get("seeds", 1))
        if not (schema.is_number(n) and 1 <= n <= 10**6 and n == int(n)):
            raise schema.Invalid(f"{where}.seeds", f"expected a whole number of seeds, got {n!r}")
        seeds = [0.0] * int(n)
        placed = _placements(fab, r, self.placement, seeds, parse_scenario(text), where)
        out, big = {}, 1 << 30
        for coll in colls:
            ends = [
                [lower_bound_s(Job(fab, h, coll, n), sums=sums) for n in (1, big)] for h in placed
            ]
            c = min((hi - lo) / (big - 1) for lo, hi in ends)
            out[coll] = max(min(lo - (hi - lo) / (big - 1) for lo, hi in ends), 0.0), max(c, 0.0)
        return out


def _scenario_of(doc: dict, r: dict, where: str) -> str:
    """The row's scenario spec (a sweep row's own, else the file's), the file's block
    checked against what its spec parses to."""
    text = r.get("scenario")
    if text is None:
        block = doc.get("scenario")
        if block is None:
            return "none"
        text = block.get("spec") if isinstance(block, dict) else None
        if not isinstance(text, str):
            raise schema.Invalid("scenario", f"expected the scenario simulate writes: {block!r}")
        want = _parse_scenario(text, "scenario").describe()
        for key in sorted(set(want) | set(block)):
            if not schema.same(block.get(key, "(none)"), want.get(key, "(none)")):
                raise schema.unphysical(
                    f"scenario.{key}",
                    f"expected {schema.shown(want.get(key, '(none)'))} (what its spec {text!r} "
                    f"says), got {schema.shown(block.get(key, '(none)'))}",
                )
    if not isinstance(text, str):
        raise schema.Invalid(f"{where}.scenario", f"expected a scenario spec, got {text!r}")
    _parse_scenario(text, f"{where}.scenario")
    return text


def _parse_scenario(text: str, where: str):
    try:
        return parse_scenario(text)
    except UsageError as exc:
        raise schema.Invalid(where, f"expected a scenario simulate runs: {exc}") from None


def _with_scenario(fab: Fabric, text: str, where: str) -> Fabric:
    """The fabric with the scenario's links degraded, failed or shared, as simulate ran."""
    try:
        return apply_fabric(parse_scenario(text), fab)
    except (UsageError, ValueError, KeyError, IndexError) as exc:
        raise schema.Invalid(where, f"expected a scenario this fabric runs: {exc}") from None


def _block_of(doc: dict, r: dict, where: str) -> tuple[dict, str]:
    spec = r.get("fabric")
    if spec is None or spec == (doc.get("fabric") or {}).get("spec"):
        block = doc.get("fabric")
        if isinstance(block, dict):
            return block, "fabric"
    for j, block in enumerate(doc.get("fabrics") or []):
        if isinstance(block, dict) and block.get("spec") == spec:
            return block, f"fabrics[{j}]"
    raise schema.Invalid(f"{where}.fabric", f"expected one of the file's fabrics, got {spec!r}")


def _row(fab: Fabric, sums: LinkSums, text: str, r: dict, placement: dict, where: str) -> None:
    p, seeds = r["ranks"], r["time_s_seeds"]
    scheduled(r["algorithm"], f"{where}.algorithm")
    if p < 2 or r["bytes"] <= 0:
        return
    options = (r.get("packet") or {}).get("options") or {}
    delays = options.get("link_delay")
    latency = not (delays or r.get("link-delay"))
    if delays and isinstance(delays, dict) and not r.get("link-delay"):
        # the links' latency as the row ran them: its named delays, the fabric's elsewhere
        # (any --link-delay dropped every hop from the floors: twelfth attack, L-H29)
        fab, latency = packet_floor.row_delayed(fab, delays, where), True
    sc = parse_scenario(text)
    placed = _placements(fab, r, placement, seeds, sc, where)
    busy.check_placement(fab, placed, r, sc.kind, where)  # R-H3
    bounds, jobs = [], [Job(fab, h, r["algorithm"], int(r["bytes"])) for h in placed]
    for host_of, job in zip(placed, jobs, strict=True):
        try:
            key = id(fab), host_of.tobytes()  # a placement's closest pair, once a check
            if _CLOSEST.get(key, (None,))[0] is not fab:  # the entry keeps fab (its id) alive
                _CLOSEST[key] = fab, closest_pair_s(job)
            floor = latency_floor_s(job, latency, _CLOSEST[key][1])  # steps' alpha and hops
            bounds.append(max(lower_bound_s(job, latency=latency, sums=sums), floor))
            key = (*key, r["algorithm"], latency)  # the longest chain, if few messages
            if _CLOSEST.get(key, (None,))[0] is not fab and len(_CLOSEST) < CRITICAL_RUNS:
                _CLOSEST[key] = fab, critical_path_s(job, latency)
            hit = _CLOSEST.get(key, (None, None))
            bounds[-1] = max(bounds[-1], (hit[0] is fab and hit[1]) or 0.0)
        except (UsageError, ValueError, TypeError, KeyError) as exc:
            raise schema.Invalid(where, f"expected a job simulate runs: {exc}") from None
    slack = clock_slack_s(jobs[0], "packet" if "packet" in r else "")  # ns-3's nanoseconds
    bounds = [max(b - slack, 0.0) for b in bounds]
    for i, t in enumerate(seeds):
        _at_least(f"{where}.time_s_seeds[{i}]", t, bounds[i] if i < len(bounds) else min(bounds))
    ideal = min(ideal_floor_s(j, latency) for j in jobs)
    _at_least(f"{where}.ideal_s", r["ideal_s"], max(ideal - slack, 0.0))
    busy.check_links(jobs, sums, r, where)
    packet_floor.check_row(fab, jobs, sums, r, where)
    if isinstance(r.get("jobs"), dict):
        _neighbour(fab, sums, r, sc, placed, latency, where, min(bounds))


def _placements(fab, r: dict, placement: dict, seeds, sc, where: str) -> list:
    """The first job's endpoints for each seed whose placement differs (random, scatter: the
    first :data:`SEED_CAP` seeds; else one)."""
    per_host = r.get("ranks-per-host", placement.get("ranks_per_host", 1))
    mode = r.get("placement", placement.get("mode", "packed"))
    first = r.get("placement-seed", placement.get("placement_seed", 0))
    redrawn = mode in ("random", "scatter") or sc.values.get("placement") == "random"
    draws = min(len(seeds), SEED_CAP) if redrawn else 1
    try:
        return [
            place(r["ranks"], fab, int(per_host), str(mode), int(first) + i)
            for i in range(max(draws, 1))
        ]
    except (UsageError, ValueError, TypeError, KeyError, OverflowError) as exc:  # (V-H9)
        raise schema.Invalid(where, f"expected a job simulate runs: {exc}") from None


def _neighbour(fab, sums, r, sc, placed, latency, where, first: float) -> None:
    """A neighbour row's jobs: the second what its scenario says it was (its start too),
    the first starting at 0; neither faster alone or together than its own bound (the
    least over the seeds' placements: ``jobs`` is the median seed's; ``first``: the first
    job's)."""
    if sc.kind != "neighbour":
        raise schema.Invalid(
            f"{where}.jobs", f"expected jobs only with a neighbour, got {sc.spec!r}"
        )
    nb, v = r["jobs"].get("neighbour"), sc.values
    if not isinstance(nb, dict):
        raise schema.Invalid(f"{where}.jobs.neighbour", f"expected the second job, got {nb!r}")
    want = {
        "ranks": v["ranks"],
        "algorithm": v["algorithm"] or r["algorithm"],
        "bytes": v["bytes"] if v["bytes"] is not None else r["bytes"],
        "start_s": v["start_s"],
    }
    one = r["jobs"].get("first") if isinstance(r["jobs"].get("first"), dict) else {}
    if not schema.same(one.get("start_s"), 0.0):
        got = schema.shown(one.get("start_s"))
        raise schema.unphysical(f"{where}.jobs.first.start_s", f"expected 0, got {got}")
    for key in ("alone_s", "together_s"):
        _at_least(f"{where}.jobs.first.{key}", one.get(key), first)
    for key, value in want.items():
        if not schema.same(nb.get(key), value):
            raise schema.unphysical(
                f"{where}.jobs.neighbour.{key}",
                f"expected {schema.shown(value)} (what the scenario {sc.spec!r} runs), got "
                f"{schema.shown(nb.get(key))}",
            )
    bounds, apart = [], []
    for i, host_of in enumerate(placed):
        try:
            hosts = place_neighbour(sc, fab, host_of, i)
            mine, theirs = busy.links_of(fab, host_of), busy.links_of(fab, hosts)
            apart.append(mine is not None and theirs is not None and not mine & theirs)
            job = Job(fab, hosts, want["algorithm"], int(want["bytes"]))
            bounds.append(lower_bound_s(job, latency=latency, sums=sums))
        except (UsageError, ValueError, TypeError, KeyError) as exc:
            raise schema.Invalid(
                f"{where}.jobs.neighbour", f"expected a job simulate runs: {exc}"
            ) from None
    for key in ("alone_s", "together_s"):
        _at_least(f"{where}.jobs.neighbour.{key}", nb.get(key), min(bounds))
    late = schema.is_number(one.get("alone_s")) and want["start_s"] >= one["alone_s"]
    for name, job in (("first", one), ("neighbour", nb)):  # sharing no time or no link
        if (all(apart) or late) and not schema.same(job.get("together_s"), job.get("alone_s")):
            why = "they share no link" if all(apart) else "the neighbour starts after it ends alone"
            raise schema.unphysical(
                f"{where}.jobs.{name}.together_s",
                f"expected its alone_s {schema.shown(job.get('alone_s'))} ({why}), got "
                f"{schema.shown(job.get('together_s'))}",
            )


def _at_least(where: str, t, bound: float) -> None:
    if not schema.is_finite(t) or t < bound * (1 - RTOL):
        raise schema.unphysical(
            where,
            f"expected at least {bound:.6g} s (the job's lower bound on this fabric: "
            "alpha + the bytes a rank, a host, a leaf or a pod must send at its links' "
            f"rate + hop latency), got {schema.shown(t)}",
        )


def _steps(doc: dict, runs: _Runs) -> None:
    """A ``step`` block's rows and timeline held to their buckets' bounds, on the fabric
    each row ran on: ``comm_s`` (every bucket's collectives, each alone) at least the sum
    of their bounds; ``step_s`` at least ``compute_s`` + the last bucket's first collective
    (it is ready when backward ends), + every bucket's with no overlap; each timeline
    collective at least its own. A sweep row of a workload other than the block's is held
    to its spec's buckets (a workload file since moved: not held)."""
    step = doc.get("step")
    run = _run_block(doc)
    if not isinstance(step, dict):
        return
    head = block_workload(step.get("workload"), "step.workload")

    rows, bases = step.get("rows") or [], {}
    if run is not None:  # its buckets and compute, as simulate --run built the step
        bases[f"--run {doc['run']['path']}"] = run
    first = runs.of(rows[0], "step.rows[0]")[2] if rows else "none"

    def workload_of(i: int, row: dict):
        """The row's workload (a sweep row's own), its scenario applied: from its spec; as
        the block says where that is no spec (``--run``) and the row's scenario is the
        block's; None where neither is known."""
        where, tag = f"step.rows[{i}]", row.get("workload")
        spec, text = head.spec if tag is None else tag, runs.of(row, where)[2]
        if tag is None and isinstance(row.get("run"), str):  # a sweep's run axis: its own
            spec = f"--run {row['run']}"
        if spec not in bases:  # a sweep's workload must parse; the block's may not (--run)
            bases[spec] = None
            with contextlib.suppress(*([schema.Invalid] if tag is None else [])):
                bases[spec] = spec_workload(spec, where)
        if bases[spec] is not None:
            with contextlib.suppress(UsageError):
                return apply_workload(parse_scenario(text), bases[spec], row.get("ranks", 0))
            return None
        for k, block in enumerate(step.get("workloads") or []):  # a sweep's, one per point
            if isinstance(block, dict) and (block.get("spec"), block.get("scenario")) == (
                spec,
                text,
            ):
                return block_workload(block, f"step.workloads[{k}]")
        return head if spec == head.spec and text == first else None

    own = workload_of(0, rows[0]) if rows else None
    if own is not None and own is not head:  # what the timeline draws (L-M10)
        agree("step.workload", head.describe(), own.describe(), 1.0)
    for i, row in enumerate(rows):
        where = f"step.rows[{i}]"
        w = workload_of(i, row)
        if w is None or row.get("ranks", 0) < 2:
            continue
        coll = collectives_of(w, row.get("algorithm"), where)
        sizes = w.sizes()
        bound, n, total = runs.bounds(row, where, coll), len(sizes), sum(sizes)
        comm = sum(a * n + c * total for a, c in bound.values())
        _at_least(f"{where}.comm_s", row.get("comm_s"), comm)
        a, c = bound[coll[0]]
        hidden = a + c * sizes[-1] if w.overlap else a * n + c * total
        _at_least(f"{where}.step_s", row.get("step_s"), row["compute_s"] + hidden)
    timeline = step.get("timeline")
    if isinstance(timeline, dict) and timeline.get("ranks", 0) >= 2:
        row = {"ranks": timeline["ranks"]}
        entries = timeline.get("buckets") or []
        colls = {x["collective"] for x in entries}
        for c in colls:
            scheduled(c, "step.timeline.collective")
        bound = runs.bounds(row, "step.timeline", colls)
        for j, x in enumerate(entries):
            a, c = bound[x["collective"]]
            spent = x["end_s"] - x["start_s"]
            _at_least(f"step.timeline.buckets[{j}]", spent, a + c * x["bytes"])
    check_rows(step, doc["results"], workload_of)  # after the bounds: a time named as such


def _run_block(doc: dict):
    """``simulate --run``'s ``run`` block held to the file (thirteenth attack, M-M3): its
    numbers bounded, its predictions what they and the results' times give
    (:func:`predict_steps`; a sweep's: its first point's rows); its workload, or None."""
    run = doc.get("run")
    if run is None:
        return None
    RUN_BLOCK(run, "run")
    preds, results = run["predictions"], doc["results"]
    if len(preds) > len(results) or ("sweep" not in doc and len(preds) != len(results)):
        raise schema.unphysical(
            "run.predictions", f"expected one per results row ({len(results)}), got {len(preds)}"
        )
    mine = {k: v for k, v in run.items() if k not in ("predictions", "assumption")}
    want = predict_steps(mine, results[: len(preds)])["predictions"]
    for i, (got, w) in enumerate(zip(preds, want, strict=True)):
        agree(f"run.predictions[{i}]", got, w, w["step_s"])
    return run_workload(run)
