"""One training step of a workload: its buckets' collectives against its compute.

``step_row(w, ranks, algorithm, time_of)`` takes ``time_of(collective, nbytes) -> s`` (an
engine's time for one bucket's collective, run alone) and returns the step's numbers and
its per-bucket timeline (:data:`STEP_UNITS`); :func:`step_doc` does it for every rank
count and algorithm of a ``simulate`` run and adds the scaling efficiency.

The model (:mod:`.workload`): the buckets' collectives run one after another on one stream
(DDP's): bucket ``i``'s starts at ``max(ready_i, end_{i-1})`` with overlap, or after the
backward pass without; ready times are spread uniformly over the backward pass by bytes.
"""

from __future__ import annotations

import json

from dist_logreg import schema
from dist_logreg.sim.workload import SYNCS, Workload, collectives

STEP_UNITS = {
    "step_s": "s (forward + max(backward end, last collective end) + optimizer [+ allgathers])",
    "compute_s": "s (forward + backward + optimizer of one rank)",
    "comm_s": "s (every bucket's collectives, summed, each as if alone on the fabric)",
    "exposed_s": "s (step_s - compute_s: the communication not hidden behind compute)",
    "comm_fraction": "exposed_s / step_s",
    "efficiency": "per-rank throughput against the smallest rank count (weak: t0/t; "
    "strong: t0 p0 / (t p))",
}


def _stream(sizes, ready, durations, start_at: float) -> list[tuple[float, float]]:
    """(start, end) of each collective on one stream: none before its ready time, none
    before the previous one ends, none before ``start_at``."""
    out, free = [], start_at
    for r, d in zip(ready, durations, strict=True):
        begin = max(r, free)
        free = begin + d
        out.append((begin, free))
    return out


def step_row(w: Workload, ranks: int, algorithm: str, time_of) -> tuple[dict, list]:
    """The step of ``w`` on ``ranks`` ranks with ``algorithm``: (row, timeline)."""
    fwd, bwd, opt = w.compute(ranks)
    sizes = w.sizes()
    total = float(sum(sizes))
    through, ready = 0.0, []
    for b in sizes:  # a bucket is ready when backward has produced its last gradient
        through += b
        ready.append(fwd + bwd * through / total)
    coll = collectives(w, algorithm)
    first = [time_of(coll[0], b) for b in sizes]
    spans = _stream(sizes, ready, first, fwd if w.overlap else fwd + bwd)
    end = max(fwd + bwd, spans[-1][1]) + opt
    timeline = [
        {"bucket": i, "collective": coll[0], "bytes": b, "ready_s": r, "start_s": s, "end_s": e}
        for i, (b, r, (s, e)) in enumerate(zip(sizes, ready, spans, strict=True))
    ]
    comm = sum(first)
    if w.sync == SYNCS[1]:  # the parameters' allgather after the update (ZeRO / FSDP)
        second = [time_of(coll[1], b) for b in sizes]
        gather = _stream(sizes, [end] * len(sizes), second, end)
        timeline += [
            {
                "bucket": i,
                "collective": coll[1],
                "bytes": b,
                "ready_s": end,
                "start_s": s,
                "end_s": e,
            }
            for i, (b, (s, e)) in enumerate(zip(sizes, gather, strict=True))
        ]
        ag = sum(second)
        comm += ag
        # overlap: the next forward pass waits only for what the allgathers leave over
        end += max(0.0, ag - fwd) if w.overlap else ag
    compute = fwd + bwd + opt
    row = {
        "ranks": int(ranks),
        "algorithm": algorithm,
        "step_s": end,
        "compute_s": compute,
        "comm_s": comm,
        "exposed_s": max(0.0, end - compute),
        "comm_fraction": max(0.0, end - compute) / end if end > 0 else 0.0,
        "buckets": len(sizes),
        "scaling": "strong" if w.strong else "weak",
    }
    return row, timeline


def step_doc(w: Workload, results: list[dict]) -> dict:
    """The ``step`` block of ``simulate.json`` from the per-bucket ``results`` rows (their
    median seed's ``time_s`` per collective, bytes and ranks)."""
    times = {(r["algorithm"], r["bytes"], r["ranks"]): r["time_s"] for r in results}
    ranks = sorted({r["ranks"] for r in results})
    algs = []
    for r in results:
        for a in _allreduce_of(w, r["algorithm"]):
            if a not in algs:
                algs.append(a)
    rows, timeline = [], None
    for alg in algs:
        for p in ranks:
            row, tl = step_row(w, p, alg, lambda c, b, p=p: times[(c, b, p)])
            rows.append(row)
            if p == ranks[-1] and timeline is None:
                timeline = {"ranks": p, "algorithm": alg, "buckets": tl}
    efficiency(rows)
    return {"workload": w.describe(), "units": STEP_UNITS, "rows": rows, "timeline": timeline}


#: The keys of a step row that are numbers of the step, not what it is of.
_NUMBERS = {
    "ranks",
    "step_s",
    "compute_s",
    "comm_s",
    "exposed_s",
    "comm_fraction",
    "buckets",
    "efficiency",
    "point",
}


