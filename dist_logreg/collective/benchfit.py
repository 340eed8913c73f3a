"""From ``bench`` records to a fitted ``model.json``, with where the numbers came from.

Pure (numpy, no MPI): ``dist-logreg model fit`` runs it as a plain process, ``bench --fit``
and ``train --model auto`` on rank 0.
"""

from __future__ import annotations

import math
import os
import time

from dist_logreg.collective import algorithms
from dist_logreg.collective.costfit import Sample, fit
from dist_logreg.collective.schedule import Placement
from dist_logreg.errors import UsageError
from dist_logreg.files import read_json
from dist_logreg.schema import BENCH_FIELDS, Invalid, given_twice
from dist_logreg.units import format_bit_rate, format_seconds, parse_link_rate


def read_bench(paths: list[str]) -> list[dict]:
    """The records of one or more ``bench --out`` files (a JSON list, or ``{"records": [...]}``)."""
    records = []
    _refuse_repeats(paths)
    for path in paths:
        doc = read_json(path, "bench file")
        rows = doc.get("records") if isinstance(doc, dict) else doc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise UsageError(
                f"bench file {path}: expected the JSON `dist-logreg bench --out` writes "
                '({"records": [...]} or a list of records), '
                f"got {type(doc).__name__}"
            )
        if rows and all("p2p" in r for r in rows):
            raise UsageError(
                f"bench file {path}: a bench --p2p file (point-to-point latency and bandwidth "
                "per pair); model fit reads collective records (bench --allreduce, --collective)"
            )
        for i, r in enumerate(rows):
            missing = [k for k in ("algorithm", "bytes", "time_s", "world_size") if k not in r]
            if missing:
                raise UsageError(f"bench file {path}: record {i}: missing {', '.join(missing)}")
            problem = check_record(r) or wrong_record(r)
            if problem:
                raise UsageError(f"bench file {path}: record {i}: {problem}")
            records.append({**r, "_file": str(path)})
        twice = given_twice(rows)
        if twice:
            raise UsageError(f"bench file {path}: {twice}")
    return records


def wrong_record(r: dict) -> str | None:
    """The phrase for a record whose collective gave wrong results (its time measures no
    allreduce), None for ``wrong`` 0 or absent."""
    wrong = r.get("wrong")
    if isinstance(wrong, int) and not isinstance(wrong, bool) and wrong > 0:
        return (
            f"wrong: {wrong} elements differ from the exact result; the timing of a wrong "
            f"{r.get('collective', 'allreduce')} is no measurement (fix the implementation, "
            "then bench again)"
        )
    return None


def _refuse_repeats(paths: list[str]) -> None:
    """``UsageError`` if one file is given twice (by one name or two): it would count twice."""
    seen: dict[tuple[int, int] | str, str] = {}
    for path in paths:
        try:
            st = os.stat(path)
            key: tuple[int, int] | str = (st.st_dev, st.st_ino)
        except OSError:
            key = os.path.abspath(path)  # a missing file: read_bench names it below
        if key in seen:
            raise UsageError(
                f"bench file {path}: given twice (also as {seen[key]}); expected each bench "
                "file once (its records would count twice in the fit)"
            )
        seen[key] = str(path)


def record_key(rec: dict) -> str:
    """The algorithm a bench record fits: ``ring``, or ``reduce-scatter/ring`` for another
    collective's (the algorithm table's key)."""
    collective = rec.get("collective", "allreduce")
    return rec["algorithm"] if collective == "allreduce" else f"{collective}/{rec['algorithm']}"


#: Beyond these a measurement is not one: an allreduce of an hour, a petabyte, 10^7 ranks.
MAX_SECONDS, MAX_BYTES, MAX_RANKS = 3600.0, 1 << 50, 10**7
#: Below this a time is not a measurement: bench's clock reads whole nanoseconds.
MIN_SECONDS = 1e-9


def _number(v) -> float | None:
    """``v`` as a float if it is a JSON number (not a bool, not a string), else None."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def check_record(r: dict) -> str | None:
    """What is wrong with one bench record's measurements (None: nothing), as one phrase."""
    for key in ("time_s", "reduce_s"):
        if key == "reduce_s" and r.get(key) is None:
            continue
        v = _number(r[key])
        if v is None or not math.isfinite(v) or v <= 0:
            return f"{key}: expected a finite number of seconds > 0, got {r[key]!r}"
        if v > MAX_SECONDS:
            return f"{key}: expected at most {MAX_SECONDS:g} s for one call, got {v!r}"
        if key == "time_s" and v < MIN_SECONDS:  # no call is faster than the clock's tick
            return f"time_s: expected at least 1 ns for one call, got {v!r}"
    for key, checker in BENCH_FIELDS.items():
        if key in r:
            try:
                checker(r[key], key)
            except Invalid as exc:
                return str(exc)
    n = _number(r["bytes"])
    if n is None or not 1 <= n <= MAX_BYTES or n != int(n):
        return f"bytes: expected a whole number of bytes from 1 to 2^50, got {r['bytes']!r}"
    p = r["world_size"]
    if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= MAX_RANKS:
        return f"world_size: expected an integer from 1 to {MAX_RANKS}, got {p!r}"
    host_of = r.get("host_of_rank")
    if host_of is not None and (
        not isinstance(host_of, list)
        or len(host_of) != p
        or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 0 for h in host_of)
    ):
        return f"host_of_rank: expected {p} host numbers >= 0 (one per rank), got {host_of!r:.60}"
    if not isinstance(r["algorithm"], str):
        return f"algorithm: expected a name, got {r['algorithm']!r}"
    c, known = r.get("collective", "allreduce"), algorithms.BUSBW_FACTORS
    if not isinstance(c, str) or c not in known:
        return f"collective: expected one of {', '.join(known)}, got {c!r}"
    try:  # a name the algorithm table lacks was a ValueError traceback in the fit
        algorithms.get(record_key(r))
    except (ValueError, KeyError) as exc:
        return f"algorithm: {str(exc).strip(chr(34))}"
    return None


