"""Fitting the cost model to measurements (pure: numpy, no MPI).

Per algorithm, non-negative least squares of ``alpha`` and ``beta`` (inside a host and
between hosts, per size segment) against measured allreduce times, weighted by ``1/t`` so it
minimises the *relative* error, robustly (Huber: relative errors beyond 10% count linearly,
so a few disturbed measurements do not pull the fit); ``gamma`` (per byte reduced) is not
fitted from the allreduces (ring and Rabenseifner have the same beta:gamma ratio, recursive
doubling sends and reduces the same bytes, so the two cannot be told apart) but from the
local reduction micro-benchmark ``bench`` records alongside. Segment breakpoints are given,
or found from the data: every candidate between two measured message sizes is tried, and
an extra segment is kept only when it pays for its parameters (Akaike's criterion: the
small sizes' noise must not hide a change of regime at the large ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dist_logreg.collective import algorithms
from dist_logreg.collective.costfile import COLUMNS, FORMAT, MIN_BETA, VERSION, segment_of
from dist_logreg.collective.schedule import Placement, Step, shape
from dist_logreg.errors import UsageError


def nnls(A: np.ndarray, b: np.ndarray, max_iter: int = 0) -> np.ndarray:
    """Lawson-Hanson non-negative least squares: ``argmin ||A x - b||`` over ``x >= 0``."""
    m, n = A.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    tol = 10 * np.finfo(float).eps * max(m, n) * (np.abs(A).sum(axis=0).max() if n else 0)
    for _ in range(max_iter or 3 * n + 3):
        w = A.T @ (b - A @ x)
        if passive.all() or (w[~passive] <= tol).all():
            break
        passive[np.argmax(np.where(passive, -np.inf, w))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            step = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + step * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
    return x


def _weighted_nnls(A: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """NNLS of ``A x ~ y`` minimising the error relative to ``t``; zero columns give 0."""
    Aw, yw = A / t[:, None], y / t
    norm = np.linalg.norm(Aw, axis=0)
    live = norm > 0
    x = np.zeros(A.shape[1])
    if live.any():
        x[live] = nnls(Aw[:, live] / norm[live], yw) / norm[live]
    return x


#: The least ratio of the largest to the smallest measured size in a segment for which a
#: fit can tell the per-message alpha from the per-byte beta.
SPAN = 8

#: Relative error beyond which a measurement counts linearly, not squared (Huber): a few
#: calls disturbed by another job (or a token bucket letting a burst through) must not pull
#: the fit, and relative least squares is easily pulled by a time far *below* the rest.
HUBER = 0.1


def huber(rel: np.ndarray) -> np.ndarray:
    """Twice Huber's loss of relative residuals: ``r^2`` up to ``HUBER``, linear beyond."""
    a = np.abs(rel)
    return np.where(a <= HUBER, a * a, 2 * HUBER * a - HUBER * HUBER)


def robust_nnls(A: np.ndarray, y: np.ndarray, t: np.ndarray, iters: int = 30) -> np.ndarray:
    """:func:`nnls` of ``A x ~ y``, relative to ``t``, with Huber's loss (iteratively
    reweighted: rows whose relative residual exceeds ``HUBER`` weigh ``HUBER / |r|``)."""
    s = np.ones(len(t))
    x = np.zeros(A.shape[1])
    for _ in range(iters):
        w = np.sqrt(s)[:, None]
        x = _weighted_nnls(A * w, y * w[:, 0], t)
        rel = np.abs(A @ x - y) / t
        new = np.minimum(1.0, HUBER / np.maximum(rel, 1e-300))
        if np.max(np.abs(new - s)) < 1e-3:
            break
        s = new
    return x


@dataclass(frozen=True)
class Sample:
    """One measured allreduce: ``seconds`` for ``nbytes`` with ``algorithm`` on ``place``."""

    algorithm: str
    nbytes: float
    place: Placement
    seconds: float


def fit_gamma(reduce: list[tuple[float, float]], breakpoints) -> list[dict]:
    """Per segment, ``t = overhead + n * gamma`` of the local reduction (relative NNLS)."""
    if not reduce:
        raise UsageError(
            "expected local-reduction measurements (reduce_s) next to the allreduce times, "
            "got none: run `dist-logreg bench` of this version to measure gamma"
        )
    n = np.array([r[0] for r in reduce], dtype=float)
    t = np.array([r[1] for r in reduce], dtype=float)

    def one(mask) -> dict:
        A = np.stack([np.ones(mask.sum()), n[mask]], axis=1)
        c0, g = robust_nnls(A, t[mask], t[mask])
        return {"s_per_byte": float(g), "overhead_s": float(c0), "sizes": int(mask.sum())}

    whole = one(np.ones(n.size, dtype=bool))
    seg = np.array([segment_of(x, breakpoints) for x in n])
    out = []
    for k in range(len(breakpoints) + 1):
        mask = seg == k
        out.append(one(mask) if np.unique(n[mask]).size >= 2 else {**whole, "from": "all sizes"})
    return out