def efficiency(rows: list[dict]) -> None:
    """Each row's ``efficiency`` against the row of the fewest ranks among those that differ
    from it in the rank count alone (the same algorithm, fabric, workload...)."""
    base: dict = {}
    for r in rows:
        key = json.dumps({k: v for k, v in r.items() if k not in _NUMBERS}, sort_keys=True)
        if key not in base or r["ranks"] < base[key]["ranks"]:
            base[key] = r
    for r in rows:
        key = json.dumps({k: v for k, v in r.items() if k not in _NUMBERS}, sort_keys=True)
        b = base[key]
        weak = b["step_s"] / r["step_s"] if r["step_s"] > 0 else 1.0
        r["efficiency"] = weak * (b["ranks"] / r["ranks"] if r["scaling"] == "strong" else 1.0)


def _allreduce_of(w: Workload, collective: str) -> list[str]:
    """The allreduce a results row's collective serves (itself, or the allreduce whose
    reduce-scatter half it is)."""
    from dist_logreg.sim.workload import HALVES

    if w.sync == SYNCS[0]:
        return [collective]
    return [a for a in HALVES if collectives(w, a)[0] == collective]


def _ms(s: float) -> str:
    """A column of the step table: 12 wide, and a space before it however long (a step of
    1000 s ran into its neighbours: twelfth attack, L-L4)."""
    return " " + f"{s * 1e3:.3f}ms".rjust(11)


def step_lines(step: dict) -> list[str]:
    """The console table of a ``step`` block."""
    w = step["workload"]
    out = [
        "",
        f"Training step ({w['spec']}): {w['buckets']} bucket(s), {w['gradient_bytes']:,} B of "
        f"gradient, sync {w['sync']}, overlap {'yes' if w['overlap'] else 'no'}",
        f"{'algorithm':<22}{'ranks':>7}{'step':>12}{'compute':>12}{'comm':>12}{'exposed':>12}"
        f"{'comm %':>8}{'eff.':>7}",
    ]
    for r in step["rows"]:
        what = f"{r['workload']} " if "workload" in r else ""
        out.append(
            f"{what + r['algorithm']:<22}{r['ranks']:>7}"
            + "".join(_ms(r[k]) for k in ("step_s", "compute_s", "comm_s", "exposed_s"))
            + f"{100 * r['comm_fraction']:>7.1f}%"
            f"{r['efficiency']:>7.2f}"
        )
    return out


def neighbour_lines(doc: dict) -> list[str]:
    """With ``--scenario neighbour:...``: per result, each job alone, together, slowdown."""
    out = []
    for r in doc.get("results", []):
        if "jobs" not in r:
            continue
        out.append("")
        for name, j in r["jobs"].items():
            where = (
                f", {j['placement']}, from {j['start_s'] * 1e3:g} ms" if name == "neighbour" else ""
            )
            out.append(
                f"{name + ' job':<15} {j['algorithm']} {j['bytes']:,} B on {j['ranks']} ranks "
                f"({j['hosts']} hosts{where}): alone {j['alone_s'] * 1e3:.4f} ms, together "
                f"{j['together_s'] * 1e3:.4f} ms, slowdown {j['slowdown']:.3f}"
            )
    return out


def slowdown(rows: list[dict], value: str) -> None:
    """Each row's ``slowdown``: its ``value`` over the same row's with ``scenario`` none
    (running alone on the fabric as described); rows without such a twin get none."""

    def twin(r):
        return json.dumps(
            {k: v for k, v in r.items() if k == "ranks" or k not in _NUMBERS | _SKIP},
            sort_keys=True,
            default=str,
        )

    alone = {twin(r): r[value] for r in rows if r.get("scenario") == "none"}
    for r in rows:
        base = alone.get(twin(r))
        if base is not None and "scenario" in r:
            r["slowdown"] = r[value] / base if base > 0 else 1.0


def check_slowdowns(rows: list, value: str, where: str) -> None:
    """A sweep row's ``slowdown`` is its ``value`` over its twin's with scenario none, as
    the sweep gave it (0, 0.001 and 1000 were drawn: twelfth attack, L-M11); a neighbour
    row's own is its jobs' (``report/neighbour.py``)."""
    again = [{k: v for k, v in r.items() if k != "slowdown"} for r in rows]
    try:
        slowdown(again, value)
    except (TypeError, KeyError, ZeroDivisionError):
        return  # the rows' own checks name what is wrong with them
    for i, (r, mine) in enumerate(zip(rows, again, strict=True)):
        if "jobs" in r or ("slowdown" not in r and "slowdown" not in mine):
            continue
        want, got = mine.get("slowdown"), r.get("slowdown")
        if want is None or not schema.is_number(got) or abs(got - want) > 1e-9 * max(want, 1e-12):
            raise schema.unphysical(
                f"{where}[{i}].slowdown",
                f"expected its {value} over its twin's with scenario none"
                + (f" ({want:g})" if want is not None else " (it has none)")
                + f", got {schema.shown(got)}",
            )


#: What a row's twin may differ in besides its numbers: the scenario, and per-seed numbers.
_SKIP = {
    "scenario",
    "slowdown",
    "time_s",
    "time_s_worst",
    "time_s_seeds",
    "ideal_s",
    "ratio_to_ideal",
    "algbw",
    "busbw",
    "bottleneck",
    "max_flows_per_uplink",
    "collisions",
    "cross_leaf_bytes",
    "links",
    "packet",
    "phase_sync_s",
}
