"""A ``simulate.json``'s step block read back (``report``, through :mod:`.recheck`): its
workload rebuilt from the block's own numbers, each row's step replayed from its
collectives' times and held to the row."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from dist_logreg import schema
from dist_logreg.collective import algorithms
from dist_logreg.errors import UsageError
from dist_logreg.sim.step import efficiency, step_row
from dist_logreg.sim.workload import MAX_BUCKETS, Workload, collectives, parse_workload


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