def placement_of(rec: dict, cluster: dict | None = None) -> Placement:
    """Where the ranks of a bench record sat (one host when the record does not say)."""
    p = int(rec["world_size"])
    host_of = tuple(rec.get("host_of_rank") or [0] * p)
    leaf_of, factor = None, 1.0
    if cluster and cluster.get("topology") == "two-tier" and rec.get("hosts"):
        leaves = cluster.get("leaf_of") or {}
        leaf_of = tuple(int(leaves.get(h, 0)) for h in rec["hosts"])
        if cluster.get("rate") and cluster.get("uplink_rate"):
            factor = parse_link_rate(cluster["rate"]) / parse_link_rate(cluster["uplink_rate"])
    rpn = rec.get("ranks_per_node")
    node_of = tuple(r // rpn for r in range(p)) if rpn else None
    return Placement(host_of, leaf_of, factor, node_of)


def fit_records(
    records: list[dict],
    breakpoints: list[int] | None = None,
    segments: int | None = None,
    cluster: dict | None = None,
    link_rate: str | None = None,
    max_segments: int = 3,
) -> dict:
    """``model.json`` fitted to bench records, with its provenance under ``source``."""
    samples, reduce = [], {}
    for r in records:
        if r["world_size"] < 2:
            continue  # nothing crosses a link at one rank
        samples.append(Sample(record_key(r), r["bytes"], placement_of(r, cluster), r["time_s"]))
        if r.get("reduce_s"):
            reduce[r["bytes"]] = r["reduce_s"]
    if not samples:
        raise UsageError(
            "expected allreduce measurements at 2 or more ranks to fit, got none "
            f"(of {len(records)} records)"
        )
    model = fit(samples, sorted(reduce.items()), breakpoints, segments, max_segments)
    model["source"] = source(records, samples, cluster, link_rate)
    return model


def source(records, samples, cluster, link_rate) -> dict:
    """Where a fit came from: files, ranks, hosts, MPI library, link, date."""
    rate = link_rate or (cluster or {}).get("rate")
    hosts = sorted({s.place.hosts for s in samples})
    per_host = sorted({s.place.ranks // s.place.hosts for s in samples})
    libs = sorted({r["mpi_library"] for r in records if r.get("mpi_library")})
    return {
        "files": sorted({r["_file"] for r in records if "_file" in r}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "algorithms": sorted({s.algorithm for s in samples}),
        "world_sizes": sorted({s.place.ranks for s in samples}),
        "hosts": hosts,
        "ranks_per_host": per_host,
        "host_names": sorted({h for r in records for h in r.get("hosts") or []}),
        "bytes": [min(s.nbytes for s in samples), max(s.nbytes for s in samples)],
        "dtype": sorted({r.get("dtype", "?") for r in records}),
        "mpi_library": libs[0] if len(libs) == 1 else libs or None,
        "link_rate": rate,
        "link_rate_bits": parse_link_rate(rate) if rate else None,
        "topology": (cluster or {}).get("topology")
        or ("unknown" if max(hosts) > 1 else "one host"),
        "cluster": cluster,
    }


def _us(s: float) -> str:
    return format_seconds(s)


def _rate(beta: float) -> str:
    return format_bit_rate(8 / beta, ".4g") if beta > 0 else "inf"


def format_fit(model: dict) -> list[str]:
    """The fit, readable: breakpoints, parameters per algorithm and segment, residuals."""
    bps = model["breakpoints"]
    edges = ["0", *[f"{b:,}" for b in bps], "inf"]
    src = model.get("source", {})
    lines = [
        f"# cost model: {len(bps) + 1} size segment(s)"
        + (f", breakpoints {bps} (message bytes)" if bps else "")
        + f"; world sizes {src.get('world_sizes')}, hosts {src.get('hosts')}, "
        f"link {src.get('link_rate') or 'unknown'}, {src.get('topology')}",
    ]
    for k, g in enumerate(model["gamma"]):
        lines.append(
            f"#   gamma [{edges[k]}, {edges[k + 1]}) B: {g['s_per_byte'] * 1e9:.4f} ns/B "
            f"(local reduction, {1 / g['s_per_byte'] / 1e9 if g['s_per_byte'] else 0:.2f} GB/s)"
        )
    for name, alg in model["algorithms"].items():
        res = alg["residuals"]
        lines.append(
            f"{name}: {alg['formula']}; residuals median {100 * res['median_rel']:.1f}%, "
            f"max {100 * res['max_rel']:.1f}% over {res['rows']} sizes"
        )
        for k, seg in enumerate(alg["segments"]):
            parts = [
                f"{link} alpha {_us(v['alpha_s'])} beta {v['beta_s_per_byte'] * 1e9:.4f} ns/B "
                f"(= {_rate(v['beta_s_per_byte'])})"
                for link, v in seg.items()
                if v is not None
            ]
            lines.append(
                f"  [{edges[k]}, {edges[k + 1]}) B: " + ("; ".join(parts) or "not measured")
            )
    return lines
