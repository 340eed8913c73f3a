"""A fitted cost model (``model.json``): what it holds, and what it predicts.

Pure (numpy, no MPI). Parameters per algorithm and per size segment: ``alpha`` (seconds per
message) and ``beta`` (seconds per byte on the bottleneck link) for traffic inside a host
(``intra``) and between hosts (``inter``); ``gamma`` (seconds per byte reduced) per segment,
measured by the local reduction micro-benchmark. Segments split message sizes where the
transport changes protocol (eager vs rendezvous); for ``mpi`` they split the payload.

A prediction walks the algorithm's steps on a placement
(:func:`~dist_logreg.collective.schedule.shape`) and adds, per step,
``alpha + load * n * beta + reduce * n * gamma`` with the parameters of the step's segment
and kind of link. ``link_rate`` (bits/s) replaces the inter-host ``beta``
with that link's serialization time, keeping the fitted per-message overhead ``alpha``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from dist_logreg.collective.schedule import Placement, Step, shape
from dist_logreg.errors import UsageError
from dist_logreg.files import read_json

#: Steps of an algorithm on a placement, kept: a table or a crossover search asks for the
#: same ones at many sizes.
_steps = lru_cache(maxsize=64)(shape)

FORMAT = "dist-logreg cost model"
VERSION = 1
#: The kinds of link a segment has parameters for.
LINKS = ("intra", "inter")
#: Columns of the design matrix, per segment.
COLUMNS = ("alpha_intra", "beta_intra", "alpha_inter", "beta_inter", "gamma")


def segment_of(size: float, breakpoints) -> int:
    """Index of the segment holding a message of ``size`` bytes (``size >= bp`` -> above)."""
    return int(np.searchsorted(np.asarray(breakpoints, dtype=float), size, side="right"))


def design(steps: list[Step], n: float, breakpoints) -> np.ndarray:
    """``(segments, 5)`` coefficients of one allreduce of ``n`` bytes (columns ``COLUMNS``)."""
    out = np.zeros((len(breakpoints) + 1, len(COLUMNS)))
    for s in steps:
        seg = segment_of(s.msg * n, breakpoints)
        j = 2 if s.inter else 0
        out[seg, j] += s.repeat
        out[seg, j + 1] += s.repeat * s.load * n
        out[seg, 4] += s.repeat * s.reduce * n
    return out


def load(path: str | Path) -> dict:
    """Read and check ``model.json``; errors name the file and what is wrong."""
    path = Path(path)
    doc = read_json(path, "model file")
    if isinstance(doc, dict) and "records" in doc and "format" not in doc:
        raise UsageError(
            f"model file {path}: a bench JSON (its records), not a cost model; fit it first: "
            f"dist-logreg model fit {path} --out model.json"
        )
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UsageError(
            f"model file {path}: expected a cost model written by `dist-logreg model fit` "
            f"(format {FORMAT!r}), got {str(doc)[:60]!r}"
        )
    if doc.get("version") != VERSION:
        raise UsageError(
            f"model file {path}: expected version {VERSION}, got {doc.get('version')!r}"
        )
    problem = check(doc)
    if problem:
        raise UsageError(f"model file {path}: {problem}")
    return doc


#: No parameter of a real fabric is near this: a second per message, per byte or reduced byte.
MAX_PARAM = 1.0


#: The least beta a model may hold: a link of 1 PB/s (NVLink's is about 1 ns per KB); a fit
#: of 0 is refused by ``model fit``, and a file of 0 predicted 1 GiB in 6.9 us (twelfth
#: attack, L-H14).
MIN_BETA = 1e-15


def param_problem(v, key: str) -> str | None:
    """What is wrong with one parameter (seconds per message or per byte), or None."""
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
        return f"{key}: expected a finite number >= 0, got {v!r}"
    if v > MAX_PARAM:
        return f"{key}: expected at most {MAX_PARAM:g} (seconds per message or byte), got {v!r}"
    return None


def _check_links(seg, key: str) -> str | None:
    if not isinstance(seg, dict):
        return f"{key}: expected an object with intra and inter, got {seg!r:.40}"
    for link in LINKS:
        v = seg.get(link)
        if v is None:
            continue
        if not isinstance(v, dict) or not {"alpha_s", "beta_s_per_byte"} <= set(v):
            return f"{key}.{link}: expected an object with alpha_s and beta_s_per_byte (or null), got {v!r:.40}"  # noqa: E501
        for name in ("alpha_s", "beta_s_per_byte"):
            if why := param_problem(v[name], f"{key}.{link}.{name}"):
                return why
        if v["beta_s_per_byte"] < MIN_BETA:  # what model fit refuses to write (L-H14)
            return (
                f"{key}.{link}.beta_s_per_byte: expected at least {MIN_BETA:g} s/B (a link "
                f"of at most 1 PB/s; 0 is an infinite bandwidth), got {v['beta_s_per_byte']!r}"
            )
    return None


def check(doc: dict) -> str | None:
    """The first thing wrong in a cost model (``key: expected X, got Y``), or None.

    Every number a prediction uses must be finite, non-negative and sane, so that no
    command that reads a model predicts ``nan`` or a negative time, or fails after its work.
    """
    bps = doc.get("breakpoints")
    if not isinstance(bps, list):
        return f"breakpoints: expected a list of message sizes in bytes, got {bps!r:.40}"
    for i, b in enumerate(bps):
        if not isinstance(b, int) or isinstance(b, bool) or b < 1 or (i and b <= bps[i - 1]):
            return f"breakpoints[{i}]: expected a whole number of bytes >= 1, above the one before, got {b!r}"  # noqa: E501
    segments = len(bps) + 1
    gamma = doc.get("gamma")
    if not isinstance(gamma, list) or len(gamma) != segments:
        return f"gamma: expected a list of {segments} size segment(s), got {gamma!r:.40}"
    for k, g in enumerate(gamma):
        if not isinstance(g, dict):
            return f"gamma[{k}]: expected an object with s_per_byte, got {g!r:.40}"
        if why := param_problem(g.get("s_per_byte"), f"gamma[{k}].s_per_byte"):
            return why
        over, sizes = g.get("overhead_s"), g.get("sizes")  # (S-H4's neighbours)
        if over is not None and (why := param_problem(over, f"gamma[{k}].overhead_s")):
            return why
        if sizes is not None and not (isinstance(sizes, int) and not isinstance(sizes, bool)):
            return f"gamma[{k}].sizes: expected a whole number of sizes >= 0, got {sizes!r}"
        if sizes is not None and sizes < 0:
            return f"gamma[{k}].sizes: expected a whole number of sizes >= 0, got {sizes!r}"
    algs = doc.get("algorithms")
    if not isinstance(algs, dict) or not algs:
        return f"algorithms: expected an object of fits by algorithm name, got {algs!r:.40}"
    for name, alg in algs.items():
        segs = alg.get("segments") if isinstance(alg, dict) else None
        if not isinstance(segs, list) or len(segs) != segments:
            return (
                f"algorithms.{name}.segments: expected {segments} size segment(s), got {segs!r:.40}"  # noqa: E501
            )
        for k, seg in enumerate(segs):
            if why := _check_links(seg, f"algorithms.{name}.segments[{k}]"):
                return why
        if all(seg.get(link) is None for seg in segs for link in LINKS):
            return f"algorithms.{name}.segments: expected fitted parameters, got none"
        if why := _check_residuals(alg.get("residuals"), f"algorithms.{name}.residuals"):
            return why
    return _check_source(doc.get("source"))


def _check_residuals(res, key: str) -> str | None:
    """A fit's residuals as ``model fit`` writes them: its median and worst relative error
    (median <= worst) over a whole number of rows ("over nan measurements", a median of
    1e300 above the worst were printed: seventeenth attack, S-H4)."""
    if res is None or res == {}:  # not recorded (as model predict says)
        return None
    if not isinstance(res, dict):
        return f"{key}: expected an object of median_rel, max_rel and rows, got {res!r:.40}"
    for name in ("median_rel", "max_rel"):  # both, as model fit writes them (null: U-H14)
        v = res.get(name)
        if not (_plain(v) and 0 <= v <= MAX_REL):
            return f"{key}.{name}: expected a relative error from 0 to {MAX_REL:g}, got {v!r}"
    low, high = res.get("median_rel"), res.get("max_rel")
    if low is not None and high is not None and low > high:
        return f"{key}.median_rel: expected at most max_rel {high!r}, got {low!r}"
    rows = res.get("rows")
    if not (isinstance(rows, int) and not isinstance(rows, bool)):
        return f"{key}.rows: expected a whole number of measurements >= 1, got {rows!r}"
    if not 1 <= rows <= 10**9:
        return f"{key}.rows: expected a whole number of measurements >= 1, got {rows!r}"
    return None


#: The largest relative residual a fit may report (1e6 x its measurement).
MAX_REL = 1e6


def _plain(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_source(src) -> str | None:
    if src is None:
        return None
    if not isinstance(src, dict):
        return f"source: expected an object, got {src!r:.40}"
    rate = src.get("link_rate_bits")
    if rate is not None and (not isinstance(rate, (int, float)) or not 0 < rate < math.inf):
        return f"source.link_rate_bits: expected a link rate in bits/s > 0 or null, got {rate!r}"
    for key in ("world_sizes", "bytes"):
        v = src.get(key)
        if v is not None and (
            not isinstance(v, list)
            or not all(isinstance(x, (int, float)) and 1 <= x < math.inf for x in v)
        ):
            return f"source.{key}: expected a list of numbers >= 1, got {v!r:.40}"
    return None


def save(model: dict, path: str | Path) -> None:
    """Write ``model.json`` as strict JSON (a non-finite number is a bug: ``ValueError``)."""
    Path(path).write_text(json.dumps(model, indent=2, allow_nan=False) + "\n")


def algorithm_params(model: dict, name: str) -> dict:
    """The fitted parameters of ``name``; a ``UsageError`` naming what the model has."""
    algs = model["algorithms"]
    if name not in algs:
        raise UsageError(
            f"the cost model has no fit for {name!r}; it has {', '.join(algs) or 'none'} "
            "(bench that algorithm and fit again)"
        )
    return algs[name]


def _link(model: dict, name: str, seg: int, link: str) -> tuple[float, float, str | None]:
    """``(alpha, beta, note)`` of a segment and link, falling back to what was measured."""
    segs = algorithm_params(model, name)["segments"]
    other = "inter" if link == "intra" else "intra"
    for k in sorted(range(len(segs)), key=lambda k: abs(k - seg)):
        for which in (link, other):
            got = segs[k].get(which)
            if got is None:
                continue
            note = None
            if k != seg:
                note = f"{name}: size segment {seg} was not measured; segment {k} stands in"
            elif which != link:
                note = (
                    f"{name}: no {link}-host traffic was measured; its {which}-host "
                    "parameters stand in"
                )
            return got["alpha_s"], got["beta_s_per_byte"], note
    raise UsageError(f"the cost model's fit for {name!r} holds no parameters")


def params(model: dict, name: str, link_rate: float | None = None) -> tuple[np.ndarray, dict]:
    """``(segments, 5)`` parameters of ``name`` (``COLUMNS``), and notes on stand-ins, keyed by
    ``(segment, column)``.

    ``link_rate`` (bits/s): the inter-host ``beta`` becomes that link's serialization time,
    scaled by the fit's efficiency when the fit's own link rate is known.
    """
    notes: dict = {}
    segments = len(model["breakpoints"]) + 1
    out = np.zeros((segments, len(COLUMNS)))
    fit_rate = (model.get("source") or {}).get("link_rate_bits")
    for seg in range(segments):
        for j, link in ((0, "intra"), (2, "inter")):
            out[seg, j], out[seg, j + 1], note = _link(model, name, seg, link)
            if note:
                notes[seg, j] = notes[seg, j + 1] = note
        out[seg, 4] = model["gamma"][seg]["s_per_byte"]
        if link_rate:
            measured = algorithm_params(model, name)["segments"][seg]
            if fit_rate and measured.get("inter") is not None:
                out[seg, 3] = measured["inter"]["beta_s_per_byte"] * fit_rate / link_rate
            else:
                out[seg, 3] = 8.0 / link_rate
                notes[seg, 3] = (
                    f"{name}: inter-host beta = 8 / link rate (serialization time; "
                    "the fit's own link rate is not known)"
                )
            if measured.get("intra") is None:  # a stand-in: no slower than the new link
                out[seg, 1] = min(out[seg, 1], out[seg, 3])
    return out, notes


def predict(
    model: dict, name: str, n: float, place: Placement, link_rate: float | None = None
) -> dict:
    """Predicted time of one allreduce of ``n`` bytes, and its latency/bandwidth/reduction parts."""
    par, notes = params(model, name, link_rate)
    coef = design(_steps(name, place), n, model["breakpoints"])
    d = coef * par
    alpha, beta, gamma = d[:, [0, 2]].sum(), d[:, [1, 3]].sum(), d[:, 4].sum()
    return {
        "algorithm": name,
        "bytes": n,
        "time_s": float(alpha + beta + gamma),
        "alpha_s": float(alpha),
        "beta_s": float(beta),
        "gamma_s": float(gamma),
        "notes": sorted({note for key, note in notes.items() if coef[key] > 0}),
    }


def crossovers(model: dict, names, place: Placement, lo: float, hi: float, link_rate=None):
    """Sizes in ``[lo, hi]`` where the fastest algorithm changes: ``[(bytes, from, to)]``.

    Scans a fine geometric grid, then bisects each change to within 1%.
    """

    def best(n: float) -> str:
        return min(names, key=lambda a: predict(model, a, n, place, link_rate)["time_s"])

    grid = np.geomspace(lo, hi, 64) if hi > lo else np.array([lo])
    out = []
    prev = best(grid[0])
    for a, b in zip(grid[:-1], grid[1:], strict=True):
        cur = best(b)
        if cur != prev:
            x, y = a, b
            while y / x > 1.01:
                mid = float(np.sqrt(x * y))
                x, y = (mid, y) if best(mid) == prev else (x, mid)
            out.append((float(y), prev, cur))
            prev = cur
    return out
