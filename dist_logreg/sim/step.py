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

import dataclasses
import json
import math
from pathlib import Path

from dist_logreg import schema
from dist_logreg.collective import algorithms
from dist_logreg.errors import UsageError
from dist_logreg.sim.workload import MAX_BUCKETS, SYNCS, Workload, collectives, parse_workload

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


# --- reading a step block back (``report``, through ``sim/recheck.py``) ---------------------


def block_workload(block, where: str) -> Workload:
    """The workload a ``step.workload`` block describes (its own numbers, which the step
    ran with), its bucket count and bytes checked; a ``schema.Invalid`` if it is not one."""
    if not isinstance(block, dict):
        raise schema.Invalid(where, f"expected the step's workload, got {block!r}")
    names = [f.name for f in dataclasses.fields(Workload)]
    if not isinstance(block.get("bucket_sizes", []), list):  # null was a TypeError (V-H5)
        raise schema.Invalid(
            f"{where}.bucket_sizes",
            f"expected a list of byte counts, got {block['bucket_sizes']!r}",
        )
    try:
        w = Workload(**{k: block[k] for k in names if k in block})
        total = float(w.params) * float(w.dtype_bytes)  # counted before they are listed: a
        many = total / w.bucket_bytes if w.bucket_bytes and w.bucket_bytes > 0 else 1.0
        if w.bucket_sizes:  # its own list (bucket-sizes=1M,buckets=1 is 1 bucket: V-H1)
            many = len(w.bucket_sizes)
        if not (math.isfinite(total) and many <= MAX_BUCKETS):  # dtype of 1e300 (fuzzed)
            raise ValueError(f"a gradient of {total:g} B in up to {MAX_BUCKETS} buckets")
        sizes = w.sizes()
    except (TypeError, ValueError, OverflowError) as exc:
        raise schema.Invalid(where, f"expected a workload simulate runs: {exc}") from None
    if len(sizes) > MAX_BUCKETS or any(not schema.is_finite(b) or b < 1 for b in sizes):
        raise schema.Invalid(where, f"expected 1 to {MAX_BUCKETS} buckets of >= 1 B")
    for key, want in (("buckets", len(sizes)), ("gradient_bytes", sum(sizes))):
        if not schema.same(block.get(key), want):
            raise schema.unphysical(
                f"{where}.{key}", f"expected {want} (its buckets), got {block.get(key)!r}"
            )
    return w


def spec_workload(spec, where: str) -> Workload | None:
    """A sweep row's workload from its spec; None where that names a file no longer there."""
    if not isinstance(spec, str):
        raise schema.Invalid(f"{where}.workload", f"expected a workload spec, got {spec!r}")
    try:
        return parse_workload(spec)
    except UsageError as exc:
        if Path(spec).suffix in (".toml", ".json") and not Path(spec).exists():
            return None
        raise schema.Invalid(f"{where}.workload", f"expected one simulate runs: {exc}") from None


def check_rows(step: dict, results: list[dict], workload_of) -> None:
    """:class:`schema.Invalid` for a step row or timeline that is not what its workload
    (``workload_of(i, row)``; None: not known) and the file's ``results`` give, as
    :func:`step_doc` made them: each row's ``step_s``, ``comm_s``, ``compute_s``,
    ``buckets`` from its buckets' collectives' times (the results rows of its point),
    ``exposed_s`` and ``comm_fraction`` from those, ``efficiency`` as :func:`efficiency`
    gives it over the rows (a sweep's ``slowdown`` set aside); the timeline's every bucket
    as :func:`step_row` schedules it."""
    rows = step.get("rows") or []
    for i, row in enumerate(rows):
        if row.get("scaling") not in ("weak", "strong"):
            raise schema.Invalid(
                f"step.rows[{i}].scaling", f"expected weak or strong, got {row.get('scaling')!r}"
            )
    again = [{k: v for k, v in r.items() if k != "slowdown"} for r in rows]
    efficiency(again)
    times = {(r.get("point"), r["algorithm"], r["bytes"], r["ranks"]): r["time_s"] for r in results}
    for i, row in enumerate(rows):
        step_s, compute = row["step_s"], row["compute_s"]
        exposed = max(0.0, step_s - compute)
        w, want = workload_of(i, row), {}
        if w is not None:
            mine, _ = _replay(w, row, times, f"step.rows[{i}]")
            want.update({k: mine[k] for k in ("compute_s", "buckets", "comm_s", "step_s")})
        want.update(exposed_s=exposed, comm_fraction=exposed / step_s if step_s > 0 else 0.0)
        want["efficiency"] = again[i]["efficiency"]
        agree(f"step.rows[{i}]", row, want, step_s)
    timeline = step.get("timeline")
    w = workload_of(0, rows[0]) if rows and isinstance(timeline, dict) else None
    if w is not None:
        tl = {**timeline, "point": rows[0].get("point")}
        _, buckets = _replay(w, tl, times, "step.timeline")
        got = timeline.get("buckets") or []
        if len(got) != len(buckets):
            raise schema.unphysical(
                "step.timeline.buckets", f"expected {len(buckets)} (its workload's), got {len(got)}"
            )
        for j, (x, y) in enumerate(zip(got, buckets, strict=True)):
            agree(f"step.timeline.buckets[{j}]", x, y, y["end_s"])


def _replay(w: Workload, row: dict, times: dict, where: str) -> tuple[dict, list]:
    """:func:`step_row` of ``row``'s ranks and algorithm from the results' times."""

    def time_of(c: str, b: int) -> float:
        key = (row.get("point"), c, b, row.get("ranks"))
        if key not in times:
            raise schema.Invalid(where, f"expected a results row of {c}, {b} B at {key[3]} ranks")
        return times[key]

    try:
        return step_row(w, row.get("ranks"), row.get("algorithm"), time_of)
    except (UsageError, TypeError, ValueError) as exc:
        raise schema.Invalid(where, f"expected a step simulate runs: {exc}") from None


def agree(where: str, got: dict, want: dict, scale: float) -> None:
    for key, value in want.items():
        have = got.get(key)
        same = (
            schema.is_finite(have)
            and math.isclose(have, value, rel_tol=1e-9, abs_tol=1e-12 * scale)
            if schema.is_number(value)
            else have == value
        )
        if not same:
            raise schema.unphysical(
                f"{where}.{key}",
                f"expected {schema.shown(value)} (what its workload and the results give), "
                f"got {schema.shown(have)}",
            )


def scheduled(name, where: str) -> None:
    """A ``schema.Invalid`` unless simulate has a schedule for the algorithm ``name``."""
    try:
        scheduled = algorithms.get(name).phases is not None
    except (ValueError, TypeError) as exc:
        raise schema.Invalid(where, f"{exc}") from None
    if not scheduled:  # the MPI library's choice: simulate has no schedule to replay
        choices = ", ".join(algorithms.scheduled_keys())
        raise schema.Invalid(where, f"expected one simulate runs ({choices}), got {name!r}")


def collectives_of(w, algorithm, where: str) -> tuple:
    """The collectives a step of ``w`` runs with ``algorithm``, each one simulate has a
    schedule for; a ``schema.Invalid`` naming ``where`` if not."""
    scheduled(algorithm, f"{where}.algorithm")
    try:
        coll = collectives(w, algorithm)
    except UsageError as exc:
        raise schema.Invalid(f"{where}.algorithm", f"{exc}") from None
    for c in coll:
        scheduled(c, f"{where}.algorithm")
    return coll