class _Problem:
    """The samples with their steps worked out once (as flat arrays), fitted for any set of
    breakpoints."""

    def __init__(self, samples: list[Sample], reduce):
        if not samples:
            raise UsageError("expected allreduce measurements to fit, got none")
        cache: dict[tuple, list[Step]] = {}
        rows: list[tuple] = []
        self.top = np.zeros(len(samples))  # each sample's largest message
        for i, s in enumerate(samples):
            key = (s.algorithm, s.place)
            if key not in cache:
                cache[key] = shape(s.algorithm, s.place)
            for st in cache[key]:
                n = s.nbytes
                rows.append((i, st.repeat, st.inter, st.msg * n, st.load * n, st.reduce * n))
                self.top[i] = max(self.top[i], st.msg * n)
        cols = list(zip(*rows, strict=True)) if rows else [[]] * 6
        self.row = np.array(cols[0], dtype=np.int64)
        self.repeat = np.array(cols[1], dtype=float)
        self.col = 2 * np.array(cols[2], dtype=np.int64)
        self.msg, self.load, self.red = (np.array(c, dtype=float) for c in cols[3:])
        self.samples = samples
        self.seconds = np.array([s.seconds for s in samples])
        self.nbytes = np.array([s.nbytes for s in samples])
        self.alg = np.array([s.algorithm for s in samples])
        self.reduce = reduce
        self.names = list(dict.fromkeys(s.algorithm for s in samples))

    def design(self, breakpoints) -> np.ndarray:
        """``(samples, segments, 5)``: :func:`costmodel.design` of every sample at once."""
        D = np.zeros((len(self.samples), len(breakpoints) + 1, len(COLUMNS)))
        seg = np.searchsorted(np.asarray(breakpoints, dtype=float), self.msg, side="right")
        np.add.at(D, (self.row, seg, self.col), self.repeat)
        np.add.at(D, (self.row, seg, self.col + 1), self.repeat * self.load)
        np.add.at(D, (self.row, seg, 4), self.repeat * self.red)
        return D

    def fit(self, breakpoints) -> tuple[float, int, dict, list]:
        """``(robust loss, free parameters, per-algorithm fits, gamma)``."""
        gamma = fit_gamma(self.reduce, breakpoints)
        g = np.array([x["s_per_byte"] for x in gamma])
        design_all = self.design(breakpoints)
        loss, k, algs = 0.0, 0, {}
        for name in self.names:
            mine = self.alg == name
            D, t = design_all[mine], self.seconds[mine]
            fixed = D[:, :, 4] @ g
            A = D[:, :, :4].reshape(len(t), -1)
            x = robust_nnls(A, t - fixed, t)
            rel = (A @ x + fixed - t) / t
            loss += float(huber(rel).sum())
            live = np.abs(A).sum(axis=0) > 0
            k += int(live.sum())
            algs[name] = _algorithm_doc(name, x.reshape(-1, 4), live.reshape(-1, 4), rel)
        return loss, k, algs, gamma

    def candidates(self) -> list[int]:
        """Breakpoints between consecutive measured message sizes (geometric midpoints)."""
        sizes = np.unique(np.round(self.msg))
        return sorted(
            {
                round(math.sqrt(a * b))
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
                if b > 1.05 * a
            }
        )

    def sizes_in(self, breakpoints, name: str) -> list[np.ndarray]:
        """Per segment, the distinct payload sizes of ``name`` whose largest message is in it."""
        seg = np.searchsorted(np.asarray(breakpoints, dtype=float), self.top, side="right")
        mine = self.alg == name
        return [np.unique(self.nbytes[mine & (seg == k)]) for k in range(len(breakpoints) + 1)]

    def usable(self, breakpoints) -> bool:
        """No algorithm has only 1 or 2 measured sizes in a segment (no spare row to check
        its 2 parameters) or sizes too close to tell alpha from beta, and every segment has
        an algorithm with 3 or more."""
        filled = set()
        for name in self.names:
            per_seg = self.sizes_in(breakpoints, name)
            if any(0 < s.size < 3 or (s.size and s[-1] < SPAN * s[0]) for s in per_seg):
                return False
            filled |= {k for k, s in enumerate(per_seg) if s.size >= 3}
        return len(filled) == len(breakpoints) + 1

    def unidentifiable(self, breakpoints) -> str | None:
        """Why ``beta`` cannot be told from ``alpha`` in some segment (None: it can).

        A time ``alpha + n beta`` measured at one size ``n`` fits any ``beta`` (with
        ``alpha`` taking up the rest); at sizes within a factor of a few, noise decides.
        """
        edges = ["0", *[str(b) for b in breakpoints], "inf"]
        for name in self.names:
            for k, s in enumerate(self.sizes_in(breakpoints, name)):
                if not s.size or (s.size >= 2 and s[-1] >= SPAN * s[0]):
                    continue
                got = (
                    f"1 message size ({int(s[0])} B)"
                    if s.size == 1
                    else f"{s.size} message sizes spanning a factor of {s[-1] / s[0]:.3g} "
                    f"({int(s[0])}..{int(s[-1])} B)"
                )
                return (
                    f"cannot identify beta (seconds per byte) of {name} in size segment {k} "
                    f"[{edges[k]}, {edges[k + 1]}) B: {got}; expected at least 2 sizes "
                    f"spanning a factor of at least {SPAN} (bench with --min-bytes and "
                    "--max-bytes further apart, or give fewer --breakpoints)"
                )
        return None


