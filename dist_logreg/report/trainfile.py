"""A training run's own files as ``report`` reads them: what it shows of ``summary.json``,
``config.json`` and ``traffic.json``, through a schema with bounds, the summary's numbers
held to each other (as :mod:`.benchfile` does for a bench JSON). Before, only
``world_size`` was checked (twelfth attack, L-H8, L-H9)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dist_logreg import schema
from dist_logreg.errors import UsageError


def _string(v, where) -> None:
    """Any string of at most 4,096 characters (a path's most): 1 MB of a tag took report
    past 110 s and 1.1 GB (X-H14)."""
    if not isinstance(v, str) or len(v) > 4096:
        got = schema.shown(v) if not isinstance(v, str) else f"{len(v):,} characters"
        raise schema.Invalid(where, f"expected a string of at most 4096 characters, got {got}")


def _tag(v, where) -> None:
    """A run's label: no control character but a newline or tab (written as spaces; an ESC
    acted in report.md: X-M3), at most 4,096 characters."""
    _string(v, where)
    if schema.has_control(v.replace("\n", " ").replace("\t", " ")):  # written as spaces
        raise schema.Invalid(where, f"expected a label without control characters, got {v[:57]!r}")


_S = schema.optional(schema.number(0.0, 1e6, "a finite number of seconds"))  # MAX_SECONDS
#: A call or a step: at least the clock's 1 ns (as a metrics row's ``seconds``).
_CALL = schema.optional(schema.number(1e-9, 1e6, "a finite number of seconds (1 ns or more)"))
_FRACTION = schema.optional(schema.number(0.0, 1.0, "a fraction"))
_GBPS = schema.optional(schema.number(0.0, 1e7, "a finite number of GB/s"))
_STEPS = schema.optional(schema.count(0, 10**12, "a whole number of steps"))
_TEXT = schema.optional(schema.text())
#: A BLAS library as the provenance table shows it: its API, version and threads.
_BLAS = schema.optional(
    schema.items(
        schema.table(
            {},
            {
                "internal_api": _TEXT,
                "version": _TEXT,
                "num_threads": schema.optional(schema.count(1, 10**5, "a number of threads")),
            },
        )
    )
)
#: What ``report`` reads of a training run's ``summary.json`` (the other keys are kept
#: unread), with bounds; :func:`check_summary` holds the numbers to each other. Before, only
#: ``world_size`` was checked: a loss of -0.5, an accuracy of 719 %, a latency of -4.6 us and
#: a busbw of 1e300 GB/s were drawn, and a list for ``allreduce`` was a traceback (twelfth
#: attack, L-H8, L-H9).
SUMMARY = schema.table(
    {"world_size": schema.count(1, 10**7, "a number of ranks")},
    {
        "steps": _STEPS,
        "steps_run": _STEPS,
        "final_loss": schema.optional(schema.number(0.0, 1e300, "a finite loss")),
        "final_accuracy": _FRACTION,
        "allreduce": schema.optional(
            schema.table(
                {},
                {
                    "algorithm": schema.optional(schema.text()),
                    "predicted_s": _S,
                    "calls_per_step": schema.optional(schema.number(0.0, 1e15, "a number")),
                    "bytes": schema.optional(schema.number(0.0, 1e21, "bytes")),
                    "latency_s": schema.optional(  # a call of 0 s was printed "0 s" (U-M8)
                        schema.table({}, {k: _CALL for k in ("min", "p50", "mean", "p99", "max")})
                    ),
                    "busbw_GBps": schema.optional(schema.table({}, {"p50": _GBPS})),
                    "algbw_GBps": schema.optional(schema.table({}, {"p50": _GBPS})),
                },
            )
        ),
        "comm_fraction": schema.optional(
            schema.table({}, {k: _FRACTION for k in ("min", "median", "max")})
        ),
        "step_time_s": schema.optional(schema.table({}, {"p50": _CALL, "p99": _CALL})),
        # each phase's min, median, max over the ranks (a number there, or a list, was a
        # traceback in the S-H2 check: eighteenth attack, U-H5)
        "time_s_per_rank": schema.optional(
            schema.mapping(schema.table({}, {k: _S for k in ("min", "median", "max")}))
        ),
        # its held-out evaluations (a number there was a traceback: U-H9)
        "validation": schema.optional(
            schema.table(
                {},
                {
                    "loss": schema.optional(schema.number(0.0, 1e300, "a finite loss")),
                    **{k: _FRACTION for k in ("accuracy", "auc")},
                    "eval_time_s": _S,
                    "history": schema.optional(schema.items(schema.table({}, {}))),
                },
            )
        ),
        # a run resumed from a step below its steps (10^30 lifted every bound: U-H3)
        "resumed_from_step": schema.optional(schema.count(0, 10**12, "a step")),
        "run": schema.optional(
            schema.table(
                {},
                {
                    "tag": schema.optional(_tag),
                    # what the provenance table prints (P-H5: a world size of -5 was shown)
                    "world_size": schema.count(1, 10**7, "a number of ranks"),
                    **dict.fromkeys(("started_utc", "dist_logreg_version", "numpy"), _TEXT),
                    "command_line": schema.optional(schema.items(_string)),
                    "mpi": schema.optional(schema.table({}, {"library": _TEXT})),
                    "blas": schema.optional(schema.table({}, {"libraries": _BLAS})),
                    "hosts": schema.optional(
                        schema.items(
                            schema.table(
                                {"name": schema.text()},
                                {"ranks": schema.items(schema.count(0, 10**7, "a rank"))},
                            )
                        )
                    ),
                },
            )
        ),
    },
    "a run summary (an object)",
)
#: What ``report`` reads of ``config.json``.
CONFIG = schema.table(
    {}, {"tag": schema.optional(_tag), "resume": schema.optional(schema.flag())}, "an object"
)


def traffic_schema(p: int):
    """``traffic.json`` of a run of ``p`` ranks: a p x p matrix of bytes where observed."""
    row = schema.items(schema.count(0, 10**18, "a whole number of bytes"), p, p, "a row")
    return schema.table(
        {},
        {
            "algorithm": schema.optional(schema.text()),
            "observed": schema.optional(schema.flag()),
            "bytes": schema.optional(schema.items(row, p, p, f"a {p} x {p} matrix")),
            "note": schema.optional(schema.text()),
        },
        "an object",
    )


def check_summary(summary: dict, world_size: int, path: Path) -> None:
    """``summary.json`` through :data:`SUMMARY`, and its numbers against each other: the
    latency's spread in order, the busbw within what the run's bytes give at the fastest
    call (2 x all its bytes / the least latency: an allreduce's factor is below 2), the
    steps run within the steps, each host's ranks within the world."""
    schema.check(summary, SUMMARY, str(path))
    a = summary.get("allreduce") or {}
    lat = a.get("latency_s") or {}
    try:
        order = [k for k in ("min", "p50", "p99", "max") if lat.get(k) is not None]
        for x, y in zip(order, order[1:], strict=False):
            if lat[x] > lat[y] * (1 + 1e-9):
                raise schema.unphysical(
                    f"allreduce.latency_s.{y}",
                    f"expected at least {x} {lat[x]:g} s, got {lat[y]:g}",
                )
        least, bw = lat.get("min"), (a.get("busbw_GBps") or {}).get("p50")
        nbytes = a.get("bytes")  # the whole run's: at least any one call's
        if bw and least and nbytes is not None and bw * 1e9 > 2 * nbytes / least * (1 + 1e-9):
            raise schema.unphysical(
                "allreduce.busbw_GBps.p50",
                f"expected at most {2 * nbytes / least / 1e9:g} GB/s (2 x the run's "
                f"allreduce.bytes {nbytes:g} B over the least latency {least:g} s), got {bw:g}",
            )
        _uniform_calls(a, lat, world_size)
        _fractions(summary)
        run, done = summary.get("steps"), summary.get("steps_run")
        if run is not None and done is not None and done > run:
            raise schema.Invalid("steps_run", f"expected at most steps {run}, got {done}")
        back = summary.get("resumed_from_step")  # (U-H3)
        if (
            run is not None
            and back is not None
            and (back >= max(run, 1) or back + (done or 0) > run)
        ):
            raise schema.Invalid(
                "resumed_from_step",
                f"expected a step below steps {run} (with steps_run {done}), got {back}",
            )
        given = (summary.get("run") or {}).get("world_size", world_size)
        if given != world_size:  # the final attempt's, as world_size is
            raise schema.Invalid("run.world_size", f"expected world_size {world_size}, got {given}")
        for i, h in enumerate((summary.get("run") or {}).get("hosts") or []):
            for r in h.get("ranks", []):
                if r >= world_size:
                    raise schema.Invalid(
                        f"run.hosts[{i}].ranks",
                        f"expected ranks below world_size {world_size}, got {r}",
                    )
    except schema.Invalid as exc:
        raise UsageError(f"{path}: {exc}") from None


def _uniform_calls(a: dict, lat: dict, p: int) -> None:
    """Where every call moved the same bytes (one uncompressed allreduce a step, ``bytes``
    = ``bytes_per_call`` x ``calls``), the busbw p50 is the median over calls of 2(p-1)/p
    x bytes / latency: at least that over the latency p50 (the median of reciprocals is
    at least the reciprocal of the median) and at most that over the least latency (a
    busbw 216 x what 88 B in 4.76 us give, or a latency p50 moved beside an unchanged
    busbw, was drawn: thirteenth attack, M-H1)."""
    per, calls, total = a.get("bytes_per_call"), a.get("calls"), a.get("bytes")
    bw, mid, least = (a.get("busbw_GBps") or {}).get("p50"), lat.get("p50"), lat.get("min")
    numbers = (per, calls, total, bw, mid, least)
    if p < 2 or not all(schema.is_finite(x) and x > 0 for x in numbers) or per * calls != total:
        return
    if a.get("bucket_bytes") or a.get("calls_per_step") != 1 or a.get("compress") != "none":
        return  # buckets of several sizes (64 B and 88 B: their median is no call's)
    factor = 2 * (p - 1) / p
    low, high = factor * per / mid / 1e9, factor * per / least / 1e9
    if not low * (1 - 1e-6) <= bw <= high * (1 + 1e-6):
        raise schema.unphysical(
            "allreduce.busbw_GBps.p50",
            f"expected {low:g} to {high:g} GB/s (2(p-1)/p x bytes_per_call {per:g} B over "
            f"the latency p50 {mid:g} s and its least {least:g} s), got {bw:g}",
        )


def _fractions(summary: dict) -> None:
    """The median rank's comm fraction within what the ranks' comm and total times allow,
    and the loss at least ln 2 for every sample the accuracy says is misclassified (its
    true class had at most half the probability): a comm fraction of 0.1 % for a run 58 %
    in its allreduce, a log-loss of 0.001 at 71.9 % accuracy, were drawn (M-H1)."""
    per = summary.get("time_s_per_rank") or {}
    for key, stats in per.items():  # a max of 0 under a min was a ZeroDivisionError (S-H2)
        got = [stats.get(k) for k in ("min", "median", "max")] if isinstance(stats, dict) else []
        if all(schema.is_finite(x) for x in got) and not got[0] <= got[1] <= got[2]:
            raise schema.Invalid(
                f"time_s_per_rank.{key}", f"expected min <= median <= max, got {got}"
            )
    comm, total = per.get("comm") or {}, per.get("total") or {}
    frac = (summary.get("comm_fraction") or {}).get("median")
    got = [comm.get("min"), comm.get("max"), total.get("min"), total.get("max"), frac]
    if all(schema.is_finite(x) for x in got) and total["min"] > 0 and total["max"] > 0:
        low, high = comm["min"] / total["max"], comm["max"] / total["min"]
        if not low * (1 - 1e-6) <= frac <= high * (1 + 1e-6):
            raise schema.unphysical(
                "comm_fraction.median",
                f"expected {low:g} to {high:g} (time_s_per_rank's comm over its total), "
                f"got {frac:g}",
            )
    loss, acc = summary.get("final_loss"), summary.get("final_accuracy")
    if schema.is_finite(loss) and schema.is_finite(acc):
        least = (1 - acc) * math.log(2)
        if loss < least * (1 - 1e-6):
            raise schema.unphysical(
                "final_loss",
                f"expected at least {least:g} (ln 2 for each of the {1 - acc:.4g} of the "
                f"samples final_accuracy says are misclassified), got {loss:g}",
            )


def check_traffic(traffic: dict, summary: dict, path: Path) -> None:
    """An observed traffic matrix within the run: no rank sends to itself, and no rank more
    than (ceil(log2 p) + 2) x the payload it allreduced (recursive doubling sends its
    vector log2 p times, a ring 2(p-1)/p times): 1 PB from rank 0 in a run of 136 B
    calls, and 5000 B from a rank to itself, were drawn (thirteenth attack, M-H5)."""
    matrix = traffic.get("bytes") if traffic.get("observed") else None
    sent, p = (summary.get("allreduce") or {}).get("bytes"), summary["world_size"]
    if not isinstance(matrix, list) or not matrix:
        return
    for i, row in enumerate(matrix):
        if row[i]:
            raise UsageError(
                f"{path}: bytes[{i}][{i}]: expected 0 (a rank sends nothing to itself), "
                f"got {row[i]:g}"
            )
        if (why := _wire(sum(row), summary)) is not None:
            raise UsageError(f"{path}: bytes[{i}]: expected {why} sent by rank {i}, got {sum(row)}")
        most = (math.ceil(math.log2(max(p, 2))) + 2) * sent if schema.is_finite(sent) else None
        if most is not None and sum(row) > most:
            raise UsageError(
                f"{path}: bytes[{i}]: expected at most {most:g} B sent by rank {i} ((ceil(log2 "
                f"p) + 2) x the {sent:g} B it allreduced, summary.json), got {sum(row):g}"
            )


def _wire(sent: int, summary: dict) -> str | None:
    """What a rank's row of the matrix must sum to where the summary counted every rank's
    bytes on the wire (``allreduce.wire_bytes_per_rank``), or None: a ring run's rank 0
    sending 0.5 B beside 1760 B counted was drawn (nineteenth attack, X-H10)."""
    a = summary.get("allreduce") or {}
    wire = a.get("wire_bytes_per_rank") if a.get("wire_bytes_observed") is True else None
    lo, hi = (wire.get("min"), wire.get("max")) if isinstance(wire, dict) else (None, None)
    if not (schema.is_finite(lo) and schema.is_finite(hi)) or lo - 0.5 <= sent <= hi + 0.5:
        return None
    return f"{lo:g} to {hi:g} B (summary.json allreduce.wire_bytes_per_rank, counted)"


#: A step's phases in ``steps.jsonl``, each a key of ``time_s_per_rank`` without ``_s``.
PHASES_S = ("data_s", "compute_s", "comm_s", "update_s")


def within_summary(path: Path, run, summary: dict, earlier: int) -> bool:
    """The rows of ``steps.jsonl`` and ``metrics.jsonl`` within the summary's run: a step
    below its steps, a call's bytes within all it sent, and each phase of a step within the
    longest rank's total (a step 99999 of a 40-step run, 1 EB in one 88 B call, a 28-hour
    step of a 17 ms run were drawn: thirteenth attack, M-H2). A resumed run's summary is its
    last attempt's: the rows before ``earlier`` (and every row, where a resume that fell
    back past completed steps left them twice) are held to :data:`LOOSE` of it, as a dead
    attempt's rows in ``partial/`` are (held to nothing before: U-H1, U-H2); True if so."""
    twice = bool(earlier) and ran_twice(run.steps, earlier)
    for name, table in (("steps.jsonl", run.steps), ("metrics.jsonl", run.calls)):
        if table is None or not table["step"].size:
            continue
        own = table["step"] >= earlier if not twice else np.zeros(table["step"].size, bool)
        mine = {c: v[own] for c, v in table.items()}
        held(path / name, mine, summary, 1.0, 0.0)
        if name == "metrics.jsonl" and mine["step"].size:
            most = ((summary.get("time_s_per_rank") or {}).get("total") or {}).get("max")
            if schema.is_finite(most):
                _calls_within(path / name, mine, most, summary)
        held(path / name, {c: v[~own] for c, v in table.items()}, summary, *LOOSE)
    return twice


#: What an earlier attempt's row may take beside the last attempt's bounds (another world
#: size, another machine's load): 100 x, and 60 s more.
LOOSE = (100.0, 60.0)


def held(where: Path, table: dict, summary: dict, factor: float, plus: float) -> None:
    """``table``'s rows within the summary's run: a step below its steps, a call's bytes
    within all the run sent, a phase (a call) within ``factor`` x its longest rank's total
    of it (the longest call) + ``plus`` s."""
    if table is None or not table["step"].size:
        return
    steps, a = summary.get("steps"), summary.get("allreduce") or {}
    if isinstance(steps, int) and table["step"].max() >= steps:
        raise UsageError(
            f"{where}: step: expected below the run's {steps} steps (summary.json), got "
            f"{int(table['step'].max())}"
        )
    if "bytes" in table and schema.is_finite(a.get("bytes")):
        got = np.nanmax(table["bytes"]) if np.isfinite(table["bytes"]).any() else 0.0
        if got > a["bytes"]:
            raise UsageError(
                f"{where}: bytes: expected at most the {a['bytes']:g} B the run sent "
                f"(summary.json allreduce.bytes), got {got:g}"
            )
    per_rank = summary.get("time_s_per_rank") or {}
    most = (per_rank.get("total") or {}).get("max")
    bounds = {}  # column: (its most, the summary's key that says so)
    for c in PHASES_S:  # a phase within its rank's total of it, else the longest rank's
        top = (per_rank.get(c[:-2]) or {}).get("max")  # blocks: the summary's schema
        key = f"time_s_per_rank.{c[:-2]}.max"
        bounds[c] = (top, key) if schema.is_finite(top) else (most, "time_s_per_rank.total.max")
    if "seconds" in table:  # a call of 28 h in a 9 ms run was drawn (P-H9)
        bounds = {"seconds": ((a.get("latency_s") or {}).get("max"), "allreduce.latency_s.max")}
    model = summary.get("cost_model") if isinstance(summary.get("cost_model"), dict) else {}
    per, calls = model.get("predicted_s"), a.get("calls_per_step")
    if "predicted_s" in table and schema.is_finite(per) and per > 0:  # 10^6 s drawn (U-H7)
        calls = calls if schema.is_finite(calls) and calls >= 1 else 1.0
        bounds["predicted_s"] = (100 * per * calls + 1e-3, "cost_model.predicted_s x 100 x calls")
    for c, (top, key) in bounds.items():
        col = table[c][np.isfinite(table[c])]
        if not (schema.is_finite(top) and col.size):
            continue
        bound = factor * top * (1 + 1e-6) + 1e-9 + plus
        if col.max() > bound:
            also = f"{factor:g} x " if factor != 1 else ""
            raise UsageError(
                f"{where}: {c}: expected at most {bound:g} s ({also}summary.json {key}"
                f"{f' + {plus:g} s, an earlier attempt' if plus else ''}: a step's phase "
                f"within its rank's whole run of it, a call within the longest), got "
                f"{col.max():g}"
            )


def _calls_within(where: Path, table: dict, most: float, summary: dict) -> None:
    """Each call's start within the run: its loop (the longest rank's total) and its held-out
    evaluations, which the loop's total leaves out (a genuine run with ``--eval-every`` was
    refused: seventeenth attack, S-H1), and 1 s of clocks apart."""
    evals = (summary.get("validation") or {}).get("eval_time_s")
    evals = evals if schema.is_finite(evals) and evals > 0 else 0.0
    for c in ("start_s", "start_aligned_s"):
        col = table[c][np.isfinite(table[c])]
        if col.size and not (-most - 1 <= col.min() and col.max() <= 2 * (most + evals) + 1):
            raise UsageError(
                f"{where}: {c}: expected within the run ({most:g} s, summary.json "
                f"time_s_per_rank.total.max, {evals:g} s of validation.eval_time_s, and 1 s of "
                f"clock offset), got {col.min():g} to {col.max():g}"
            )


def ran_twice(steps, earlier: int) -> bool:
    """Whether a rank's step from ``earlier`` on is in ``steps.jsonl`` twice."""
    if steps is None or not steps["step"].size:
        return False
    mine = steps["step"] >= earlier
    keys = steps["step"][mine].astype(np.int64) * (1 << 32) + steps["rank"][mine].astype(np.int64)
    return bool(np.unique(keys).size < keys.size)