def _zero_beta(algs: dict, breakpoints) -> str | None:
    """Why a fit that came out with ``beta = 0``, or below the least a model file may hold
    (:data:`.costfile.MIN_BETA`, 1 PB/s: an infinite bandwidth), cannot stand, or None:
    the span rule passed, but the times did not grow with the size (at the rule's
    boundary, or with noise), so the non-negative fit put beta at its bound."""
    edges = ["0", *[str(b) for b in breakpoints], "inf"]
    for name, doc in algs.items():
        for k, seg in enumerate(doc["segments"]):
            for link, par in seg.items():
                if par is not None and not par["beta_s_per_byte"] >= MIN_BETA:
                    return (
                        f"cannot identify beta (seconds per byte) of {name} in size segment "
                        f"{k} [{edges[k]}, {edges[k + 1]}) B: the fit gives {link} beta = "
                        f"{par['beta_s_per_byte']:g} (an infinite bandwidth): the measured "
                        "times do not grow with the message size; expected times that do "
                        "(bench larger sizes, or on a quieter machine)"
                    )
    return None


def _algorithm_doc(name, x, live, rel) -> dict:
    segs = []
    for seg in range(x.shape[0]):
        doc = {}
        for j, link in ((0, "intra"), (2, "inter")):
            doc[link] = (
                {"alpha_s": float(x[seg, j]), "beta_s_per_byte": float(x[seg, j + 1])}
                if live[seg, j] or live[seg, j + 1]
                else None
            )
        segs.append(doc)
    a = np.abs(rel)
    return {
        "formula": algorithms.get(name).formula,
        "segments": segs,
        "residuals": {
            "median_rel": float(np.median(a)),
            "max_rel": float(a.max()),
            "rows": len(rel),
        },
    }


def fit(
    samples: list[Sample],
    reduce: list[tuple[float, float]],
    breakpoints: list[int] | None = None,
    segments: int | None = None,
    max_segments: int = 3,
) -> dict:
    """The cost model (``model.json`` without its ``source``) from measurements.

    ``breakpoints``: segment boundaries in bytes, as given; else ``segments`` (a count) or
    up to ``max_segments`` found from the data.
    """
    prob = _Problem(samples, reduce)
    if breakpoints is None:
        breakpoints = _search(prob, segments, max_segments)
    breakpoints = sorted(int(b) for b in breakpoints)
    why = prob.unidentifiable(breakpoints)
    if why:
        raise UsageError(why)
    _, _, algs, gamma = prob.fit(breakpoints)
    if why := _zero_beta(algs, breakpoints):
        raise UsageError(why)
    return {
        "format": FORMAT,
        "version": VERSION,
        "breakpoints": breakpoints,
        "breakpoints_note": "segments split MESSAGE sizes in bytes (the payload for mpi): a "
        "message of b >= breakpoint bytes uses the next segment's parameters",
        "columns": list(COLUMNS),
        "gamma": gamma,
        "algorithms": algs,
    }


def _search(prob: _Problem, segments: int | None, max_segments: int) -> list[int]:
    """Greedy: add the breakpoint that lowers the AIC most, up to the limit (or exactly N)."""
    n_rows = len(prob.samples)

    def aic(bps) -> float:
        loss, k, _, _ = prob.fit(bps)
        return n_rows * math.log(max(loss, 1e-20) / n_rows) + 2 * (k + len(bps))

    best, score = [], aic([])
    limit = segments if segments else max_segments
    while len(best) + 1 < limit:
        trials = [sorted([*best, c]) for c in prob.candidates() if c not in best]
        trials = [bps for bps in trials if prob.usable(bps)]
        if not trials:
            if segments:
                raise UsageError(
                    f"--segments {segments}: the data cannot hold that many segments (each "
                    "needs at least 3 measured sizes of every algorithm in it)"
                )
            break
        scores = [aic(bps) for bps in trials]
        i = int(np.argmin(scores))
        if not segments and scores[i] >= score:
            break
        best, score = trials[i], scores[i]
    return best
